// `slim perplexity`: perplexity of a model over a text in chunks (the second
// half of each scored), optionally saving the base log-probabilities or
// comparing against a saved base (KL divergence). Conventions: compress/perplexity.h.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "compress/perplexity.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "store/store.h"

namespace slim {

namespace {

struct PerplexityOptions {
  std::string model, file, kld_base, save_logits, cache_type = "f32";
  int n_ctx = 0, n_batch = 512, n_chunks = -1, n_threads = 0;
  bool json = false;
};

nlohmann::json kld_json(const KldResult& k) {
  return {{"base_model", k.base_model},
          {"n_tokens", k.n},
          {"kld_mean", k.kld_mean},
          {"kld_stderr", k.kld_stderr},
          {"kld_median", k.kld_median},
          {"kld_p90", k.kld_p90},
          {"kld_p95", k.kld_p95},
          {"kld_p99", k.kld_p99},
          {"kld_max", k.kld_max},
          {"same_top", k.same_top},
          {"same_top_stderr", k.same_top_stderr},
          {"dp_mean", k.dp_mean},
          {"dp_stderr", k.dp_stderr},
          {"dp_rms", k.dp_rms},
          {"dp_rms_stderr", k.dp_rms_stderr},
          {"ppl_base", k.ppl_base},
          {"ppl_base_stderr", k.ppl_base_stderr},
          {"ln_ppl_ratio", k.ln_ppl_ratio},
          {"ln_ppl_ratio_stderr", k.ln_ppl_ratio_stderr},
          {"ppl_ratio", k.ppl_ratio},
          {"ppl_ratio_stderr", k.ppl_ratio_stderr}};
}

void print_kld(const PerplexityResult& r, const std::string& base_file) {
  const KldResult& k = *r.kld;
  std::printf("base:           %s (%s)\n", k.base_model.c_str(), base_file.c_str());
  std::printf("PPL:            %.4f +/- %.4f   base %.4f +/- %.4f\n", r.ppl, r.ppl_stderr, k.ppl_base, k.ppl_base_stderr);
  std::printf("PPL ratio:      %.6f +/- %.6f   (ln ratio %.6f +/- %.6f)\n", k.ppl_ratio, k.ppl_ratio_stderr,
              k.ln_ppl_ratio, k.ln_ppl_ratio_stderr);
  // %g: a good quantization's divergence is 1e-4 or less, where fixed decimals show zeros
  std::printf("KL divergence:  mean %.6g +/- %.3g, median %.6g, 90%% %.6g, 95%% %.6g, 99%% %.6g, max %.6g\n",
              k.kld_mean, k.kld_stderr, k.kld_median, k.kld_p90, k.kld_p95, k.kld_p99, k.kld_max);
  std::printf("same top token: %.3f +/- %.3f %%\n", 100 * k.same_top, 100 * k.same_top_stderr);
  std::printf("p(correct):     mean delta %.4g +/- %.3g %%, RMS delta %.4g +/- %.3g %%\n", 100 * k.dp_mean,
              100 * k.dp_stderr, 100 * k.dp_rms, 100 * k.dp_rms_stderr);
}

}  // namespace

CommandRun register_perplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity over a text, and KL divergence against a saved base model");
  cmd->footer(
      "The text is tokenized once (BOS first when the vocabulary adds one) and cut into\n"
      "non-overlapping chunks of -c tokens; each chunk is evaluated from an empty cache with\n"
      "its first token replaced by BOS, and only its second half is scored (the first half is\n"
      "context), as llama.cpp's perplexity tool does. PPL = exp(mean NLL); the error is\n"
      "PPL * the standard error of the mean NLL.\n\n"
      "--save-logits FILE keeps the log-probabilities of every scored token (16-bit, with the\n"
      "tokens and a header); --kld-base FILE then compares another model (same vocabulary,\n"
      "text and -c) against it: KL divergence, same top token, delta p, PPL ratio.");
  cmd->add_option("-m,--model", o->model, "model file (GGUF) or store name");
  cmd->add_option("MODEL", o->model, "model file (GGUF) or store name, instead of -m");
  cmd->add_option("-f,--file", o->file, "text file")->required();
  cmd->add_option("-c,--ctx-size", o->n_ctx, "tokens a chunk (default 512, or the model's context when smaller; with --kld-base the base file's)");
  cmd->add_option("-b,--batch-size", o->n_batch, "tokens a forward pass; chunks share one when it holds several (default 512)");
  cmd->add_option("--chunks", o->n_chunks, "evaluate at most N chunks (default: all the text holds)");
  cmd->add_option("-t,--threads", o->n_threads, "threads (default: physical cores)");
  cmd->add_option("--cache-type", o->cache_type, "KV cache type: f32 (default, exact), f16 or q8_0");
  auto* save = cmd->add_option("--save-logits", o->save_logits, "write the base log-probabilities to FILE");
  cmd->add_option("--kld-base", o->kld_base, "compare against the base log-probabilities in FILE")->excludes(save);
  cmd->add_flag("--json", o->json, "print a JSON summary instead of text");
  return [o, cmd]() -> int {
    if (o->model.empty()) return fail("no model given (use -m FILE)");
    if (o->n_ctx < 0 || o->n_batch < 1 || o->n_threads < 0 || o->n_chunks == 0 || o->n_chunks < -1)
      return fail("bad -c, -b, -t or --chunks value");
    auto ct = parse_cache_type(o->cache_type);
    if (!ct) return fail(ct.error());
    auto path = resolve_model(o->model);
    if (!path) return fail(path.error());
    auto text = read_text_file(o->file);
    if (!text) return fail(text.error());

    int n_ctx = o->n_ctx;
    if (!o->kld_base.empty()) {
      auto info = read_logits_info(o->kld_base);
      if (!info) return fail(info.error());
      if (n_ctx > 0 && n_ctx != info->n_ctx)
        return fail(format("%s was made with chunks of %d tokens, not %d (leave -c out to use the base's)",
                           o->kld_base.c_str(), info->n_ctx, n_ctx));
      n_ctx = info->n_ctx;
    }
    if (n_ctx == 0) {
      auto f = GgufFile::open(*path);
      if (!f) return fail(f.error());
      auto arch = (*f)->get_string("general.architecture").value_or("");
      n_ctx = default_perplexity_ctx((int)(*f)->get_int(arch + ".context_length").value_or(0));
    }
    EngineParams ep;
    ep.n_ctx = n_ctx;
    ep.n_seq = std::max(1, o->n_batch / n_ctx);
    ep.n_threads = o->n_threads;
    ep.n_batch = o->n_batch;
    ep.cache_type = *ct;
    auto eng = Engine::load(*path, ep);
    if (!eng) return fail(eng.error());

    PerplexityParams pp;
    pp.n_ctx = n_ctx;
    pp.n_batch = o->n_batch;
    pp.n_chunks = o->n_chunks;
    pp.n_threads = o->n_threads;
    pp.save_logits = o->save_logits;
    pp.kld_base = o->kld_base;
    // Running PPL as llama.cpp prints it, on a terminal only: a pipe gets the result.
    const bool progress = isatty(2);
    auto on_chunk = [&](int i, const PerplexityResult& r) {
      if (!progress) return;
      std::fprintf(stderr, "[%d]%.4f,", i + 1, r.chunks.back().running_ppl);
      std::fflush(stderr);
    };
    if (progress)
      std::fprintf(stderr, "perplexity: chunks of %d tokens (scoring the second half), batch %d\n", n_ctx, o->n_batch);
    auto res = run_perplexity(**eng, *text, pp, on_chunk, *path);
    if (progress) std::fprintf(stderr, "\n");
    if (!res) return fail(res.error());
    const PerplexityResult& r = *res;

    if (o->json) {
      nlohmann::json j = {{"model", *path},
                          {"n_ctx", r.n_ctx},
                          {"n_chunks", r.n_chunks},
                          {"n_tokens_scored", r.n_scored},
                          {"ppl", r.ppl},
                          {"ppl_stderr", r.ppl_stderr},
                          {"nll_mean", r.nll_mean},
                          {"nll_stderr", r.nll_stderr},
                          {"seconds", r.seconds},
                          {"tokens_per_second", r.tokens_per_s}};
      nlohmann::json chunks = nlohmann::json::array();
      for (const ChunkStats& c : r.chunks) {
        nlohmann::json cj = {{"ppl", std::exp(c.nll_mean)}, {"nll_mean", c.nll_mean}, {"running_ppl", c.running_ppl}};
        if (r.kld) cj["kld_mean"] = c.kld_mean;
        chunks.push_back(cj);
      }
      j["chunks"] = chunks;
      if (r.kld) j["kld"] = kld_json(*r.kld);
      if (!o->save_logits.empty()) j["saved_logits"] = o->save_logits;
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("perplexity: %.4f +/- %.5f over %d chunks of %d tokens (%lld scored: the second half of each)\n", r.ppl,
                r.ppl_stderr, r.n_chunks, r.n_ctx, (long long)r.n_scored);
    std::printf("speed:      %.1f tokens/s (%.2f s)\n", r.tokens_per_s, r.seconds);
    if (!o->save_logits.empty()) std::printf("saved:      base log-probabilities in %s\n", o->save_logits.c_str());
    if (r.kld) print_kld(r, o->kld_base);
    return 0;
  };
}

}  // namespace slim
