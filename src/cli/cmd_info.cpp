// `slim info FILE`: what a GGUF holds — architecture, hyperparameters, tensors
// with types and sizes, tokenizer summary, chat template presence.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "cli/cli.h"
#include "store/store.h"
#include "gguf/gguf.h"
#include "model/model.h"

namespace slim {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) { b /= 1024; ++u; }
  return format(u ? "%.2f %s" : "%.0f %s", b, units[u]);
}

std::string value_summary(const GgufValue& v) {
  switch (v.type) {
    case GgufType::STRING: return v.s.size() > 60 ? "\"" + v.s.substr(0, 57) + "...\"" : "\"" + v.s + "\"";
    case GgufType::FLOAT32: case GgufType::FLOAT64: return format("%g", v.f);
    case GgufType::BOOL: return v.i ? "true" : "false";
    case GgufType::UINT64: return std::to_string((uint64_t)v.i);
    case GgufType::ARRAY: return format("[%s x %zu]", gguf_type_name(v.arr->elem_type), v.arr->size());
    default: return std::to_string(v.i);
  }
}

}  // namespace

CommandRun register_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto all_tensors = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("info", "show what a GGUF file holds");
  cmd->add_option("FILE", *path, "GGUF file")->required();
  cmd->add_flag("--tensors", *all_tensors, "list every tensor (default: the first layer and the rest)");
  return [path, all_tensors]() {
    auto resolved = resolve_model(*path);
    if (!resolved) return fail(resolved.error());
    auto fr = GgufFile::open(*resolved);
    if (!fr) return fail(fr.error());
    const GgufFile& f = **fr;
    std::printf("file:          %s (%s, GGUF v%u)\n", path->c_str(), human_bytes((double)f.file_size()).c_str(), f.version());
    std::string arch = f.get_string("general.architecture").value_or("(none)");
    std::printf("architecture:  %s\n", arch.c_str());
    if (auto n = f.get_string("general.name")) std::printf("name:          %s\n", n->c_str());

    if (!f.tensors().empty()) {
      auto m = load_model(*fr);
      if (!m) {
        std::printf("model:         cannot run: %s\n", m.error().c_str());
      } else {
        const HParams& hp = (*m)->hp;
        std::printf("parameters:    %.2f M (%s of weights)\n", (*m)->n_params / 1e6, human_bytes((double)(*m)->weight_bytes).c_str());
        std::printf("layers:        %d\n", hp.n_layer);
        std::printf("embedding:     %d\n", hp.n_embd);
        std::printf("heads:         %d (kv %d, head dim %d)\n", hp.n_head, hp.n_head_kv, hp.head_dim);
        std::printf("feed forward:  %d\n", hp.n_ff);
        std::printf("vocabulary:    %d\n", hp.n_vocab);
        std::printf("context:       %d (trained)\n", hp.n_ctx_train);
        std::printf("rope:          %s, base %g, dims %d%s\n", hp.rope_type == RopeType::Neox ? "neox" : "normal",
                    hp.rope_freq_base, hp.n_rot, (*m)->rope_freqs ? ", frequency factors" : "");
        if (hp.sliding_window) std::printf("sliding window: %d\n", hp.sliding_window);
        if (hp.attn_softcap || hp.final_softcap) std::printf("soft-capping:  attention %g, final %g\n", hp.attn_softcap, hp.final_softcap);
        std::printf("rms eps:       %g\n", hp.rms_eps);
        std::printf("output:        %s\n", f.find_tensor("output.weight") ? "separate" : "tied to token embeddings");
      }
    }

    std::string tmodel = f.get_string("tokenizer.ggml.model").value_or("(none)");
    const GgufArray* toks = f.get_array("tokenizer.ggml.tokens");
    std::printf("tokenizer:     %s", tmodel.c_str());
    if (auto pre = f.get_string("tokenizer.ggml.pre")) std::printf(", pre %s", pre->c_str());
    if (toks) std::printf(", %zu tokens", toks->size());
    if (auto b = f.get_int("tokenizer.ggml.bos_token_id")) std::printf(", bos %lld", (long long)*b);
    if (auto e = f.get_int("tokenizer.ggml.eos_token_id")) std::printf(", eos %lld", (long long)*e);
    if (const GgufArray* mg = f.get_array("tokenizer.ggml.merges")) std::printf(", %zu merges", mg->size());
    std::printf("\n");
    std::printf("chat template: %s\n", f.find("tokenizer.chat_template") ? "yes" : "no");

    std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
    for (const auto& [k, v] : f.metadata()) {
      if (k.rfind("tokenizer.ggml.", 0) == 0 && v.is_array()) continue;  // summarised above
      if (k == "tokenizer.chat_template") continue;
      std::printf("  %-45s %s\n", k.c_str(), value_summary(v).c_str());
    }

    std::map<std::string, std::pair<int, size_t>> by_type;
    for (const auto& t : f.tensors()) {
      auto& s = by_type[type_name(t.type)];
      s.first++;
      s.second += t.nbytes;
    }
    std::printf("\ntensors (%zu):", f.tensors().size());
    for (auto& [ty, s] : by_type) std::printf(" %s x%d (%s)", ty.c_str(), s.first, human_bytes((double)s.second).c_str());
    std::printf("\n");
    for (const auto& t : f.tensors()) {
      bool first_layer = t.name.rfind("blk.", 0) != 0 || t.name.rfind("blk.0.", 0) == 0;
      if (!*all_tensors && !first_layer) continue;
      std::string shape;
      for (int d = 0; d < t.n_dims; ++d) shape += (d ? " x " : "") + std::to_string(t.ne[d]);
      std::printf("  %-32s %-8s [%s] %s\n", t.name.c_str(), type_name(t.type), shape.c_str(), human_bytes((double)t.nbytes).c_str());
    }
    if (!*all_tensors && f.tensors().size() > 0) std::printf("  (blk.1 and later not shown; --tensors lists all)\n");
    return 0;
  };
}

}  // namespace slim
