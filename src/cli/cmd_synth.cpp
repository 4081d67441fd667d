// `slim synth --like NAME --out F.gguf [--type T] [--seed S]`: writes a model
// with random weights and the exact shapes and vocabulary size of a known one,
// for speed measurements (see model/synth.h). Random by design: it says so.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>

#include "cli/cli.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "model/synth.h"

namespace slim {

CommandRun register_synth(CLI::App& app) {
  struct Opts {
    std::string like, out, type = "F16";
    uint64_t seed = 1;
    int threads = 0;
    bool dry_run = false;
  };
  auto o = std::make_shared<Opts>();
  std::string names, types;
  for (const auto& s : synth_presets()) names += (names.empty() ? "" : ", ") + s.name;
  for (const auto& t : synth_file_types()) types += (types.empty() ? "" : ", ") + t;
  CLI::App* cmd = app.add_subcommand("synth", "write a random-weight model with the shapes of a known one");
  cmd->add_option("--like", o->like, "model shape: " + names)->required();
  cmd->add_option("-o,--out", o->out, "output GGUF file");
  cmd->add_option("--type", o->type, "file type: " + types + " (default F16)");
  cmd->add_option("--seed", o->seed, "random seed (default 1)");
  cmd->add_option("-t,--threads", o->threads, "threads (default: physical cores)");
  cmd->add_flag("--dry-run", o->dry_run, "print the tensor plan without writing a file");
  return [o]() {
    const SynthShape* shape = find_synth_preset(o->like);
    if (!shape) {
      std::string names;
      for (const auto& s : synth_presets()) names += (names.empty() ? "" : ", ") + s.name;
      return fail("unknown model shape '" + o->like + "' (known: " + names + ")");
    }
    if (o->out.empty() && !o->dry_run) return fail("no output file given (use --out FILE.gguf)");
    if (o->threads < 0) return fail(format("bad thread count %d", o->threads));
    if (auto st = init_kernels(); !st) return fail(st.message());
    auto plan = plan_synth(*shape, o->type);
    if (!plan) return fail(plan.error());
    const SynthShape& s = plan->shape;
    std::printf("%s (%s): %d layers, n_embd %d, %d/%d heads, ffn %d, vocab %d%s%s%s\n", s.name.c_str(),
                s.arch.c_str(), s.n_layer, s.n_embd, s.n_head, s.n_head_kv, s.n_ff, s.n_vocab,
                s.tied ? ", tied embeddings" : "", s.qkv_bias ? ", qkv biases" : "",
                s.llama3_rope ? ", llama3 rope factors" : "");
    std::map<std::string, int> by_type;
    for (const auto& t : plan->tensors) ++by_type[type_name(t.type)];
    std::string mix;
    for (auto& [name, count] : by_type) mix += format("%s%s x%d", mix.empty() ? "" : ", ", name.c_str(), count);
    std::printf("type %s: %zu tensors (%s), %.1f M params, %.1f MiB of tensor data\n", plan->ftype.c_str(),
                plan->tensors.size(), mix.c_str(), plan->n_params() / 1e6, plan->data_bytes() / 1048576.0);
    if (o->dry_run) {
      for (const auto& t : plan->tensors) {
        std::string shape_s;
        for (int64_t d : t.ne) shape_s += format("%s%lld", shape_s.empty() ? "" : " x ", (long long)d);
        std::printf("  %-28s %-7s %s\n", t.name.c_str(), type_name(t.type), shape_s.c_str());
      }
      return 0;
    }
    std::printf("NOTE: the weights are random by design: this file produces gibberish and is meant for speed tests.\n");
    std::fflush(stdout);
    ThreadPool pool(o->threads);
    auto t0 = std::chrono::steady_clock::now();
    if (auto st = write_synth(*plan, {o->out, o->seed, 0.02f}, pool); !st) return fail(st.message());
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s in %.1f s (%d threads, seed %llu)\n", o->out.c_str(), sec, pool.size(),
                (unsigned long long)o->seed);
    return 0;
  };
}

}  // namespace slim
