// Chat-template rendering speed: a 20-message conversation through each real
// template in ../shared/chat (parse once, render many times).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/template.h"

namespace {

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::ordered_json conversation() {
  slim::ChatContext c;
  c.bos_token = "<s>";
  c.eos_token = "</s>";
  for (int i = 0; i < 10; ++i) {
    c.messages.push_back({{"role", "user"}, {"content", "Question " + std::to_string(i) + ": how do I sort a list in C++?"}});
    c.messages.push_back({{"role", "assistant"}, {"content", "Use std::sort with a comparator.\n```cpp\nstd::sort(v.begin(), v.end());\n```"}});
  }
  return slim::make_chat_context(c);
}

void render(benchmark::State& state, const std::string& path) {
  auto t = slim::ChatTemplate::parse(read(path));
  if (!t) {
    state.SkipWithError(t.error().c_str());
    return;
  }
  const auto ctx = conversation();
  size_t bytes = 0;
  for (auto _ : state) {
    auto out = t->render(ctx);
    if (!out) {
      state.SkipWithError(out.error().c_str());
      return;
    }
    bytes += out->size();
    benchmark::DoNotOptimize(out->data());
  }
  state.SetBytesProcessed((int64_t)bytes);
}

// Registered at start-up for every template found (the shared folder is data, not code).
const int registered = [] {
  std::filesystem::path dir = std::filesystem::path(SLIM_SHARED_DIR) / "chat";
  if (!std::filesystem::exists(dir)) return 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".jinja") continue;
    std::string p = e.path().string();
    benchmark::RegisterBenchmark(("render20/" + e.path().stem().string()).c_str(), [p](benchmark::State& s) { render(s, p); });
  }
  return 1;
}();

}  // namespace

BENCHMARK_MAIN();
