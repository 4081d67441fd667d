// Speed measurement for `slim bench`.
#include "engine/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "kernels/threadpool.h"
#include "base/mapped_file.h"

namespace slim {

namespace {

SpeedStats stats(int n, const std::vector<double>& ms) {
  SpeedStats s;
  s.n_tokens = n;
  for (double m : ms) s.samples.push_back(n * 1000.0 / m);
  double sum = 0;
  for (double x : s.samples) sum += x;
  s.tps_mean = sum / s.samples.size();
  double var = 0;
  for (double x : s.samples) var += (x - s.tps_mean) * (x - s.tps_mean);
  s.tps_sd = s.samples.size() > 1 ? std::sqrt(var / (s.samples.size() - 1)) : 0;
  return s;
}

std::vector<int32_t> random_tokens(int n, int n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)(rng() % n_vocab);
  return t;
}

}  // namespace

namespace {

// Runs `test` (n tokens a run) reps + 1 times, the first a warm-up, each
// after the cache of sequence 0 is set back to `depth` random tokens; those
// are evaluated once, untimed, and kept between runs.
Result<SpeedStats> timed_runs(Engine& e, int n, int reps, int depth, const std::function<Status()>& test) {
  if (n <= 0 || depth < 0 || depth + n > e.n_ctx())
    return Status::error(format("%d tokens after a depth of %d do not fit the context %d", n, depth, e.n_ctx()));
  e.clear(0);
  std::vector<int32_t> prefix = random_tokens(depth, e.model().hp.n_vocab, 3);
  std::vector<float> logits;
  if (depth > 0)
    if (auto st = e.eval(0, prefix.data(), depth, logits); !st) return st;
  // reuse_prefix always leaves one token to evaluate: with one more token it keeps exactly `depth`
  prefix.push_back(-1);
  std::vector<double> ms;
  for (int r = 0; r <= reps; ++r) {
    e.reuse_prefix(0, prefix);
    auto t0 = std::chrono::steady_clock::now();
    if (auto st = test(); !st) return st;
    if (r > 0) ms.push_back(elapsed_ms(t0));
  }
  e.clear(0);
  return stats(n, ms);
}

}  // namespace

Result<SpeedStats> bench_prefill(Engine& e, int n_prompt, int reps, int depth) {
  std::vector<int32_t> toks = random_tokens(n_prompt, e.model().hp.n_vocab, 1);
  std::vector<float> logits;
  return timed_runs(e, n_prompt, reps, depth, [&] { return e.eval(0, toks.data(), n_prompt, logits); });
}

Result<SpeedStats> bench_decode(Engine& e, int n_gen, int reps, int depth) {
  std::vector<int32_t> toks = random_tokens(n_gen, e.model().hp.n_vocab, 2);
  std::vector<float> logits;
  return timed_runs(e, n_gen, reps, depth, [&] {
    for (int i = 0; i < n_gen; ++i)
      if (auto st = e.eval(0, &toks[i], 1, logits); !st) return st;
    return Status();
  });
}

namespace {

std::string cache_file() {
  const char* x = std::getenv("XDG_CACHE_HOME");
  const char* h = std::getenv("HOME");
  std::string dir = x && *x ? std::string(x) + "/slim" : std::string(h ? h : "/tmp") + "/.cache/slim";
  return dir + "/bandwidth.json";
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// Sums [b, e) of buf with wide loads. Cloned per ISA (picked at load time)
// because the figure is a ceiling: with 8-byte loads one core keeps too few
// lines in flight and reads about a fifth slower than with 64-byte loads.
__attribute__((target_clones("avx512f", "avx2", "default")))
uint64_t sum_range(const uint64_t* buf, size_t b, size_t e) {
  typedef uint64_t v8 __attribute__((vector_size(64)));
  v8 s0 = {}, s1 = {}, s2 = {}, s3 = {};
  const v8* p = (const v8*)(buf + b);
  const size_t n = (e - b) / 32;  // four 64-byte vectors a step
  for (size_t i = 0; i < n; ++i) {
    s0 += p[4 * i];
    s1 += p[4 * i + 1];
    s2 += p[4 * i + 2];
    s3 += p[4 * i + 3];
  }
  const v8 s = s0 + s1 + s2 + s3;
  uint64_t t = 0;
  for (int k = 0; k < 8; ++k) t += s[k];
  return t;
}

double measure_bandwidth(int n_threads) {
  // 1 GiB, far past any cache, each thread reading its share. The best of
  // several passes, as STREAM reports: a pass can only be slowed by other
  // work, never sped up, so the best is the closest to what the memory does.
  const size_t n = (size_t)1 << 27;  // uint64 elements
  uint64_t* buf = (uint64_t*)std::aligned_alloc(64, n * sizeof(uint64_t));
  if (!buf) return 0;
  ThreadPool pool(n_threads);
  auto share = [&](int ith, int nth, size_t* b, size_t* e) {  // 256-byte aligned shares
    *b = n / 256 * ith / nth * 256;
    *e = n / 256 * (ith + 1) / nth * 256;
  };
  pool.run([&](int ith, int nth) {
    size_t b, e;
    share(ith, nth, &b, &e);
    for (size_t i = b; i < e; ++i) buf[i] = i;
  });
  double best = 0;
  std::vector<uint64_t> sink(n_threads);
  for (int rep = 0; rep < 9; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      size_t b, e;
      share(ith, nth, &b, &e);
      sink[ith] = sum_range(buf, b, e);
    });
    const double s = elapsed_ms(t0) / 1000.0;
    best = std::max(best, n * 8.0 / s / 1e9);
  }
  volatile uint64_t keep = sink[0];
  (void)keep;
  std::free(buf);
  return best;
}

}  // namespace

double read_bandwidth_gbs(int n_threads, bool remeasure) {
  const std::string key = cpu_model() + " / threads " + std::to_string(n_threads);
  const std::string path = cache_file();
  nlohmann::json cache = nlohmann::json::object();
  {
    std::ifstream f(path);
    if (f) {
      cache = nlohmann::json::parse(f, nullptr, false);
      if (!cache.is_object()) cache = nlohmann::json::object();
    }
  }
  if (!remeasure && cache.contains(key) && cache[key].is_number()) return cache[key].get<double>();
  double bw = measure_bandwidth(n_threads);
  cache[key] = bw;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::string text = cache.dump(2);
  (void)write_file_atomic(path, text.data(), text.size());  // a cache: failing to save only costs a re-measure
  return bw;
}

size_t peak_rss_bytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (size_t)ru.ru_maxrss * 1024;
}

}  // namespace slim
