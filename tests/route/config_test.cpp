// The routing configuration file: reading (values, defaults, one-line errors
// naming file, line and key), saving thresholds into an existing file,
// describing it without API keys, and `slim config show` end to end.
#include "route/config.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "test_util.h"

namespace slim {
namespace {

namespace fs = std::filesystem;

// The example of the documentation, with its line numbers relied on below.
const char* kFullConfig = R"(# routing for the tests
policy = "auto"
local = ["stories260K.gguf", "qwen3:0.6b"]
audit_log = "/var/tmp/audit.jsonl"

[[remote]]
name = "gpt"
url = "https://api.example.com/v1/"
model = "gpt-4o-mini"
api_key_env = "SLIM_CONFIG_TEST_KEY"
timeout = "1m30s"
connect_timeout = "500ms"
headers = { "X-Org" = "acme", "X-Team" = "a \"quoted\" \\ value" }

[[remote]]
name = "vllm"
url = "http://127.0.0.1:8081/v1"
model = "qwen"
timeout = 12.5
connect_timeout = 2

[privacy]
disabled = ["ip"]
forbid = ["secret", "card", "employee_id"]
markers = ["#private", "#local"]
[[privacy.custom]]
name = "employee_id"
pattern = 'EMP-\d{6}'
[[privacy.custom]]
name = "ticket"
pattern = "T'\\d+"

[route]
max_prompt_nll = 3
max_context_share = 0.75
classifier = "route-classifier.json"
classifier_threshold = 0.4
cascade = true
draft_tokens = 32
min_draft_logprob = -1.5
min_draft_p10 = -5.0
max_draft_repetition = 0.25
)";

// A fresh mkdtemp folder a test, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "slim-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string dir_;
};

// Sets an environment variable for one scope, restoring it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

RouteConfig without_path(RouteConfig c) {
  c.path.clear();
  return c;
}

TEST_F(ConfigTest, FullFileParses) {
  std::string path = write("config.toml", kFullConfig);
  auto c = load_route_config(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->path, path);
  EXPECT_EQ(c->policy, Policy::Auto);
  EXPECT_EQ(c->local_models, (std::vector<std::string>{"stories260K.gguf", "qwen3:0.6b"}));
  EXPECT_EQ(c->audit_log, "/var/tmp/audit.jsonl");
  ASSERT_EQ(c->remotes.size(), 2u);
  const RemoteEndpoint& a = c->remotes[0];
  EXPECT_EQ(a.name, "gpt");
  EXPECT_EQ(a.base_url, "https://api.example.com/v1");  // trailing slash dropped: paths are appended
  EXPECT_EQ(a.model, "gpt-4o-mini");
  EXPECT_EQ(a.api_key_env, "SLIM_CONFIG_TEST_KEY");
  EXPECT_EQ(a.timeout_s, 90);
  EXPECT_EQ(a.connect_timeout_s, 0.5);
  using Headers = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(a.headers, (Headers{{"X-Org", "acme"}, {"X-Team", "a \"quoted\" \\ value"}}));
  const RemoteEndpoint& b = c->remotes[1];
  EXPECT_EQ(b.name, "vllm");
  EXPECT_EQ(b.base_url, "http://127.0.0.1:8081/v1");
  EXPECT_EQ(b.api_key_env, "");
  EXPECT_EQ(b.timeout_s, 12.5);
  EXPECT_EQ(b.connect_timeout_s, 2);
  EXPECT_TRUE(b.headers.empty());
  EXPECT_EQ(c->privacy.disabled, (std::vector<std::string>{"ip"}));
  EXPECT_EQ(c->privacy.forbid, (std::vector<std::string>{"secret", "card", "employee_id"}));
  EXPECT_EQ(c->privacy.markers, (std::vector<std::string>{"#private", "#local"}));
  ASSERT_EQ(c->privacy.custom.size(), 2u);
  EXPECT_EQ(c->privacy.custom[0].name, "employee_id");
  EXPECT_EQ(c->privacy.custom[0].pattern, "EMP-\\d{6}");
  EXPECT_EQ(c->privacy.custom[1].pattern, "T'\\d+");
  const RouteThresholds& t = c->route;
  EXPECT_EQ(t.max_prompt_nll, 3.0);
  EXPECT_EQ(t.max_context_share, 0.75);
  EXPECT_EQ(t.classifier, dir_ + "/route-classifier.json");  // relative to the file's folder
  EXPECT_EQ(t.classifier_threshold, 0.4);
  EXPECT_TRUE(t.cascade);
  EXPECT_EQ(t.draft_tokens, 32);
  EXPECT_EQ(t.min_draft_logprob, -1.5);
  EXPECT_EQ(t.min_draft_p10, -5.0);
  EXPECT_EQ(t.max_draft_repetition, 0.25);
}

TEST_F(ConfigTest, EmptyFileIsTheDefaults) {
  std::string path = write("config.toml", "# nothing yet\n");
  auto c = load_route_config(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(without_path(*c), RouteConfig{});
  EXPECT_EQ(c->privacy.markers, (std::vector<std::string>{"#private"}));
  EXPECT_EQ(c->policy, Policy::Ask);
}

TEST_F(ConfigTest, DurationForms) {
  const std::pair<const char*, double> cases[] = {
      {"\"500ms\"", 0.5}, {"\"30s\"", 30}, {"\"1m\"", 60}, {"\"1.5h\"", 5400}, {"\"1m30s\"", 90}, {"7", 7}, {"0.25", 0.25}};
  for (auto [text, want] : cases) {
    std::string path = write("d.toml", std::string("[[remote]]\nurl = \"http://h/v1\"\nmodel = \"m\"\ntimeout = ") + text + "\n");
    auto c = load_route_config(path);
    ASSERT_TRUE(c.ok()) << text << ": " << c.error();
    EXPECT_EQ(c->remotes[0].timeout_s, want) << text;
  }
}

TEST(ConfigPolicy, NamesAndParse) {
  for (Policy p : {Policy::LocalOnly, Policy::Ask, Policy::Auto}) {
    auto q = parse_policy(policy_name(p));
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(*q, p);
  }
  EXPECT_STREQ(policy_name(Policy::LocalOnly), "local-only");
  EXPECT_FALSE(parse_policy("Auto").ok());
  EXPECT_FALSE(parse_policy("").ok());
}

// One bad file: the error must name the file, the line and the key.
struct BadCase {
  const char* name;
  const char* text;
  int line;
  const char* needle;  // a part of the message (the key, and what is wrong)
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

const char* kRemote = "[[remote]]\nurl = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n";  // lines 1-3

class ConfigErrorTest : public ConfigTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(ConfigErrorTest, OneLineWithFileLineAndKey) {
  const BadCase& bc = GetParam();
  std::string text = bc.text;
  if (text.rfind("REMOTE\n", 0) == 0) text = kRemote + text.substr(7);
  std::string path = write("config.toml", text);
  auto c = load_route_config(path);
  ASSERT_FALSE(c.ok()) << "accepted:\n" << text;
  const std::string& e = c.error();
  EXPECT_EQ(e.rfind(path + ":" + std::to_string(bc.line) + ":", 0), 0u) << e;
  EXPECT_NE(e.find(bc.needle), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

const BadCase kBadCases[] = {
    {"UnknownTopLevel", "policy = \"ask\"\n\npolicyy = \"auto\"\n", 3, "unknown key 'policyy' (did you mean 'policy'?)"},
    {"UnknownInRemote", "REMOTE\ntimeout = \"5s\"\nretries = 3\n", 5, "unknown key 'remote[0].retries'"},
    {"UnknownInSecondRemote", "REMOTE\n[[remote]]\nname = \"b\"\nurl = \"http://h/v1\"\nmodel = \"m\"\nmodle = \"x\"\n", 8,
     "unknown key 'remote[1].modle'"},
    {"UnknownInPrivacy", "[privacy]\nforbid = []\nmarker = [\"#x\"]\n", 3, "unknown key 'privacy.marker' (did you mean 'privacy.markers'?)"},
    {"UnknownInCustom", "[[privacy.custom]]\nname = \"x\"\npattern = \"x\"\nflags = \"i\"\n", 4, "unknown key 'privacy.custom[0].flags'"},
    {"UnknownInRoute", "[route]\ncascade = true\n\nfoo = 1\n", 4, "unknown key 'route.foo'"},
    {"UnknownSubtable", "[route]\n[route.extra]\nx = 1\n", 2, "unknown key 'route.extra'"},
    {"WrongTypeTimeout", "REMOTE\ntimeout = true\n", 4, "'remote[0].timeout' must be a duration string or a number of seconds"},
    {"MalformedDuration", "REMOTE\nconnect_timeout = \"5 seconds\"\n", 4, "'remote[0].connect_timeout' must be a duration string"},
    {"WrongTypeLocal", "local = \"a.gguf\"\n", 1, "'local' must be an array of strings"},
    {"WrongTypeLocalElement", "local = [\"a.gguf\",\n  3]\n", 2, "'local[1]' must be a string"},
    {"WrongTypeRouteBool", "[route]\ncascade = 1\n", 2, "'route.cascade' must be true or false"},
    {"WrongTypeRouteNumber", "[route]\nmax_prompt_nll = \"3.4\"\n", 2, "'route.max_prompt_nll' must be a number"},
    {"WrongTypeDraftTokens", "[route]\ndraft_tokens = 64.5\n", 2, "'route.draft_tokens' must be an integer"},
    {"WrongTypePrivacy", "privacy = [\"ip\"]\n", 1, "'privacy' must be a table"},
    {"RemoteNotArray", "[remote]\nurl = \"http://h/v1\"\nmodel = \"m\"\n", 1, "'remote' must be an array of tables"},
    {"HeaderNotString", "REMOTE\nheaders = { \"X-Org\" = 1 }\n", 4, "'remote[0].headers.X-Org' must be a string"},
    {"AuthorizationHeader", "REMOTE\nheaders = { \"Authorization\" = \"Bearer x\" }\n", 4, "api_key_env"},
    {"SyntaxError", "policy = \"ask\"\nlocal = [\"a\" \"b\"]\n", 2, "parsing"},
    {"DuplicateKeySyntax", "policy = \"ask\"\npolicy = \"auto\"\n", 2, "policy"},
    {"MissingUrl", "REMOTE\n\n[[remote]]\nname = \"b\"\nmodel = \"m\"\n", 5, "remote[1] needs 'url'"},
    {"MissingModel", "[[remote]]\nurl = \"http://h/v1\"\n", 1, "remote[0] needs 'model'"},
    {"BadUrl", "[[remote]]\nurl = \"ftp://h/v1\"\nmodel = \"m\"\n", 2, "'remote[0].url' must be an http:// or https:// URL"},
    {"EmptyHostUrl", "[[remote]]\nurl = \"https://\"\nmodel = \"m\"\n", 2, "'remote[0].url'"},
    {"DuplicateRemoteName", "[[remote]]\nname = \"gpt\"\nurl = \"http://a/v1\"\nmodel = \"m\"\n[[remote]]\nname = \"gpt\"\n"
     "url = \"http://b/v1\"\nmodel = \"m\"\n", 6, "duplicate remote name 'gpt'"},
    // Two unnamed endpoints are both "remote": the second one's table line.
    {"DuplicateDefaultName", "REMOTE\n[[remote]]\nurl = \"http://b/v1\"\nmodel = \"m\"\n", 4, "duplicate remote name 'remote'"},
    {"RemoteNamedAuto", "[[remote]]\nname = \"auto\"\nurl = \"http://a/v1\"\nmodel = \"m\"\n", 2, "'remote[0].name' must not be 'auto'"},
    {"RemoteNamedLikeLocal", "local = [\"/models/tiny.gguf\"]\n[[remote]]\nname = \"tiny\"\nurl = \"http://a/v1\"\nmodel = \"m\"\n", 3,
     "remote name 'tiny' is also the name of a local model (local[0])"},
    {"LiteralApiKey", "REMOTE\napi_key = \"sk-live-0123456789abcdef\"\n", 4, "'remote[0].api_key' is not allowed"},
    {"KeyInApiKeyEnv", "REMOTE\napi_key_env = \"sk-live-0123456789abcdef\"\n", 4, "'remote[0].api_key_env' must be the name of an environment variable"},
    {"BadPolicy", "\npolicy = \"sometimes\"\n", 2, "'policy': unknown policy 'sometimes'"},
    {"BadDisabledCategory", "[privacy]\ndisabled = [\"ip\",\n  \"emial\"]\n", 3, "'privacy.disabled[1]': unknown category 'emial'"},
    {"BadForbidCategory", "[privacy]\nforbid = [\"passport\"]\n", 2, "'privacy.forbid[0]': unknown category 'passport'"},
    {"ForbidDisabledCategory", "[privacy]\ndisabled = [\"card\"]\nforbid = [\"card\"]\n", 3, "'privacy.forbid[0]': 'card' is switched off"},
    {"CustomNameBuiltin", "[[privacy.custom]]\nname = \"email\"\npattern = \"x\"\n", 2, "'privacy.custom[0].name': 'email' is a built-in category"},
    {"CustomNameBadChars", "[[privacy.custom]]\nname = \"Employee ID\"\npattern = \"x\"\n", 2, "'privacy.custom[0].name' must be lower-case"},
    {"CustomMissingPattern", "[[privacy.custom]]\nname = \"emp\"\n", 1, "privacy.custom[0] needs 'pattern'"},
    {"CustomBadPattern", "[[privacy.custom]]\nname = \"emp\"\npattern = 'EMP-(\\d+'\n", 3, "'privacy.custom[0].pattern' is not a valid PCRE2 pattern"},
    {"NegativeTimeoutString", "REMOTE\ntimeout = \"-5s\"\n", 4, "'remote[0].timeout' must be positive"},
    {"NegativeTimeoutNumber", "REMOTE\nconnect_timeout = -1\n", 4, "'remote[0].connect_timeout' must be positive"},
    {"ZeroTimeout", "REMOTE\ntimeout = 0\n", 4, "'remote[0].timeout' must be positive"},
    {"HugeTimeout", "REMOTE\ntimeout = \"48h\"\n", 4, "'remote[0].timeout' must be at most a day"},
    {"ContextShareAboveOne", "[route]\nmax_context_share = 1.5\n", 2, "'route.max_context_share' must be above 0 and at most 1"},
    {"ContextShareZero", "[route]\nmax_context_share = 0\n", 2, "'route.max_context_share'"},
    {"ClassifierThresholdNegative", "[route]\nclassifier_threshold = -0.1\n", 2, "'route.classifier_threshold' must be between 0 and 1"},
    {"NllNegative", "[route]\nmax_prompt_nll = -1\n", 2, "'route.max_prompt_nll' must be 0 or more"},
    {"NllNan", "[route]\nmax_prompt_nll = nan\n", 2, "'route.max_prompt_nll'"},
    {"LogprobPositive", "[route]\nmin_draft_logprob = 0.5\n", 2, "'route.min_draft_logprob' must be 0 or less"},
    {"P10Positive", "[route]\nmin_draft_p10 = 1\n", 2, "'route.min_draft_p10'"},
    {"RepetitionAboveOne", "[route]\nmax_draft_repetition = 2\n", 2, "'route.max_draft_repetition' must be between 0 and 1"},
    {"DraftTokensZero", "[route]\ndraft_tokens = 0\n", 2, "'route.draft_tokens' must be between 1 and"},
    {"EmptyMarker", "[privacy]\nmarkers = [\"\"]\n", 2, "'privacy.markers[0]' must not be empty"},
};

INSTANTIATE_TEST_SUITE_P(Config, ConfigErrorTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

TEST_F(ConfigTest, SyntaxErrorHasLineAndColumn) {
  std::string path = write("config.toml", "policy = \"ask\"\n[route]\ncascade = tru\n");
  auto c = load_route_config(path);
  ASSERT_FALSE(c.ok());
  // toml++'s message, prefixed with FILE:LINE:COLUMN.
  EXPECT_EQ(c.error().rfind(path + ":3:", 0), 0u) << c.error();
  size_t col_at = path.size() + 3;
  ASSERT_LT(col_at, c.error().size());
  EXPECT_TRUE(std::isdigit((unsigned char)c.error()[col_at])) << c.error();
}

TEST_F(ConfigTest, KeyValuesNeverInErrors) {
  const char* secret = "sk-live-0123456789abcdef";
  for (const char* key : {"api_key", "api_key_env"}) {
    std::string path = write("config.toml", std::string(kRemote) + key + " = \"" + secret + "\"\n");
    auto c = load_route_config(path);
    ASSERT_FALSE(c.ok()) << key;
    EXPECT_EQ(c.error().find(secret), std::string::npos) << c.error();
    EXPECT_NE(c.error().find("api_key_env"), std::string::npos) << c.error();
  }
}

TEST_F(ConfigTest, MissingFileIsAnErrorNamingIt) {
  std::string path = dir_ + "/nope/config.toml";
  auto c = load_route_config(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find(path), std::string::npos) << c.error();
  auto d = load_route_config(dir_);  // a folder is not a file
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find(dir_), std::string::npos) << d.error();
}

TEST_F(ConfigTest, DefaultsWhenNoFile) {
  ScopedEnv home("SLIM_HOME", dir_.c_str());
  EXPECT_EQ(default_config_path(), dir_ + "/config.toml");
  auto c = load_default_route_config();
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->path, "");
  EXPECT_EQ(*c, RouteConfig{});
  // With a file there, it is read.
  write("config.toml", "policy = \"local-only\"\n");
  auto d = load_default_route_config();
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->path, dir_ + "/config.toml");
  EXPECT_EQ(d->policy, Policy::LocalOnly);
  // And a bad one is an error, not silently the defaults.
  write("config.toml", "policy = \"nope\"\n");
  EXPECT_FALSE(load_default_route_config().ok());
}

RouteThresholds sample_thresholds(const std::string& dir) {
  RouteThresholds t;
  t.max_prompt_nll = 0.1 + 0.2;  // not a short decimal: must still read back exactly
  t.max_context_share = 1;
  t.classifier = dir + "/models/clf.json";
  t.classifier_threshold = 0.625;
  t.cascade = true;
  t.draft_tokens = 17;
  t.min_draft_logprob = -std::numeric_limits<double>::infinity();
  t.min_draft_p10 = -7.123456789012345;
  t.max_draft_repetition = 0;
  return t;
}

TEST_F(ConfigTest, SaveKeepsOtherSettingsAndComments) {
  std::string path = write("config.toml", kFullConfig);
  auto before = load_route_config(path);
  ASSERT_TRUE(before.ok()) << before.error();
  RouteThresholds t = sample_thresholds(dir_);
  ASSERT_TRUE(save_route_thresholds(path, t).ok());
  auto after = load_route_config(path);
  ASSERT_TRUE(after.ok()) << after.error() << "\n" << test::read_file(path);
  EXPECT_EQ(after->route, t);
  RouteConfig expect = *before;
  expect.route = t;
  EXPECT_EQ(*after, expect);
  std::string text = test::read_file(path);
  EXPECT_NE(text.find("# routing for the tests"), std::string::npos) << text;
  EXPECT_NE(text.find("pattern = 'EMP-\\d{6}'"), std::string::npos) << text;  // untouched, as written
  EXPECT_NE(text.find("classifier = \"models/clf.json\""), std::string::npos) << text;  // relative to the folder
  EXPECT_EQ(text.find("max_context_share = 0.75"), std::string::npos) << text;  // the old value went
  EXPECT_EQ(text.find("[route]"), text.rfind("[route]")) << text;
  // Saving again gives the same file (nothing accumulates).
  ASSERT_TRUE(save_route_thresholds(path, t).ok());
  EXPECT_EQ(test::read_file(path), text);
}

TEST_F(ConfigTest, SaveRouteTableInTheMiddle) {
  std::string path = write("config.toml",
                           "policy = \"ask\"\n\n[route]  # calibrated\n# how sure the local model must be\nmax_prompt_nll = 2.0\n"
                           "cascade = false\n\n# endpoints\n[[remote]]\nurl = \"http://h/v1\"\nmodel = \"m\"\n");
  RouteThresholds t = sample_thresholds(dir_);
  t.classifier = "/elsewhere/clf.json";  // outside the folder: stays absolute
  ASSERT_TRUE(save_route_thresholds(path, t).ok());
  auto c = load_route_config(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->route, t);
  ASSERT_EQ(c->remotes.size(), 1u);
  EXPECT_EQ(c->remotes[0].base_url, "http://h/v1");
  std::string text = test::read_file(path);
  EXPECT_NE(text.find("[route]  # calibrated\n# how sure the local model must be\nmax_prompt_nll = "), std::string::npos) << text;
  EXPECT_NE(text.find("# endpoints\n[[remote]]"), std::string::npos) << text;
  EXPECT_NE(text.find("classifier = \"/elsewhere/clf.json\""), std::string::npos) << text;
}

TEST_F(ConfigTest, SaveReplacesDottedAndInlineRouteTables) {
  for (const char* text : {"policy = \"ask\"\nroute.cascade = true\nroute.draft_tokens = 8\nlocal = [\"a.gguf\"]\n",
                           "route = { cascade = true, draft_tokens = 8 }\nlocal = [\"a.gguf\"]\n",
                           "local = [\"a.gguf\"]\n"}) {
    std::string path = write("config.toml", text);
    RouteThresholds t = sample_thresholds(dir_);
    Status s = save_route_thresholds(path, t);
    ASSERT_TRUE(s.ok()) << text << ": " << s.message();
    auto c = load_route_config(path);
    ASSERT_TRUE(c.ok()) << c.error() << "\n" << test::read_file(path);
    EXPECT_EQ(c->route, t) << text;
    EXPECT_EQ(c->local_models, (std::vector<std::string>{"a.gguf"})) << text;
  }
}

TEST_F(ConfigTest, SaveCreatesFileAndFolder) {
  std::string path = dir_ + "/new/home/config.toml";
  RouteThresholds t;
  t.max_prompt_nll = 4.25;
  ASSERT_TRUE(save_route_thresholds(path, t).ok());
  auto c = load_route_config(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->route, t);
  EXPECT_EQ(without_path(*c).remotes.size(), 0u);
  RouteConfig expect;
  expect.route = t;
  EXPECT_EQ(without_path(*c), expect);
}

TEST_F(ConfigTest, SaveKeepsFileMode) {
  std::string path = write("config.toml", "policy = \"ask\"\n");
  ::chmod(path.c_str(), 0600);
  ASSERT_TRUE(save_route_thresholds(path, RouteThresholds{}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ConfigTest, SaveRefusesBadValuesAndBadFiles) {
  std::string good = "policy = \"ask\"\n";
  std::string path = write("config.toml", good);
  RouteThresholds t;
  t.draft_tokens = 0;
  Status s = save_route_thresholds(path, t);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("draft_tokens"), std::string::npos) << s.message();
  t = RouteThresholds{};
  t.classifier_threshold = std::nan("");
  EXPECT_FALSE(save_route_thresholds(path, t).ok());
  EXPECT_EQ(test::read_file(path), good);
  // A file that does not load is left alone: rewriting it could lose what the user meant.
  std::string bad = "policy = \"ask\"\nlocal = [\n";
  write("config.toml", bad);
  s = save_route_thresholds(path, RouteThresholds{});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path + ":"), std::string::npos) << s.message();
  EXPECT_EQ(test::read_file(path), bad);
}

TEST_F(ConfigTest, DescribeNeverShowsTheKey) {
  const char* secret = "sk-test-9f8e7d6c5b4a-never-print-me";
  ScopedEnv key("SLIM_CONFIG_TEST_KEY", secret);
  std::string path = write("config.toml", kFullConfig);
  auto c = load_route_config(path);
  ASSERT_TRUE(c.ok()) << c.error();
  std::string d = describe_route_config(*c);
  EXPECT_EQ(d.find(secret), std::string::npos) << d;
  EXPECT_NE(d.find("api_key_env = \"SLIM_CONFIG_TEST_KEY\"  # SLIM_CONFIG_TEST_KEY is set"), std::string::npos) << d;
  {
    ScopedEnv unset("SLIM_CONFIG_TEST_KEY", nullptr);
    EXPECT_NE(describe_route_config(*c).find("# SLIM_CONFIG_TEST_KEY is not set"), std::string::npos);
  }
}

TEST_F(ConfigTest, DescribeReadsBackEqual) {
  std::string path = write("config.toml", kFullConfig);
  auto c = load_route_config(path);
  ASSERT_TRUE(c.ok()) << c.error();
  // Elsewhere, so a relative classifier path would not resolve the same by accident.
  std::string copy = write("other/described.toml", describe_route_config(*c));
  auto back = load_route_config(copy);
  ASSERT_TRUE(back.ok()) << back.error() << "\n" << test::read_file(copy);
  EXPECT_EQ(without_path(*back), without_path(*c)) << test::read_file(copy);

  // The defaults too, and awkward values.
  RouteConfig odd;
  odd.route = sample_thresholds(dir_);
  odd.local_models = {"a \"b\".gguf", "c\\d.gguf", "é.gguf"};
  RemoteEndpoint ep;
  ep.base_url = "http://h/v1";
  ep.model = "m\tx";
  ep.timeout_s = 0.001;
  ep.connect_timeout_s = 1e-5;
  odd.remotes.push_back(ep);
  odd.privacy.markers = {};
  for (const RouteConfig& x : {RouteConfig{}, odd}) {
    std::string p = write("x.toml", describe_route_config(x));
    auto y = load_route_config(p);
    ASSERT_TRUE(y.ok()) << y.error() << "\n" << test::read_file(p);
    EXPECT_EQ(without_path(*y), x) << test::read_file(p);
  }
}

// ---- slim config show ----

struct SlimRun {
  int status = -1;
  std::string out, err;
};

SlimRun run_slim(const std::string& env_and_args, const std::string& err_file) {
  auto r = test::run_command(env_and_args + " 2>'" + err_file + "'");
  return {r.status, r.out, test::read_file(err_file)};
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

TEST_F(ConfigTest, CliShowDefaults) {
  std::string home = dir_ + "/home";
  fs::create_directories(home);
  SlimRun r = run_slim("SLIM_HOME='" + home + "' '" + test::slim_binary() + "' config show", dir_ + "/err");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.rfind("# no config file: defaults", 0), 0u) << r.out;
  // The rest is a config that reads back as the defaults.
  std::string p = write("shown.toml", r.out);
  auto c = load_route_config(p);
  ASSERT_TRUE(c.ok()) << c.error() << "\n" << r.out;
  EXPECT_EQ(without_path(*c), RouteConfig{});
}

TEST_F(ConfigTest, CliShowFile) {
  std::string home = dir_ + "/home";
  const char* secret = "sk-cli-5566778899-never-print-me";
  std::string path = write("home/config.toml", kFullConfig);
  std::string env = "SLIM_HOME='" + home + "' SLIM_CONFIG_TEST_KEY='" + secret + "' '" + test::slim_binary() + "'";
  SlimRun r = run_slim(env + " config show", dir_ + "/err");
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = lines_of(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "# config file: " + path);
  EXPECT_NE(r.out.find("name = \"gpt\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# SLIM_CONFIG_TEST_KEY is set"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
  auto want = load_route_config(path);
  ASSERT_TRUE(want.ok());
  std::string shown = write("shown.toml", r.out);
  auto back = load_route_config(shown);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(without_path(*back), without_path(*want));

  // --config FILE, elsewhere; and --json.
  std::string other = write("elsewhere.toml", "policy = \"local-only\"\n");
  SlimRun o = run_slim(env + " config show --config '" + other + "'", dir_ + "/err");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(lines_of(o.out)[0], "# config file: " + other);
  EXPECT_NE(o.out.find("policy = \"local-only\""), std::string::npos) << o.out;
  SlimRun j = run_slim(env + " config show --json", dir_ + "/err");
  ASSERT_EQ(j.status, 0) << j.err;
  EXPECT_EQ(j.out.find(secret), std::string::npos) << j.out;
  auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["file"], path);
  EXPECT_EQ(json["policy"], "auto");
  EXPECT_EQ(json["remote"][0]["name"], "gpt");
  EXPECT_EQ(json["remote"][0]["api_key_set"], true);
  EXPECT_EQ(json["remote"][0]["timeout"], 90.0);
  EXPECT_EQ(json["route"]["draft_tokens"], 32);
}

TEST_F(ConfigTest, CliShowBadFile) {
  std::string home = dir_ + "/home";
  std::string path = write("home/config.toml", "policy = \"ask\"\n[route]\nfoo = 1\n");
  SlimRun r = run_slim("SLIM_HOME='" + home + "' '" + test::slim_binary() + "' config show", dir_ + "/err");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "slim: error: " + path + ":3: unknown key 'route.foo'\n");
  SlimRun m = run_slim("SLIM_HOME='" + home + "' '" + test::slim_binary() + "' config show --config '" + dir_ + "/missing.toml'",
                   dir_ + "/err");
  EXPECT_EQ(m.status, 1);
  ASSERT_EQ(lines_of(m.err).size(), 1u) << m.err;
  EXPECT_EQ(m.err.rfind("slim: error: ", 0), 0u) << m.err;
  EXPECT_NE(m.err.find(dir_ + "/missing.toml"), std::string::npos) << m.err;
  SlimRun n = run_slim("SLIM_HOME='" + home + "' '" + test::slim_binary() + "' config", dir_ + "/err");
  EXPECT_EQ(n.status, 1);
  EXPECT_EQ(lines_of(n.err).size(), 1u) << n.err;
}

}  // namespace
}  // namespace slim
