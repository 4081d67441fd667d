// `slim bench`: prompt processing (pp) and decode (tg) tokens/s, and decode's
// share of the memory read-bandwidth roofline measured on this machine.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/options.h"
#include "engine/bench.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"

namespace slim {

CommandRun register_bench(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    int n_prompt = 512, n_gen = 128, reps = 3, depth = 0;
    bool json = false, remeasure = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prefill and decode speed of a model");
  add_model_options(*cmd, o->model, false);
  cmd->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens for the prefill test (0: skip)");
  cmd->add_option("-n,--n-gen", o->n_gen, "generated tokens for the decode test (0: skip)");
  cmd->add_option("-r,--repetitions", o->reps, "repetitions of each test");
  cmd->add_option("-d,--n-depth", o->depth, "tokens already in the cache when each test starts (as llama-bench -d)");
  cmd->add_flag("--json", o->json, "print one JSON object");
  cmd->add_flag("--remeasure-bandwidth", o->remeasure, "measure the read bandwidth again instead of using the cached figure");
  return [o]() {
    if (o->n_prompt < 0 || o->n_gen < 0 || o->reps < 1 || o->depth < 0)
      return fail("bad test sizes (-p, -n, -d >= 0, -r >= 1)");
    if (auto st = init_kernels(); !st) return fail(st.message());
    ModelOptions mo = o->model;
    mo.n_ctx = o->depth + std::max({o->n_prompt, o->n_gen, 16});
    if (mo.n_batch < o->n_prompt) mo.n_batch = std::max(o->n_prompt, 1);
    auto e = load_engine(mo);
    if (!e) return fail(e.error());
    const Model& m = (*e)->model();
    const int threads = o->model.n_threads > 0 ? o->model.n_threads : physical_core_count();
    SpeedStats pp, tg;
    if (o->n_prompt > 0) {
      auto r = bench_prefill(**e, o->n_prompt, o->reps, o->depth);
      if (!r) return fail(r.error());
      pp = *r;
    }
    if (o->n_gen > 0) {
      auto r = bench_decode(**e, o->n_gen, o->reps, o->depth);
      if (!r) return fail(r.error());
      tg = *r;
    }
    // The model's peak, taken before the bandwidth probe allocates its 1 GiB buffer.
    const size_t peak_rss = peak_rss_bytes();
    const double bw = read_bandwidth_gbs(threads, o->remeasure);
    // Decode reads every weight byte once per token, and the cached keys and
    // values of every earlier token: on average depth + (n_gen + 1) / 2 of them.
    const double kv_read = (double)(*e)->kv_bytes_per_token() * (o->depth + (o->n_gen + 1) / 2.0);
    const double roofline_tps = bw * 1e9 / ((double)m.weight_bytes + kv_read);
    const double frac = tg.tps_mean / roofline_tps;
    const std::string isa = isa_name(kernels().isa);
    if (o->json) {
      nlohmann::json j = {{"model", o->model.model},
                          {"size_bytes", m.weight_bytes},
                          {"n_params", m.n_params},
                          {"threads", threads},
                          {"depth", o->depth},
                          {"isa", isa},
                          {"pp", {{"n_tokens", pp.n_tokens}, {"tps_mean", pp.tps_mean}, {"tps_sd", pp.tps_sd}}},
                          {"tg", {{"n_tokens", tg.n_tokens}, {"tps_mean", tg.tps_mean}, {"tps_sd", tg.tps_sd}, {"roofline_fraction", frac}}},
                          {"read_bandwidth_gbs", bw},
                          {"peak_rss_bytes", peak_rss}};
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("model: %s (%.1f MiB of weights, %.1f M params), %d threads, %s\n", o->model.model.c_str(),
                m.weight_bytes / 1048576.0, m.n_params / 1e6, threads, isa.c_str());
    // "pp512", or "pp512 @ d4096" as llama-bench labels a test at depth
    auto label = [&](const char* kind, int n) {
      std::string s = kind + std::to_string(n);
      if (o->depth > 0) s += " @ d" + std::to_string(o->depth);
      return s;
    };
    if (o->n_prompt > 0)
      std::printf("%-7s %10.2f ± %.2f tokens/s\n", label("pp", pp.n_tokens).c_str(), pp.tps_mean, pp.tps_sd);
    if (o->n_gen > 0)
      std::printf("%-7s %10.2f ± %.2f tokens/s  (%.0f%% of the %.1f GB/s read roofline: %.1f tokens/s)\n",
                  label("tg", tg.n_tokens).c_str(), tg.tps_mean, tg.tps_sd, 100 * frac, bw, roofline_tps);
    std::printf("peak RSS: %.1f MiB\n", peak_rss / 1048576.0);
    return 0;
  };
}

}  // namespace slim
