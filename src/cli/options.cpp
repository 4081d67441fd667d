// Model loading options shared by commands.
#include "cli/options.h"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "gguf/gguf.h"
#include "store/planner.h"
#include "store/store.h"

namespace slim {

// `-c auto`: the largest context that fits in memory (see store/planner.h).
constexpr int kAutoCtx = -1;

void add_model_options(CLI::App& cmd, ModelOptions& o, bool with_ctx) {
  cmd.add_option("-m,--model", o.model, "model file (GGUF) or store name");
  cmd.add_option("MODEL", o.model, "model file (GGUF) or store name, instead of -m");
  if (with_ctx)
    cmd.add_option("-c,--ctx-size", o.n_ctx, "context size in tokens, or auto: the largest that fits in memory (default: the model's, at most 4096)")
        ->transform([](std::string s) { return s == "auto" ? std::to_string(kAutoCtx) : s; }, "", "auto");
  cmd.add_option("-t,--threads", o.n_threads, "threads (default: physical cores)");
  cmd.add_option("-b,--batch-size", o.n_batch, "prompt tokens per forward pass");
  cmd.add_option("--cache-type", o.cache_type, "KV cache type: f16, f32 or q8_0");
}

Result<std::unique_ptr<Engine>> load_engine(const ModelOptions& o) {
  if (o.model.empty()) return Status::error("no model given (use -m FILE)");
  auto ct = parse_cache_type(o.cache_type);
  if (!ct) return Status::error(ct.error());
  auto path = resolve_model(o.model);
  if (!path) return Status::error(path.error());
  if (o.n_ctx < 0 && o.n_ctx != kAutoCtx) return Status::error(format("bad context size %d", o.n_ctx));
  if (o.n_threads < 0) return Status::error(format("bad thread count %d", o.n_threads));
  EngineParams p;
  p.n_threads = o.n_threads;
  p.n_batch = o.n_batch;
  p.cache_type = *ct;
  p.n_ctx = o.n_ctx == kAutoCtx ? 0 : o.n_ctx;
  if (p.n_ctx == 0) {
    // The trained context of a small model can be 128k tokens: a default that
    // large would reserve gigabytes of KV cache, so cap it as other tools do.
    auto f = GgufFile::open(*path);
    if (!f) return Status::error(f.error());
    auto arch = (*f)->get_string("general.architecture").value_or("");
    int trained = (int)(*f)->get_int(arch + ".context_length").value_or(kDefaultCtx);
    p.n_ctx = std::min(trained > 0 ? trained : kDefaultCtx, kDefaultCtx);
  }
  // Refuse a configuration that will not fit before allocating it.
  PlanParams plan{p.n_ctx, p.n_seq, p.n_batch, p.cache_type};
  auto ctx = plan_run(*path, plan, o.n_ctx == kAutoCtx);
  if (!ctx) return Status::error(ctx.error());
  p.n_ctx = *ctx;
  return Engine::load(*path, p);
}

}  // namespace slim
