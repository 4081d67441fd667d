// The privacy guard: finds personal data and secrets in text that is about to
// leave the machine, replaces each value with a numbered placeholder
// ([EMAIL_1], [PHONE_2], ...: numbered per category, the same value the same
// placeholder within a request) and puts the values back into the answer,
// also when it arrives in chunks that split a placeholder.
//
// Built-in categories: email, phone, card (Luhn-checked), iban (mod-97
// checked), national_id (US SSN and other common national formats), ip
// (IPv4/IPv6), secret (PEM private keys, API keys and tokens, password= /
// secret: assignments, bearer tokens), url_credentials (user:pass@ in URLs);
// plus user rules (PCRE2). Look-alikes that fail their checksum or format
// (an order number failing Luhn, a version string, an ISBN) are left alone.
//
// Choices where the input is ambiguous (detector.cpp has the details):
// - a dotted quad after "version", "ver", "v", "build", "release",
//   "section", "chapter", "§"... is a version or section number, not an IP;
//   so is one glued to a letter ("v1.2.3.4") or with leading zeros;
// - in a URL only the userinfo is replaced: https://[URL_CREDENTIALS_1]@host/path;
// - key = value secrets replace the value and keep the key (password=[SECRET_1]);
//   a letters-only value followed by more words after a ':' is prose
//   ("Password: click the link"), and a bare "token" needs a value of 8+
//   characters that is not all digits ("token: 50256" is a token id);
// - custom categories are normalised to lower snake_case ("Project Code" →
//   project_code, placeholder [PROJECT_CODE_1]); a group named "value" in a
//   custom pattern narrows the replacement to that group.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slim::privacy {

struct Rules {
  std::vector<std::string> disabled;  // built-in categories switched off
  std::vector<std::pair<std::string, std::string>> custom;  // (category, PCRE2 pattern)
};

struct Finding {
  std::string category;
  size_t begin = 0, end = 0;  // byte offsets of the value in the text
};

// Compiled rules; immutable and thread-safe after create().
class Detector {
 public:
  static Result<std::shared_ptr<const Detector>> create(const Rules& rules);
  ~Detector();
  // Non-overlapping findings in text order.
  std::vector<Finding> find(std::string_view text) const;
  static const std::vector<std::string>& builtin_categories();

 private:
  Detector() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request's placeholders: every text of the request goes through the
// same Redaction so a value repeated across messages keeps its placeholder.
class Redaction {
 public:
  explicit Redaction(std::shared_ptr<const Detector> d) : detector_(std::move(d)) {}
  std::string redact(std::string_view text);
  // Placeholders back to their values (unknown placeholders are left as they are).
  std::string restore(std::string_view text) const;
  const std::map<std::string, int>& counts() const { return counts_; }  // category → values replaced
  bool empty() const { return values_.empty(); }

 private:
  std::shared_ptr<const Detector> detector_;
  std::map<std::string, std::string> by_value_;        // value → placeholder
  std::map<std::string, std::string> values_;          // placeholder → value
  std::map<std::string, int> counts_;
  std::map<std::string, int> next_;                    // category → last number handed out
};

// Longest placeholder the guard makes ("[" + label of at most 48 + "_" +
// number + "]"); StreamRestorer holds back at most this much.
inline constexpr size_t kMaxPlaceholderSize = 64;

// The placeholder label of a category: "national_id" → "NATIONAL_ID".
std::string placeholder_label(std::string_view category);

// Restores placeholders in a stream of chunks: text that may be the start of
// a placeholder is held back until the next chunk decides.
class StreamRestorer {
 public:
  explicit StreamRestorer(const Redaction& r) : r_(r) {}
  std::string push(std::string_view chunk);
  std::string finish();  // whatever is still held back

 private:
  const Redaction& r_;
  std::string held_;
};

}  // namespace slim::privacy
