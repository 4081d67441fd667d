// Helpers for the tokenizer tests: the .inp/.out vector formats of
// ../shared/tokenizer (see its README), family discovery by listing the
// folder, and a per-process cache of loaded tokenizers (the large vocabs take
// a moment to load, and many tests share them).
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace slim::test {

inline std::vector<std::string> parse_inp(const std::string& raw) {
  static const std::string kSep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t at = raw.find(kSep, pos);
    if (at == std::string::npos) break;
    out.push_back(raw.substr(pos, at - pos));
    pos = at + kSep.size();
  }
  return out;  // the remainder after the last separator is empty by format
}

inline std::vector<std::vector<int32_t>> parse_out(const std::string& raw) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(raw);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<int32_t> ids;
    std::istringstream nums(line);
    long long v;
    while (nums >> v) ids.push_back(static_cast<int32_t>(v));
    out.push_back(std::move(ids));
  }
  return out;
}

inline std::string tokenizer_dir() { return shared_path("tokenizer"); }

// Families with conformance vectors: every ggml-vocab-F.gguf.inp in the folder.
inline std::vector<std::string> families_with_vectors() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tokenizer_dir(), ec)) {
    const std::string name = e.path().filename().string();
    const std::string pre = "ggml-vocab-", post = ".gguf.inp";
    if (name.size() > pre.size() + post.size() && name.rfind(pre, 0) == 0 &&
        name.compare(name.size() - post.size(), post.size(), post) == 0)
      out.push_back(name.substr(pre.size(), name.size() - pre.size() - post.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every vocab GGUF in the folder, with or without vectors.
inline std::vector<std::string> all_vocab_files() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tokenizer_dir(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) == 0 && name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0)
      out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Loads (once per process) the tokenizer of a file under ../shared.
inline std::shared_ptr<Tokenizer> load_shared_tokenizer(const std::string& rel, std::string* error = nullptr) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(rel);
  if (it != cache.end()) return it->second;
  auto t = Tokenizer::from_file(shared_path(rel));
  if (!t) {
    if (error) *error = t.error();
    return nullptr;
  }
  cache[rel] = *t;
  return *t;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

}  // namespace slim::test
