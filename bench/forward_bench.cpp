// Whole-model speed without the engine, tokenizer or CLI (for profiling the
// forward pass under callgrind, or when the slim binary is not at hand):
//   forward_bench synth PRESET TYPE OUT.gguf     write a random-weight model (model/synth.h)
//   forward_bench run FILE [-p 512] [-n 128] [-t 2] [-r 3] [--f32-cache]
// "run" times a prefill of -p random tokens in one batch and -n single-token
// decode steps, like `slim bench` (one warm-up run first), and prints tokens/s.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "model/model.h"
#include "model/synth.h"

using namespace slim;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void report(const char* what, int n, const std::vector<double>& ms) {
  std::vector<double> tps;
  for (double m : ms) tps.push_back(n * 1000.0 / m);
  double mean = 0, var = 0;
  for (double x : tps) mean += x;
  mean /= tps.size();
  for (double x : tps) var += (x - mean) * (x - mean);
  const double sd = tps.size() > 1 ? std::sqrt(var / (tps.size() - 1)) : 0;
  std::printf("%s%-5d %10.2f ± %.2f tokens/s\n", what, n, mean, sd);
}

int run(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string path = argv[2];
  int np = 512, ng = 128, nt = 0, reps = 3;
  CacheType ct = CacheType::F16;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "-p") np = next();
    else if (a == "-n") ng = next();
    else if (a == "-t") nt = next();
    else if (a == "-r") reps = next();
    else if (a == "--f32-cache") ct = CacheType::F32;
  }
  auto m = load_model(path);
  if (!m) { std::fprintf(stderr, "%s\n", m.error().c_str()); return 1; }
  ThreadPool pool(nt);
  ForwardState st;
  st.pool = &pool;
  st.kv = make_kv_cache((*m)->hp, std::max({np, ng, 16}), 1, ct);
  std::printf("%s: %.1f MiB, %d threads, %s\n", path.c_str(), (*m)->weight_bytes / 1048576.0, pool.size(),
              isa_name(kernels().isa));
  std::mt19937 rng(1);
  std::vector<float> logits;
  if (np > 0) {
    std::vector<double> ms;
    for (int r = 0; r <= reps; ++r) {
      st.kv.clear_seq(0);
      Batch b;
      for (int i = 0; i < np; ++i) b.add((int)(rng() % (*m)->hp.n_vocab), i, 0, i == np - 1);
      logits.clear();
      const double t0 = now_ms();
      if (auto s = forward(**m, st, b, logits); !s) { std::fprintf(stderr, "%s\n", s.message().c_str()); return 1; }
      if (r > 0) ms.push_back(now_ms() - t0);
    }
    report("pp", np, ms);
  }
  if (ng > 0) {
    std::vector<double> ms;
    for (int r = 0; r <= reps; ++r) {
      st.kv.clear_seq(0);
      const double t0 = now_ms();
      for (int i = 0; i < ng; ++i) {
        Batch b;
        b.add((int)(rng() % (*m)->hp.n_vocab), i, 0, true);
        logits.clear();
        if (auto s = forward(**m, st, b, logits); !s) { std::fprintf(stderr, "%s\n", s.message().c_str()); return 1; }
      }
      if (r > 0) ms.push_back(now_ms() - t0);
    }
    report("tg", ng, ms);
  }
  return 0;
}

int synth(int argc, char** argv) {
  if (argc < 5) return 2;
  const SynthShape* s = find_synth_preset(argv[2]);
  if (!s) { std::fprintf(stderr, "unknown preset %s\n", argv[2]); return 1; }
  auto p = plan_synth(*s, argv[3]);
  if (!p) { std::fprintf(stderr, "%s\n", p.error().c_str()); return 1; }
  ThreadPool pool;
  const double t0 = now_ms();
  if (auto st = write_synth(*p, {argv[4], 1, 0.02f}, pool); !st) { std::fprintf(stderr, "%s\n", st.message().c_str()); return 1; }
  std::printf("wrote %s (random weights by design): %.1f MiB in %.1f s\n", argv[4], p->data_bytes() / 1048576.0,
              (now_ms() - t0) / 1000);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int rc = 2;
  if (argc >= 2 && std::strcmp(argv[1], "run") == 0) rc = run(argc, argv);
  else if (argc >= 2 && std::strcmp(argv[1], "synth") == 0) rc = synth(argc, argv);
  if (rc == 2) std::fprintf(stderr, "usage: forward_bench synth PRESET TYPE OUT | run FILE [-p N] [-n N] [-t N] [-r N]\n");
  return rc;
}
