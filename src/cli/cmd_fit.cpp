// `slim fit MODEL`: the memory a run would take (weights, KV cache, compute,
// overhead) against this machine's available memory, with a verdict, the
// largest context that fits and a smaller quant when this one does not fit.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "cli/cli.h"
#include "model/model.h"
#include "store/planner.h"
#include "store/store.h"

namespace slim {

CommandRun register_fit(CLI::App& app) {
  struct Opts {
    std::string model, ctx = "", cache_type = "f16", ram;
    int parallel = 1, n_batch = 512;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("fit", "will this model fit in memory? weights, KV cache, compute, verdict");
  cmd->add_option("MODEL", o->model, "store name or GGUF file")->required();
  cmd->add_option("-c,--ctx-size", o->ctx, "context per slot in tokens, or auto (default: the model's, at most 4096)");
  cmd->add_option("--cache-type", o->cache_type, "KV cache type: f16, f32 or q8_0");
  cmd->add_option("--parallel", o->parallel, "parallel sequences (server slots)");
  cmd->add_option("-b,--batch-size", o->n_batch, "prompt tokens per forward pass");
  cmd->add_flag("--json", o->json, "one JSON object (sizes in bytes)");
  cmd->add_option("--ram", o->ram, "memory to plan for (e.g. 8G; default: MemAvailable of /proc/meminfo)");
  return [o]() {
    auto path = resolve_model(o->model);
    if (!path) return fail(path.error());
    auto kv = parse_cache_type(o->cache_type);
    if (!kv) return fail(kv.error());
    if (o->parallel < 1) return fail(format("bad --parallel %d", o->parallel));
    if (o->n_batch < 1) return fail(format("bad --batch-size %d", o->n_batch));
    auto m = load_model(*path);
    if (!m) return fail(m.error());
    const Model& model = **m;
    uint64_t avail = 0;
    std::string avail_from;
    if (!o->ram.empty()) {
      auto r = parse_size(o->ram);
      if (!r) return fail(r.error());
      avail = *r;
      avail_from = "--ram";
    } else {
      auto r = available_memory();
      if (!r) return fail(r.error());
      avail = *r;
      avail_from = std::getenv("SLIM_RAM") ? "SLIM_RAM" : "MemAvailable";
    }
    const int trained = model.hp.n_ctx_train;
    PlanParams p;
    p.cache_type = *kv;
    p.n_seq = o->parallel;
    p.n_batch = o->n_batch;
    if (o->ctx.empty()) {
      p.n_ctx = std::min(trained > 0 ? trained : 4096, 4096);
    } else if (o->ctx == "auto") {
      const int cap = trained > 0 ? trained : 4096;
      p.n_ctx = largest_context(model, p, avail, cap, std::min(256, cap));
      if (p.n_ctx == 0) p.n_ctx = std::min(256, cap);
    } else {
      try {
        size_t used = 0;
        p.n_ctx = std::stoi(o->ctx, &used);
        if (used != o->ctx.size() || p.n_ctx < 1) throw std::invalid_argument(o->ctx);
      } catch (const std::exception&) {
        return fail("bad context size '" + o->ctx + "' (a number of tokens, or auto)");
      }
    }
    FitReport r = check_fit(model, p, avail);
    const char* verdict = r.verdict == Verdict::Fits ? "fits"
                          : r.verdict == Verdict::FitsSmallerContext ? "fits with a smaller context"
                                                                     : "does not fit";
    if (o->json) {
      nlohmann::json j = {{"model", *path}, {"n_ctx", p.n_ctx}, {"parallel", p.n_seq}, {"cache_type", cache_type_name(p.cache_type)},
                          {"n_batch", p.n_batch}, {"weights", r.plan.weights}, {"kv_cache", r.plan.kv_cache},
                          {"compute", r.plan.compute}, {"overhead", r.plan.overhead}, {"total", r.plan.total()},
                          {"available", avail}, {"verdict", verdict}, {"largest_ctx", r.largest_ctx},
                          {"n_ctx_train", trained}, {"advice", r.quant_advice}};
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    auto hs = [](uint64_t b) { return human_size((double)b); };
    std::printf("model:      %s (%s, %.2fM parameters)\n", path->c_str(), model.hp.arch.c_str(), model.n_params / 1e6);
    std::printf("settings:   -c %d x %d slot%s, %s KV cache, batch %d\n", p.n_ctx, p.n_seq, p.n_seq == 1 ? "" : "s",
                cache_type_name(p.cache_type), p.n_batch);
    std::printf("weights:    %10s  (mapped file bytes touched, as repacked)\n", hs(r.plan.weights).c_str());
    std::printf("KV cache:   %10s\n", hs(r.plan.kv_cache).c_str());
    std::printf("compute:    %10s  (scratch for %d tokens, logits, sampler)\n", hs(r.plan.compute).c_str(),
                std::min(p.n_batch, p.n_ctx));
    std::printf("overhead:   %10s  (runtime, tokenizer)\n", hs(r.plan.overhead).c_str());
    std::printf("total:      %10s\n", hs(r.plan.total()).c_str());
    std::printf("available:  %10s  (%s)\n", hs(avail).c_str(), avail_from.c_str());
    std::printf("verdict:    %s\n", verdict);
    if (r.largest_ctx > 0)
      std::printf("largest context that fits: %d (trained: %d)\n", r.largest_ctx, trained);
    else
      std::printf("largest context that fits: none\n");
    if (!r.quant_advice.empty()) std::printf("advice:     %s\n", r.quant_advice.c_str());
    // Other quants of the same model already in the store.
    if (r.verdict != Verdict::Fits && *path != o->model) {
      auto store = Store::open();
      auto me = store ? store->get(o->model) : Result<Manifest>(Status::error(""));
      auto all = store ? store->list() : Result<std::vector<Manifest>>(Status::error(""));
      if (me && all) {
        for (const auto& other : *all) {
          if (other.name != me->name || other.tag == me->tag) continue;
          auto om = load_model(store->blob_path(other.digest));
          if (!om) continue;
          MemoryPlan op = plan_memory(**om, p);
          if (op.total() <= avail)
            std::printf("in the store: %s would fit (%s)\n", other.full_name().c_str(), hs(op.total()).c_str());
        }
      }
    }
    return 0;
  };
}

}  // namespace slim
