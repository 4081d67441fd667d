// Tokenizer throughput per vocabulary family:
//   tokenize/<family>    tokenize() of ~1 MB of mixed text (every .inp string of
//                        ../shared/tokenizer, repeated); bytes_per_second = input bytes
//   detokenize/<family>  detokenize() of the resulting ids; bytes_per_second = output bytes
// Built as build/bench/tokenizer_bench.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

std::string shared_dir() {
  const char* env = std::getenv("SLIM_SHARED_DIR");
  return env && *env ? env : SLIM_SHARED_DIR;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ~1 MB: the .inp files' strings (code, prose, CJK, emoji, numbers, whitespace).
std::string mixed_text() {
  std::string base;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(shared_dir() + "/tokenizer"))
    if (e.path().extension() == ".inp") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    std::string s = read_all(p);
    const std::string sep = "\n__ggml_vocab_test__\n";
    size_t from = 0;
    for (size_t at; (at = s.find(sep, from)) != std::string::npos; from = at + sep.size()) {
      base.append(s, from, at - from);
      base += '\n';
    }
    base.append(s, from, std::string::npos);
  }
  std::string text;
  while (text.size() < (1u << 20)) text += base;
  return text;
}

void register_all() {
  static const std::string text = mixed_text();
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(shared_dir() + "/tokenizer")) {
    const std::string n = e.path().filename().string();
    if (n.rfind("ggml-vocab-", 0) == 0 && e.path().extension() == ".gguf") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    auto tok = slim::Tokenizer::from_file(path);
    if (!tok) continue;
    std::string family = std::filesystem::path(path).stem().string().substr(11);
    std::shared_ptr<slim::Tokenizer> t = *tok;
    benchmark::RegisterBenchmark(("tokenize/" + family).c_str(), [t](benchmark::State& st) {
      size_t n = 0;
      for (auto _ : st) {
        auto ids = t->tokenize(text, false, false);
        n = ids.size();
        benchmark::DoNotOptimize(ids.data());
      }
      st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(text.size()));
      st.counters["tokens"] = static_cast<double>(n);
    })->Unit(benchmark::kMillisecond);
    const auto ids = t->tokenize(text, false, false);
    benchmark::RegisterBenchmark(("detokenize/" + family).c_str(), [t, ids](benchmark::State& st) {
      size_t n = 0;
      for (auto _ : st) {
        std::string s = t->detokenize(ids);
        n = s.size();
        benchmark::DoNotOptimize(s.data());
      }
      st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(n));
    })->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
