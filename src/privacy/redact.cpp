// Redaction (values → numbered placeholders for one request, and back) and
// StreamRestorer (the same backwards over a chunked answer). The detector
// that finds the values lives in detector.cpp.
#include "privacy/redact.h"

#include <set>

namespace slim::privacy {
namespace {

bool label_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

// Whether s (starting with '[') could still grow into a placeholder: "[",
// "[EM", "[EMAIL_1" yes; "[Em", "[1", "[EMAIL_1]" no.
bool placeholder_prefix(std::string_view s) {
  if (s.size() >= kMaxPlaceholderSize) return false;
  if (s.size() >= 2 && !(s[1] >= 'A' && s[1] <= 'Z')) return false;
  for (size_t i = 2; i < s.size(); ++i)
    if (!label_char(s[i])) return false;
  return true;
}

// Every "[LABEL_N]"-shaped token already in text.
std::set<std::string, std::less<>> literal_placeholders(std::string_view text) {
  std::set<std::string, std::less<>> found;
  for (size_t open = text.find('['); open != std::string_view::npos; open = text.find('[', open + 1)) {
    size_t close = open + 1;
    while (close < text.size() && close - open < kMaxPlaceholderSize && label_char(text[close])) ++close;
    if (close < text.size() && text[close] == ']' && close > open + 1) found.emplace(text.substr(open, close + 1 - open));
  }
  return found;
}

}  // namespace

std::string placeholder_label(std::string_view category) {
  std::string label(category);
  for (char& c : label) {
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
    else if (!label_char(c)) c = '_';
  }
  return label;
}

std::string Redaction::redact(std::string_view text) {
  std::vector<Finding> found = detector_->find(text);
  if (found.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  const auto literal = literal_placeholders(text);
  for (const Finding& f : found) {
    out.append(text.substr(pos, f.begin - pos));
    std::string value(text.substr(f.begin, f.end - f.begin));
    auto it = by_value_.find(value);
    if (it == by_value_.end()) {
      // A number whose placeholder the text already contains literally
      // (a pasted earlier answer) is skipped, so restore() cannot turn
      // that literal text into this value.
      std::string label = placeholder_label(f.category), ph;
      int& n = next_[f.category];
      do ph = "[" + label + "_" + std::to_string(++n) + "]";
      while (literal.count(ph));
      it = by_value_.emplace(value, ph).first;
      values_.emplace(ph, value);
      ++counts_[f.category];
    }
    out += it->second;
    pos = f.end;
  }
  out.append(text.substr(pos));
  return out;
}

std::string Redaction::restore(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    size_t open = text.find('[', pos);
    if (open == std::string_view::npos) break;
    size_t close = open + 1;
    while (close < text.size() && close - open < kMaxPlaceholderSize && label_char(text[close])) ++close;
    if (close < text.size() && text[close] == ']') {
      auto it = values_.find(std::string(text.substr(open, close + 1 - open)));
      if (it != values_.end()) {
        out.append(text.substr(pos, open - pos));
        out += it->second;
        pos = close + 1;
        continue;
      }
    }
    out.append(text.substr(pos, open + 1 - pos));
    pos = open + 1;
  }
  out.append(text.substr(pos));
  return out;
}

std::string StreamRestorer::push(std::string_view chunk) {
  held_.append(chunk);
  // Only the last '[' can open an unfinished placeholder: labels never
  // contain '[', so an earlier one is either complete or broken already.
  size_t keep = held_.size();
  size_t open = held_.rfind('[');
  if (open != std::string::npos && placeholder_prefix(std::string_view(held_).substr(open))) keep = open;
  std::string out = r_.restore(std::string_view(held_).substr(0, keep));
  held_.erase(0, keep);
  return out;
}

std::string StreamRestorer::finish() {
  std::string out = r_.restore(held_);
  held_.clear();
  return out;
}

}  // namespace slim::privacy
