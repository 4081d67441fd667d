// The audit log of everything that left the machine: append-only JSONL
// ($SLIM_HOME/audit.jsonl), one entry per escalation, written with O_APPEND
// and fsync before the payload is sent. Values are never logged: only the
// sha256 of the exact payload and redaction counts by category.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace slim {

struct AuditEntry {
  std::string time;        // ISO 8601 UTC, filled by append() when empty
  std::string request_id;
  std::string decision;    // "remote" (auto), "explicit" (the request named the endpoint), "confirmed" (ask, user said yes)
  std::string reason;
  nlohmann::json signals = nlohmann::json::object();
  std::string endpoint;    // the endpoint's name
  std::string url;         // where it was sent
  std::string model;       // the remote model
  uint64_t bytes_sent = 0; // payload bytes
  std::string payload_sha256;
  std::map<std::string, int> redactions;  // category → count
};

class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // Appends one line (thread-safe; creates the file and its folder, mode 0600).
  Status append(AuditEntry e);

 private:
  std::string path_;
  std::mutex mu_;
};

std::string default_audit_path();  // $SLIM_HOME/audit.jsonl

// Entries at or after `since_unix` (0: all), oldest first. A torn last line
// (a crash mid-write) is skipped, not an error.
Result<std::vector<nlohmann::json>> read_audit(const std::string& path, int64_t since_unix = 0);
// "1h", "30m", "2d" (ago) or an ISO date/time ("2026-12-01", "2026-12-01T10:00:00Z") → unix seconds.
Result<int64_t> parse_since(const std::string& s);

}  // namespace slim
