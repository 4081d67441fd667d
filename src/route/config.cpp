// Reads and writes the routing configuration file ($SLIM_HOME/config.toml, or
// --config FILE) with toml++, and prints the effective configuration.
//
// The format (every key optional unless marked required):
//
//   policy = "ask"                    # "local-only" | "ask" | "auto"
//   local = ["stories260K.gguf"]      # model files or store names; the first is the default
//   audit_log = "/path/audit.jsonl"   # default $SLIM_HOME/audit.jsonl
//
//   [[remote]]                        # zero or more OpenAI-compatible endpoints
//   name = "gpt"                      # default "remote"; unique, not "auto", not a local model's name
//   url = "https://api.example.com/v1"  # required, http:// or https://, up to and including /v1
//   model = "gpt-4o-mini"             # required
//   api_key_env = "OPENAI_API_KEY"    # the NAME of the variable holding the key; a literal
//                                     # `api_key` is refused so keys never sit in the file
//   timeout = "30s"                   # "500ms", "30s", "1m", "1h", "1m30s" or seconds (0 < t <= 1 day)
//   connect_timeout = "5s"
//   headers = { "X-Org" = "acme" }    # extra request headers (not Authorization)
//
//   [privacy]
//   disabled = ["ip"]                 # built-in categories switched off
//   forbid = ["secret", "card"]       # categories (built-in or custom) that keep a prompt local
//   markers = ["#private"]            # a prompt containing one never leaves
//   [[privacy.custom]]
//   name = "employee_id"              # required: lower-case letters, digits, _; not a built-in
//   pattern = 'EMP-\d{6}'             # required: PCRE2
//
//   [route]
//   max_prompt_nll = 3.4              # >= 0
//   max_context_share = 0.9           # (0, 1]
//   classifier = "route-classifier.json"  # relative to the config file's folder
//   classifier_threshold = 0.5        # [0, 1]
//   cascade = false
//   draft_tokens = 64                 # 1 .. 65536
//   min_draft_logprob = -2.5          # <= 0
//   min_draft_p10 = -6.0              # <= 0
//   max_draft_repetition = 0.5        # [0, 1]
//
// Every problem is one line naming the file, the line and the key
// ("config.toml:12: unknown key 'route.foo'"): a config that silently ignores
// a misspelt key would send prompts somewhere the user did not intend.
#include "route/config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <regex>
#include <sstream>

#include "base/mapped_file.h"
#include "privacy/redact.h"
#include "store/store.h"

namespace slim {

namespace fs = std::filesystem;

namespace {

// The privacy guard's own list, so a category it gains is accepted here too.
const std::vector<std::string>& builtin_categories() { return privacy::Detector::builtin_categories(); }

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxTimeout = 86400;  // a day: beyond it a timeout is a typo, and ms must fit a long
constexpr int64_t kMaxDraftTokens = 65536;

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join_list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Where a problem is: "FILE:LINE: message".
struct Reader {
  std::string file;
  Status at(const toml::source_region& where, const std::string& msg) const {
    return Status::error(file + ":" + std::to_string(where.begin.line) + ": " + msg);
  }
};

std::string join_key(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

std::string indexed(const std::string& name, size_t i) { return name + "[" + std::to_string(i) + "]"; }

// The first (by line) key of `t` that is not in `known`, with a suggestion.
Status check_keys(const Reader& r, const toml::table& t, const std::string& prefix,
                  const std::vector<std::string>& known) {
  const toml::key* first = nullptr;
  for (auto&& [k, v] : t) {
    if (contains(known, k.str())) continue;
    if (!first || k.source().begin.line < first->source().begin.line) first = &k;
  }
  if (!first) return {};
  std::string msg = "unknown key '" + join_key(prefix, first->str()) + "'";
  auto close = close_matches(std::string(first->str()), known);
  if (!close.empty()) msg += " (did you mean '" + join_key(prefix, close[0]) + "'?)";
  return r.at(first->source(), msg);
}

Status read_string(const Reader& r, const toml::node& n, const std::string& name, std::string& out) {
  if (!n.is_string()) return r.at(n.source(), "'" + name + "' must be a string");
  out = n.as_string()->get();
  return {};
}

Status read_nonempty_string(const Reader& r, const toml::node& n, const std::string& name, std::string& out) {
  SLIM_RETURN_IF_ERROR(read_string(r, n, name, out));
  if (out.empty()) return r.at(n.source(), "'" + name + "' must not be empty");
  return {};
}

Status read_bool(const Reader& r, const toml::node& n, const std::string& name, bool& out) {
  if (!n.is_boolean()) return r.at(n.source(), "'" + name + "' must be true or false");
  out = n.as_boolean()->get();
  return {};
}

// Integers are numbers too: `max_prompt_nll = 3` means 3.0.
Status read_number(const Reader& r, const toml::node& n, const std::string& name, double& out) {
  if (n.is_integer()) out = (double)n.as_integer()->get();
  else if (n.is_floating_point()) out = n.as_floating_point()->get();
  else return r.at(n.source(), "'" + name + "' must be a number");
  return {};
}

// An array of strings; `nodes` (optional) gets each element, for messages about it.
Status read_string_list(const Reader& r, const toml::node& n, const std::string& name, std::vector<std::string>& out,
                        std::vector<const toml::node*>* nodes = nullptr) {
  const toml::array* a = n.as_array();
  if (!a) return r.at(n.source(), "'" + name + "' must be an array of strings");
  out.clear();
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    if (!e.is_string()) return r.at(e.source(), "'" + indexed(name, i) + "' must be a string");
    if (e.as_string()->get().empty()) return r.at(e.source(), "'" + indexed(name, i) + "' must not be empty");
    out.push_back(e.as_string()->get());
    if (nodes) nodes->push_back(&e);
  }
  return {};
}

// "500ms", "30s", "1m", "1.5h", "1m30s": number-unit pairs, summed; nullopt when malformed.
std::optional<double> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double total = 0;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  while (p < end) {
    double v = 0;
    auto [q, ec] = std::from_chars(p, end, v, std::chars_format::general);
    if (ec != std::errc() || q == p) return std::nullopt;
    const char* u = q;
    while (u < end && std::isalpha((unsigned char)*u)) ++u;
    std::string_view unit(q, (size_t)(u - q));
    // Divide for ms so "500ms" is exactly 0.5 (0.001 is not exact in binary).
    if (unit == "ms") total += v / 1000;
    else if (unit == "s") total += v;
    else if (unit == "m") total += v * 60;
    else if (unit == "h") total += v * 3600;
    else return std::nullopt;
    p = u;
  }
  return total;
}

Status read_duration(const Reader& r, const toml::node& n, const std::string& name, double& out) {
  double v = 0;
  if (n.is_string()) {
    auto d = parse_duration(n.as_string()->get());
    if (!d) return r.at(n.source(), "'" + name + "' must be a duration string (\"30s\", \"1m\", \"500ms\") or a number of seconds");
    v = *d;
  } else if (n.is_integer() || n.is_floating_point()) {
    SLIM_RETURN_IF_ERROR(read_number(r, n, name, v));
  } else {
    return r.at(n.source(), "'" + name + "' must be a duration string or a number of seconds");
  }
  if (!(v > 0)) return r.at(n.source(), "'" + name + "' must be positive");
  if (!(v <= kMaxTimeout)) return r.at(n.source(), "'" + name + "' must be at most a day (86400 seconds)");
  out = v;
  return {};
}

// The numeric [route] thresholds and their ranges (NaN fails every one:
// each test is written so that a comparison with NaN is false).
struct NumberField {
  const char* key;
  double RouteThresholds::*field;
  double lo, hi;
  bool lo_open;      // lo itself excluded
  const char* rule;  // the message when out of range
};
const NumberField kNumberFields[] = {
    {"max_prompt_nll", &RouteThresholds::max_prompt_nll, 0, kInf, false, "must be 0 or more (nats per token)"},
    {"max_context_share", &RouteThresholds::max_context_share, 0, 1, true, "must be above 0 and at most 1"},
    {"classifier_threshold", &RouteThresholds::classifier_threshold, 0, 1, false, "must be between 0 and 1"},
    {"min_draft_logprob", &RouteThresholds::min_draft_logprob, -kInf, 0, false, "must be 0 or less (a log-probability)"},
    {"min_draft_p10", &RouteThresholds::min_draft_p10, -kInf, 0, false, "must be 0 or less (a log-probability)"},
    {"max_draft_repetition", &RouteThresholds::max_draft_repetition, 0, 1, false, "must be between 0 and 1"},
};

bool in_range(const NumberField& f, double v) { return (f.lo_open ? v > f.lo : v >= f.lo) && v <= f.hi; }

// For values that did not come from a file (save_route_thresholds).
Status check_thresholds(const RouteThresholds& t) {
  for (const auto& f : kNumberFields)
    if (!in_range(f, t.*f.field)) return Status::error(std::string("'route.") + f.key + "' " + f.rule);
  if (t.draft_tokens < 1 || t.draft_tokens > kMaxDraftTokens)
    return Status::error(format("'route.draft_tokens' must be between 1 and %d", (int)kMaxDraftTokens));
  return {};
}

// `folder`: the config file's folder (absolute), which a relative classifier path is relative to.
std::string resolve_in(const fs::path& folder, const std::string& file) {
  return (folder / fs::path(file)).lexically_normal().string();
}

fs::path config_folder(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  return (ec ? fs::path(path) : abs).parent_path();
}

Status read_route(const Reader& r, const toml::node& n, const fs::path& folder, RouteThresholds& t) {
  const toml::table* tbl = n.as_table();
  if (!tbl) return r.at(n.source(), "'route' must be a table ([route])");
  std::vector<std::string> known = {"classifier", "cascade", "draft_tokens"};
  for (const auto& f : kNumberFields) known.push_back(f.key);
  SLIM_RETURN_IF_ERROR(check_keys(r, *tbl, "route", known));
  for (const auto& f : kNumberFields) {
    const toml::node* v = tbl->get(f.key);
    if (!v) continue;
    std::string name = std::string("route.") + f.key;
    double x = 0;
    SLIM_RETURN_IF_ERROR(read_number(r, *v, name, x));
    if (!in_range(f, x)) return r.at(v->source(), "'" + name + "' " + f.rule);
    t.*f.field = x;
  }
  if (const toml::node* v = tbl->get("classifier")) {
    SLIM_RETURN_IF_ERROR(read_string(r, *v, "route.classifier", t.classifier));
    if (!t.classifier.empty()) t.classifier = resolve_in(folder, t.classifier);
  }
  if (const toml::node* v = tbl->get("cascade")) SLIM_RETURN_IF_ERROR(read_bool(r, *v, "route.cascade", t.cascade));
  if (const toml::node* v = tbl->get("draft_tokens")) {
    if (!v->is_integer()) return r.at(v->source(), "'route.draft_tokens' must be an integer");
    int64_t k = v->as_integer()->get();
    if (k < 1 || k > kMaxDraftTokens)
      return r.at(v->source(), format("'route.draft_tokens' must be between 1 and %d", (int)kMaxDraftTokens));
    t.draft_tokens = (int)k;
  }
  return {};
}

// A custom category names placeholders ([EMPLOYEE_ID_1]), so it stays a plain identifier.
bool is_category_name(const std::string& s) {
  if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// The PCRE2 error for `pattern` ("" when it compiles), so a bad rule is
// reported with its line here rather than when the guard starts. The options
// are the ones privacy/detector.cpp compiles custom rules with.
std::string pcre2_problem(const std::string& pattern) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code,
                                 &offset, nullptr);
  if (re) {
    pcre2_code_free(re);
    return "";
  }
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return format("%s at offset %zu", reinterpret_cast<const char*>(buf), (size_t)offset);
}

Status read_privacy(const Reader& r, const toml::node& n, PrivacyConfig& p) {
  const toml::table* t = n.as_table();
  if (!t) return r.at(n.source(), "'privacy' must be a table ([privacy])");
  SLIM_RETURN_IF_ERROR(check_keys(r, *t, "privacy", {"disabled", "forbid", "markers", "custom"}));
  std::vector<const toml::node*> disabled_nodes;
  if (const toml::node* v = t->get("disabled"))
    SLIM_RETURN_IF_ERROR(read_string_list(r, *v, "privacy.disabled", p.disabled, &disabled_nodes));
  for (size_t i = 0; i < p.disabled.size(); ++i)
    if (!contains(builtin_categories(), p.disabled[i]))
      return r.at(disabled_nodes[i]->source(), "'" + indexed("privacy.disabled", i) + "': unknown category '" +
                                                   p.disabled[i] + "' (built-in: " + join_list(builtin_categories()) + ")");
  if (const toml::node* v = t->get("markers")) SLIM_RETURN_IF_ERROR(read_string_list(r, *v, "privacy.markers", p.markers));
  if (const toml::node* v = t->get("custom")) {
    const toml::array* a = v->as_array();
    if (!a) return r.at(v->source(), "'privacy.custom' must be an array of tables ([[privacy.custom]])");
    for (size_t i = 0; i < a->size(); ++i) {
      std::string pre = indexed("privacy.custom", i);
      const toml::table* ct = a->get(i)->as_table();
      if (!ct) return r.at(a->get(i)->source(), "'" + pre + "' must be a table");
      SLIM_RETURN_IF_ERROR(check_keys(r, *ct, pre, {"name", "pattern"}));
      CustomPrivacyRule rule;
      const toml::node* name = ct->get("name");
      const toml::node* pattern = ct->get("pattern");
      if (!name) return r.at(ct->source(), pre + " needs 'name'");
      if (!pattern) return r.at(ct->source(), pre + " needs 'pattern'");
      SLIM_RETURN_IF_ERROR(read_string(r, *name, pre + ".name", rule.name));
      if (!is_category_name(rule.name))
        return r.at(name->source(), "'" + pre + ".name' must be lower-case letters, digits and _, starting with a letter");
      if (contains(builtin_categories(), rule.name))
        return r.at(name->source(), "'" + pre + ".name': '" + rule.name + "' is a built-in category");
      for (const auto& other : p.custom)
        if (other.name == rule.name) return r.at(name->source(), "duplicate custom category '" + rule.name + "'");
      SLIM_RETURN_IF_ERROR(read_nonempty_string(r, *pattern, pre + ".pattern", rule.pattern));
      if (std::string e = pcre2_problem(rule.pattern); !e.empty())
        return r.at(pattern->source(), "'" + pre + ".pattern' is not a valid PCRE2 pattern: " + e);
      p.custom.push_back(std::move(rule));
    }
  }
  // After the custom rules: forbid may name them.
  std::vector<const toml::node*> forbid_nodes;
  if (const toml::node* v = t->get("forbid"))
    SLIM_RETURN_IF_ERROR(read_string_list(r, *v, "privacy.forbid", p.forbid, &forbid_nodes));
  for (size_t i = 0; i < p.forbid.size(); ++i) {
    const std::string& c = p.forbid[i];
    bool custom = std::any_of(p.custom.begin(), p.custom.end(), [&](const CustomPrivacyRule& x) { return x.name == c; });
    if (!custom && !contains(builtin_categories(), c))
      return r.at(forbid_nodes[i]->source(), "'" + indexed("privacy.forbid", i) + "': unknown category '" + c +
                                                 "' (built-in: " + join_list(builtin_categories()) + ", or a [[privacy.custom]] name)");
    // A switched-off category is never found, so forbidding it would promise a protection that is not there.
    if (contains(p.disabled, c))
      return r.at(forbid_nodes[i]->source(), "'" + indexed("privacy.forbid", i) + "': '" + c +
                                                 "' is switched off in privacy.disabled, so it could never forbid anything");
  }
  return {};
}

bool is_env_name(const std::string& s) {
  if (s.empty() || std::isdigit((unsigned char)s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum((unsigned char)c) || c == '_'; });
}

// An HTTP header field name (RFC 9110 token).
bool is_header_name(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum((unsigned char)c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower((unsigned char)x) == std::tolower((unsigned char)y);
         });
}

Status read_remote(const Reader& r, const toml::table& t, size_t i, RemoteEndpoint& ep) {
  std::string pre = indexed("remote", i);
  // Before the unknown-key check, so the message says what to do instead. The value is never echoed.
  if (const toml::node* k = t.get("api_key"))
    return r.at(k->source(), "'" + pre + ".api_key' is not allowed: keep the key out of the file, in an environment "
                             "variable, and name that variable in api_key_env");
  SLIM_RETURN_IF_ERROR(check_keys(r, t, pre, {"name", "url", "model", "api_key_env", "timeout", "connect_timeout", "headers"}));
  if (const toml::node* v = t.get("name")) {
    SLIM_RETURN_IF_ERROR(read_nonempty_string(r, *v, pre + ".name", ep.name));
    if (ep.name == "auto") return r.at(v->source(), "'" + pre + ".name' must not be 'auto' (it means: let the router choose)");
  }
  const toml::node* url = t.get("url");
  if (!url) return r.at(t.source(), pre + " needs 'url'");
  SLIM_RETURN_IF_ERROR(read_string(r, *url, pre + ".url", ep.base_url));
  size_t scheme = ep.base_url.rfind("https://", 0) == 0 ? 8 : ep.base_url.rfind("http://", 0) == 0 ? 7 : 0;
  if (scheme == 0 || ep.base_url.size() == scheme || ep.base_url[scheme] == '/' ||
      ep.base_url.find_first_of(" \t\r\n") != std::string::npos)
    return r.at(url->source(), "'" + pre + ".url' must be an http:// or https:// URL, like https://api.openai.com/v1");
  // Paths are appended ("/chat/completions"); a trailing slash would double it.
  while (ep.base_url.size() > scheme + 1 && ep.base_url.back() == '/') ep.base_url.pop_back();
  const toml::node* model = t.get("model");
  if (!model) return r.at(t.source(), pre + " needs 'model'");
  SLIM_RETURN_IF_ERROR(read_nonempty_string(r, *model, pre + ".model", ep.model));
  if (const toml::node* v = t.get("api_key_env")) {
    SLIM_RETURN_IF_ERROR(read_string(r, *v, pre + ".api_key_env", ep.api_key_env));
    // Not echoed: a key pasted here by mistake must not end up in a terminal or a log.
    if (!ep.api_key_env.empty() && !is_env_name(ep.api_key_env))
      return r.at(v->source(), "'" + pre + ".api_key_env' must be the name of an environment variable (letters, "
                               "digits and _, like OPENAI_API_KEY), not the key itself");
  }
  if (const toml::node* v = t.get("timeout")) SLIM_RETURN_IF_ERROR(read_duration(r, *v, pre + ".timeout", ep.timeout_s));
  if (const toml::node* v = t.get("connect_timeout"))
    SLIM_RETURN_IF_ERROR(read_duration(r, *v, pre + ".connect_timeout", ep.connect_timeout_s));
  if (const toml::node* v = t.get("headers")) {
    const toml::table* h = v->as_table();
    if (!h) return r.at(v->source(), "'" + pre + ".headers' must be a table of strings, like { \"X-Org\" = \"acme\" }");
    for (auto&& [k, hv] : *h) {
      std::string name(k.str()), key = pre + ".headers." + name, value;
      if (!is_header_name(name)) return r.at(k.source(), "'" + key + "' is not a valid header name");
      if (iequals(name, "Authorization"))
        return r.at(k.source(), "'" + key + "' is not allowed: the Authorization header comes from api_key_env");
      SLIM_RETURN_IF_ERROR(read_string(r, hv, key, value));
      if (value.find_first_of("\r\n", 0) != std::string::npos || value.find('\0') != std::string::npos)
        return r.at(hv.source(), "'" + key + "' must not contain line breaks");
      ep.headers.emplace_back(name, value);
    }
  }
  return {};
}

// The names a local model answers to: the entry, its file name, and that without ".gguf".
std::vector<std::string> local_names(const std::string& entry) {
  std::vector<std::string> names = {entry};
  fs::path p(entry);
  names.push_back(p.filename().string());
  if (p.extension() == ".gguf") names.push_back(p.stem().string());
  return names;
}

Result<toml::table> parse_toml(const std::string& text, const std::string& path) {
  try {
    return toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    return Status::error(format("%s:%u:%u: %s", path.c_str(), (unsigned)e.source().begin.line,
                                (unsigned)e.source().begin.column, std::string(e.description()).c_str()));
  }
}

Result<RouteConfig> read_config(const toml::table& root, const std::string& path) {
  Reader r{path};
  RouteConfig c;
  c.path = path;
  SLIM_RETURN_IF_ERROR(check_keys(r, root, "", {"policy", "local", "audit_log", "remote", "privacy", "route"}));
  if (const toml::node* v = root.get("policy")) {
    std::string s;
    SLIM_RETURN_IF_ERROR(read_string(r, *v, "policy", s));
    auto p = parse_policy(s);
    if (!p) return r.at(v->source(), "'policy': " + p.error());
    c.policy = *p;
  }
  if (const toml::node* v = root.get("local")) SLIM_RETURN_IF_ERROR(read_string_list(r, *v, "local", c.local_models));
  if (const toml::node* v = root.get("audit_log")) SLIM_RETURN_IF_ERROR(read_string(r, *v, "audit_log", c.audit_log));
  if (const toml::node* v = root.get("privacy")) SLIM_RETURN_IF_ERROR(read_privacy(r, *v, c.privacy));
  if (const toml::node* v = root.get("route")) SLIM_RETURN_IF_ERROR(read_route(r, *v, config_folder(path), c.route));
  if (const toml::node* v = root.get("remote")) {
    const toml::array* a = v->as_array();
    if (!a) return r.at(v->source(), "'remote' must be an array of tables ([[remote]])");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* t = a->get(i)->as_table();
      if (!t) return r.at(a->get(i)->source(), "'" + indexed("remote", i) + "' must be a table");
      RemoteEndpoint ep;
      SLIM_RETURN_IF_ERROR(read_remote(r, *t, i, ep));
      const toml::node* name_node = t->get("name");
      const toml::source_region& where = name_node ? name_node->source() : t->source();
      for (size_t j = 0; j < c.remotes.size(); ++j)
        if (c.remotes[j].name == ep.name)
          return r.at(where, "duplicate remote name '" + ep.name + "' (remote[" + std::to_string(j) + "] has it too)");
      for (size_t j = 0; j < c.local_models.size(); ++j)
        if (contains(local_names(c.local_models[j]), ep.name))
          return r.at(where, "remote name '" + ep.name + "' is also the name of a local model (local[" + std::to_string(j) + "])");
      c.remotes.push_back(std::move(ep));
    }
  }
  return c;
}

Result<std::string> read_text(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Status::error("config file " + path + " is a folder");
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error("cannot open config file " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::error("cannot read config file " + path + ": " + std::strerror(errno));
  return ss.str();
}

// ---- writing TOML ----

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += format("\\u%04X", (unsigned)c);
        else out += (char)c;
    }
  }
  return out + "\"";
}

// Regular expressions read better as TOML literal strings (no doubled backslashes).
std::string toml_pattern(std::string_view s) {
  bool literal_ok = std::none_of(s.begin(), s.end(), [](unsigned char c) { return c == '\'' || c < 0x20 || c == 0x7f; });
  return literal_ok ? "'" + std::string(s) + "'" : toml_string(s);
}

std::string toml_string_array(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_string(v[i]);
  return out + "]";
}

// The shortest text that reads back as exactly `x`, always a TOML float.
std::string toml_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, x);
  std::string s(buf, ec == std::errc() ? p : buf);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// "500ms" under a second when exact, else seconds ("30s", "1.5s"); reads back exactly.
std::string toml_duration(double s) {
  double ms = std::round(s * 1000);
  if (s < 1 && ms >= 1 && ms / 1000 == s) return format("\"%.0fms\"", ms);
  std::string n = toml_number(s);
  if (n.size() > 2 && n.compare(n.size() - 2, 2, ".0") == 0) n.resize(n.size() - 2);
  return "\"" + n + "s\"";
}

// The [route] keys (no header), one a line, in the documented order.
std::string route_lines(const RouteThresholds& t, const std::string& classifier_text) {
  std::string o;
  o += "max_prompt_nll = " + toml_number(t.max_prompt_nll) + "\n";
  o += "max_context_share = " + toml_number(t.max_context_share) + "\n";
  if (!classifier_text.empty()) o += "classifier = " + toml_string(classifier_text) + "\n";
  o += "classifier_threshold = " + toml_number(t.classifier_threshold) + "\n";
  o += std::string("cascade = ") + (t.cascade ? "true" : "false") + "\n";
  o += "draft_tokens = " + std::to_string(t.draft_tokens) + "\n";
  o += "min_draft_logprob = " + toml_number(t.min_draft_logprob) + "\n";
  o += "min_draft_p10 = " + toml_number(t.min_draft_p10) + "\n";
  o += "max_draft_repetition = " + toml_number(t.max_draft_repetition) + "\n";
  return o;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t p = 0;
  while (p < text.size()) {
    size_t q = text.find('\n', p);
    q = q == std::string::npos ? text.size() : q + 1;
    lines.push_back(text.substr(p, q - p));
    p = q;
  }
  return lines;
}

bool is_route_header(const std::string& line) {
  static const std::regex re(R"(^\s*\[\s*(route|"route"|'route')\s*\]\s*(#.*)?\r?\n?$)");
  return std::regex_match(line, re);
}

// `text` with the [route] table's keys replaced by `lines`: under its
// [route] header when it has one, else (no table, or one written as dotted
// keys or an inline table) in a [route] table appended at the end. Every
// other line, comments included, stays as the user wrote it.
std::string replace_route_table(const std::string& text, const toml::table& root, const std::string& lines) {
  std::vector<std::string> src = split_lines(text);
  std::vector<bool> drop(src.size(), false);
  auto drop_lines = [&](uint32_t first, uint32_t last) {
    for (uint32_t l = std::max<uint32_t>(first, 1); l <= last && l <= src.size(); ++l) drop[l - 1] = true;
  };
  size_t header = 0;  // 1-based line of the [route] header; 0: none
  if (const toml::node* n = root.get("route")) {
    const toml::table* t = n->as_table();  // read_config checked it
    if (t->is_inline()) {
      for (auto&& [k, v] : root)
        if (k.str() == "route") drop_lines(k.source().begin.line, v.source().end.line);
    } else {
      for (auto&& [k, v] : *t) drop_lines(k.source().begin.line, v.source().end.line);
      uint32_t h = t->source().begin.line;
      if (h >= 1 && h <= src.size() && is_route_header(src[h - 1])) header = h;
    }
  }
  // Where the old first key was, so comments above it stay above the values
  // (a header without keys: right under it).
  size_t insert_at = 0;  // 0-based line the new keys go before; 0: none
  if (header != 0) {
    insert_at = header;
    for (size_t i = header; i < src.size(); ++i)
      if (drop[i]) {
        insert_at = i;
        break;
      }
  }
  std::string out;
  for (size_t i = 0; i < src.size(); ++i) {
    if (header != 0 && i == insert_at) {
      if (!out.empty() && out.back() != '\n') out += "\n";
      out += lines;
    }
    if (!drop[i]) out += src[i];
  }
  if (header != 0 && insert_at == src.size()) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += lines;
  }
  if (header == 0) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += (out.empty() ? "" : "\n") + std::string("[route]\n") + lines;
  }
  return out;
}

}  // namespace

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::LocalOnly: return "local-only";
    case Policy::Ask: return "ask";
    case Policy::Auto: return "auto";
  }
  return "ask";
}

Result<Policy> parse_policy(const std::string& s) {
  if (s == "local-only") return Policy::LocalOnly;
  if (s == "ask") return Policy::Ask;
  if (s == "auto") return Policy::Auto;
  return Status::error("unknown policy '" + s + "' (local-only, ask or auto)");
}

std::string default_config_path() { return Store::default_root() + "/config.toml"; }

Result<RouteConfig> load_route_config(const std::string& path) {
  auto text = read_text(path);
  if (!text) return text.status();
  auto root = parse_toml(*text, path);
  if (!root) return root.status();
  return read_config(*root, path);
}

Result<RouteConfig> load_default_route_config() {
  std::string path = default_config_path();
  std::error_code ec;
  if (fs::exists(path, ec)) return load_route_config(path);
  return RouteConfig{};
}

Status save_route_thresholds(const std::string& path_given, const RouteThresholds& t) {
  SLIM_RETURN_IF_ERROR(check_thresholds(t));
  std::error_code ec;
  std::string path = path_given;
  // Through a symlink (a config kept in a dotfiles repository): update the file, keep the link.
  if (fs::is_symlink(path, ec)) {
    fs::path target = fs::canonical(path, ec);
    if (!ec) path = target.string();
  }
  const fs::path folder = config_folder(path);
  // Written relative to the config's folder when inside it, so the folder can move.
  std::string classifier_text = t.classifier;
  RouteThresholds want = t;
  if (!t.classifier.empty()) {
    want.classifier = resolve_in(folder, t.classifier);
    fs::path rel = fs::path(want.classifier).lexically_relative(folder.lexically_normal());
    if (!rel.empty() && *rel.begin() != ".." && resolve_in(folder, rel.string()) == want.classifier)
      classifier_text = rel.string();
  }
  std::string lines = route_lines(t, classifier_text);

  bool exists = fs::exists(path, ec);
  std::string out;
  fs::perms old_perms = fs::perms::unknown;
  if (exists) {
    auto text = read_text(path);
    if (!text) return text.status();
    auto root = parse_toml(*text, path);
    if (!root) return Status::error(root.error() + " (not updating the file)");
    auto cfg = read_config(*root, path);
    if (!cfg) return Status::error(cfg.error() + " (not updating the file)");
    out = replace_route_table(*text, *root, lines);
    old_perms = fs::status(path, ec).permissions();
  } else {
    out = "# slim routing configuration; `slim config show` prints every setting\n\n[route]\n" + lines;
  }

  // Never write a file that does not read back as asked.
  auto check_root = parse_toml(out, path);
  if (!check_root) return Status::error("internal error updating " + path + ": " + check_root.error());
  auto check = read_config(*check_root, path);
  if (!check) return Status::error("internal error updating " + path + ": " + check.error());
  if (!(check->route == want)) return Status::error("internal error updating " + path + ": the thresholds do not read back");

  if (!folder.empty()) {
    fs::create_directories(folder, ec);
    if (ec) return Status::error(format("cannot create %s: %s", folder.c_str(), ec.message().c_str()));
  }
  SLIM_RETURN_IF_ERROR(write_file_atomic(path, out.data(), out.size()));
  if (old_perms != fs::perms::unknown) fs::permissions(path, old_perms, ec);  // best effort: keep a 0600 file 0600
  return {};
}

std::string describe_route_config(const RouteConfig& c) {
  std::string o;
  o += "policy = " + toml_string(policy_name(c.policy)) + "\n";
  o += "local = " + toml_string_array(c.local_models) + "\n";
  if (c.audit_log.empty()) o += "# audit_log not set: " + Store::default_root() + "/audit.jsonl\n";
  else o += "audit_log = " + toml_string(c.audit_log) + "\n";
  if (c.remotes.empty()) o += "\n# no [[remote]] endpoints: every request is answered locally\n";
  for (const auto& ep : c.remotes) {
    o += "\n[[remote]]\n";
    o += "name = " + toml_string(ep.name) + "\n";
    o += "url = " + toml_string(ep.base_url) + "\n";
    o += "model = " + toml_string(ep.model) + "\n";
    if (ep.api_key_env.empty()) {
      o += "# no api_key_env: requests carry no API key\n";
    } else {
      // Only whether the variable holds something; its value never appears.
      const char* v = std::getenv(ep.api_key_env.c_str());
      const char* state = !v ? "is not set" : !*v ? "is empty" : "is set";
      o += "api_key_env = " + toml_string(ep.api_key_env) + "  # " + ep.api_key_env + " " + state + "\n";
    }
    o += "timeout = " + toml_duration(ep.timeout_s) + "\n";
    o += "connect_timeout = " + toml_duration(ep.connect_timeout_s) + "\n";
    if (!ep.headers.empty()) {
      o += "headers = {";
      for (size_t i = 0; i < ep.headers.size(); ++i)
        o += (i ? ", " : " ") + toml_string(ep.headers[i].first) + " = " + toml_string(ep.headers[i].second);
      o += " }\n";
    }
  }
  o += "\n[privacy]\n";
  o += "disabled = " + toml_string_array(c.privacy.disabled) + "\n";
  o += "forbid = " + toml_string_array(c.privacy.forbid) + "\n";
  o += "markers = " + toml_string_array(c.privacy.markers) + "\n";
  for (const auto& rule : c.privacy.custom) {
    o += "\n[[privacy.custom]]\n";
    o += "name = " + toml_string(rule.name) + "\n";
    o += "pattern = " + toml_pattern(rule.pattern) + "\n";
  }
  o += "\n[route]\n" + route_lines(c.route, c.route.classifier);
  return o;
}

}  // namespace slim
