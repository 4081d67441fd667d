// `slim audit`: what left the machine, from the audit log — one line an
// escalation (or a JSON array with --json), optionally only the recent ones.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <memory>

#include "cli/cli.h"
#include "route/audit.h"
#include "route/config.h"

namespace slim {

namespace {

// A field as printable text: entries are user data (a reason, an id), and a
// control character in one must not drive the terminal.
std::string field(const nlohmann::json& j, const char* key, const char* missing = "-") {
  if (!j.contains(key) || j[key].is_null()) return missing;
  std::string s = j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
  for (char& c : s)
    if ((unsigned char)c < 0x20 || c == 0x7f) c = ' ';
  return s.empty() ? missing : s;
}

std::string redaction_counts(const nlohmann::json& j) {
  if (!j.contains("redactions") || !j["redactions"].is_object() || j["redactions"].empty()) return "no redactions";
  std::string out = "redacted ";
  bool first = true;
  for (const auto& [k, v] : j["redactions"].items()) {
    out += (first ? "" : ",") + k + "=" + (v.is_number() ? std::to_string(v.get<long long>()) : v.dump());
    first = false;
  }
  for (char& c : out)
    if ((unsigned char)c < 0x20 || c == 0x7f) c = ' ';
  return out;
}

std::string entry_line(const nlohmann::json& j) {
  std::string sha = field(j, "payload_sha256", "");
  std::string bytes = j.contains("bytes_sent") && j["bytes_sent"].is_number_unsigned()
                          ? std::to_string(j["bytes_sent"].get<unsigned long long>()) + " B"
                          : "? B";
  std::string line = field(j, "time") + "  " + field(j, "request_id") + "  " + field(j, "endpoint") + "/" +
                     field(j, "model") + "  " + bytes + "  sha256:" + (sha.empty() ? "-" : sha.substr(0, 12)) + "  " +
                     redaction_counts(j) + "  " + field(j, "reason", "(no reason)");
  if (std::string d = field(j, "decision", ""); !d.empty()) line += " [" + d + "]";
  return line;
}

std::string iso_utc(int64_t t) {
  std::time_t s = (std::time_t)t;
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

CommandRun register_audit(CLI::App& app) {
  struct Opts { std::string since, file; bool json = false; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("audit", "list what was sent to remote endpoints (the audit log)");
  cmd->add_option("--since", o->since, "only entries from the last 30m, 1h, 2d, 1w, or since a UTC date/time (2026-12-01, 2026-12-01T10:00:00Z)");
  cmd->add_flag("--json", o->json, "print the entries as one JSON array");
  cmd->add_option("--file", o->file, "audit log to read (default: audit_log in the config, else $SLIM_HOME/audit.jsonl)");
  return [o]() {
    int64_t since = 0;
    if (!o->since.empty()) {
      auto s = parse_since(o->since);
      if (!s) return fail(s.error());
      since = *s;
    }
    std::string path = o->file;
    if (path.empty()) {
      // The log the router writes: the config may name another file.
      auto c = load_default_route_config();
      if (!c) return fail(c.error());
      path = c->audit_log.empty() ? default_audit_path() : c->audit_log;
    }
    auto entries = read_audit(path, since);
    if (!entries) return fail(entries.error());
    if (o->json) {
      std::printf("%s\n", nlohmann::json(*entries).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return 0;
    }
    if (entries->empty()) {
      std::printf("no escalations recorded%s\n", since > 0 ? (" since " + iso_utc(since)).c_str() : "");
      return 0;
    }
    for (const auto& e : *entries) std::printf("%s\n", entry_line(e).c_str());
    return 0;
  };
}

}  // namespace slim
