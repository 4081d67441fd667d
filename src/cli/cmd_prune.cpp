// `slim prune IN.gguf OUT.gguf [--ffn R] [--heads R] [--layers K]`: a smaller
// model by structured pruning (compress/prune.h). The plan (what goes, the
// parameter counts) on stdout, as text or --json; calibration progress on a
// terminal only; fallback notes on stderr.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "base/progress_line.h"
#include "cli/cli.h"
#include "compress/prune.h"
#include "gguf/gguf.h"
#include "store/store.h"

namespace slim {

namespace {

std::string shape_of(const std::vector<int64_t>& ne) {
  std::string s;
  for (int64_t d : ne) s += format("%s%lld", s.empty() ? "" : " x ", (long long)d);
  return s;
}

std::string list_of(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += format("%s%d", s.empty() ? "" : ",", i);
  return s;
}

std::string with_commas(int64_t n) {
  std::string d = std::to_string(n), s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) s += ',';
    s += d[i];
  }
  return s;
}

const char* action_of(const PrunedTensor& t) {
  if (t.copied()) return "copied";
  if (t.keep_cols.empty()) return "rows";
  return t.keep_rows.empty() ? "columns" : "rows+columns";
}

void print_plan(const PrunePlan& p, const std::string& model) {
  const PruneShape& s = p.shape;
  std::printf("model:      %s (%s, %d layers, %d heads / %d KV, head dim %d, FFN %d)\n", model.c_str(), s.arch.c_str(),
              s.n_layer, s.n_head, s.n_head_kv, s.head_dim, s.n_ff);
  if (p.method == PruneMethod::Activation)
    std::printf("importance: activation, %lld calibration tokens in %d chunks of up to %d\n",
                (long long)p.n_calib_tokens, p.n_chunks, p.n_ctx);
  else
    std::printf("importance: magnitude (weights only)\n");
  std::printf("%-6s %-14s %-16s %s\n", "layer", p.method == PruneMethod::Activation ? "1-cos(in,out)" : "weight norm",
              "FFN neurons", "KV groups removed (query heads)");
  for (const PruneLayer& l : p.layers) {
    if (l.new_index < 0) {
      std::printf("blk.%-2d %-14.6g removed\n", l.layer, l.score);
      continue;
    }
    const std::string ffn = format("%d -> %d", s.n_ff, s.n_ff - (int)l.ffn_removed.size());
    const std::string groups = l.groups_removed.empty()
                                   ? "-"
                                   : list_of(l.groups_removed) + " (" + list_of(l.heads_removed) + ")";
    std::printf("blk.%-2d %-14.6g %-16s %s\n", l.layer, l.score, ffn.c_str(), groups.c_str());
  }
  if (!p.removed_layers.empty()) {
    std::string r;
    for (int il : p.removed_layers) r += format("%sblk.%d (%.6g)", r.empty() ? "" : ", ", il, p.layers[il].score);
    std::printf("removed layers (least important first): %s\n", r.c_str());
  }
  std::printf("result:     %d layers, %d heads / %d KV, FFN %d\n", p.n_layer_after, p.n_head_after, p.n_head_kv_after,
              p.n_ff_after);
  std::printf("parameters: %s -> %s (%.1f %%), tensor data %.2f -> %.2f MiB\n", with_commas(p.params_before).c_str(),
              with_commas(p.params_after).c_str(), p.params_before ? 100.0 * p.params_after / p.params_before : 0.0,
              p.bytes_before / 1048576.0, p.bytes_after / 1048576.0);
}

nlohmann::json plan_json(const PrunePlan& p, const std::string& model) {
  const PruneShape& s = p.shape;
  nlohmann::json layers = nlohmann::json::array(), removed = nlohmann::json::array(), tensors = nlohmann::json::array();
  for (const PruneLayer& l : p.layers)
    layers.push_back({{"layer", l.layer},
                      {"new_index", l.new_index >= 0 ? nlohmann::json(l.new_index) : nlohmann::json(nullptr)},
                      {"removed", l.new_index < 0},
                      {"score", l.score},
                      {"ffn_removed", l.ffn_removed},
                      {"groups_removed", l.groups_removed},
                      {"heads_removed", l.heads_removed}});
  for (int il : p.removed_layers) removed.push_back({{"layer", il}, {"score", p.layers[il].score}});
  for (const PrunedTensor& t : p.tensors) {
    nlohmann::json j = {{"name", t.name},     {"source", t.source}, {"from", type_name(t.from)},
                        {"to", type_name(t.to)}, {"shape", t.ne},     {"action", action_of(t)}};
    if (!t.note.empty()) j["note"] = t.note;
    tensors.push_back(j);
  }
  nlohmann::json j = {
      {"model", model},
      {"arch", s.arch},
      {"method", prune_method_name(p.method)},
      {"before",
       {{"layers", s.n_layer}, {"n_ff", s.n_ff}, {"n_head", s.n_head}, {"n_head_kv", s.n_head_kv}, {"params", p.params_before}, {"bytes", p.bytes_before}}},
      {"after",
       {{"layers", p.n_layer_after}, {"n_ff", p.n_ff_after}, {"n_head", p.n_head_after}, {"n_head_kv", p.n_head_kv_after}, {"params", p.params_after}, {"bytes", p.bytes_after}}},
      {"params_fraction", p.params_before ? (double)p.params_after / (double)p.params_before : 0.0},
      {"layers", layers},
      {"removed_layers", removed},
      {"tensors", tensors}};
  if (p.method == PruneMethod::Activation)
    j["calibration"] = {{"tokens", p.n_calib_tokens}, {"chunks", p.n_chunks}, {"n_ctx", p.n_ctx}};
  return j;
}

}  // namespace

CommandRun register_prune(CLI::App& app) {
  struct Opts {
    std::string in, out, file, method = "activation";
    double ffn = 0, heads = 0;
    int layers = 0, n_ctx = 0, n_chunks = -1, threads = 0;
    bool dry_run = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("prune", "a smaller model: remove FFN neurons, attention heads or whole layers");
  cmd->add_option("IN", o->in, "input GGUF file or store name")->required();
  cmd->add_option("OUT", o->out, "output GGUF file (not needed with --dry-run)");
  cmd->add_option("--ffn", o->ffn, "fraction of FFN neurons to remove from every layer, 0 <= R < 1");
  cmd->add_option("--heads", o->heads,
                  "fraction of attention heads to remove from every layer, in whole GQA groups (a KV head with its "
                  "query heads), 0 <= R < 1");
  cmd->add_option("--layers", o->layers, "number of whole layers to remove (the least important)");
  cmd->add_option("-f,--file", o->file, "calibration text (needed by the activation method)");
  cmd->add_option("--method", o->method, "importance: activation (default, needs -f) or magnitude (weights only)");
  cmd->add_option("--ctx", o->n_ctx, "tokens a calibration chunk (default 256, or the trained context when smaller)");
  cmd->add_option("--chunks", o->n_chunks, "use at most N chunks of the text (default: all)");
  cmd->add_flag("--dry-run", o->dry_run, "print the plan, write nothing");
  cmd->add_flag("--json", o->json, "print the plan as JSON");
  cmd->add_option("-t,--threads", o->threads, "threads (default: physical cores)");
  cmd->footer(
      "Importance, lowest removed first:\n"
      "  activation  over the calibration text, through slim's own forward pass: a neuron's mean\n"
      "              |activation| entering ffn_down (the SwiGLU product); a query head's mean L2 norm of\n"
      "              its slice of the attention output, a KV group the sum over its query heads; a layer's\n"
      "              block importance 1 - mean cosine(stream before the layer, stream after it).\n"
      "  magnitude   no text: a neuron ||gate row|| * ||up row|| * ||down column||; a KV group the L2\n"
      "              norm of its Q, K, V rows and attn_output columns; a layer the sum of its matrices'\n"
      "              Frobenius norms (block importance needs activations, so this is only a rough proxy).\n"
      "Every layer loses the same number of neurons and groups. Row slices keep their type; column\n"
      "slices of a quantized tensor are re-quantized to it, or written F16 when the new row length is\n"
      "not a multiple of its block. Pruned models lose quality: measure with slim perplexity, and\n"
      "expect to need fine-tuning or distillation to recover.\n"
      "Supported: llama, qwen2, qwen3; gemma2/gemma3 with --ffn only; phi3 with --layers only.");
  return [o]() -> int {
    if (o->threads < 0) return fail(format("bad thread count %d", o->threads));
    if (o->n_ctx < 0 || o->n_ctx == 1) return fail(format("bad --ctx %d (at least 2 tokens)", o->n_ctx));
    if (o->n_chunks == 0 || o->n_chunks < -1) return fail(format("bad --chunks %d", o->n_chunks));
    auto method = parse_prune_method(o->method);
    if (!method) return fail(method.error());
    if (!o->dry_run && o->out.empty()) return fail("no output file given (slim prune IN OUT, or --dry-run)");
    auto path = resolve_model(o->in);
    if (!path) return fail(path.error());
    PruneParams p;
    p.ffn = o->ffn;
    p.heads = o->heads;
    p.layers = o->layers;
    p.method = *method;
    p.n_ctx = o->n_ctx;
    p.n_chunks = o->n_chunks;
    p.n_threads = o->threads;

    auto fr = GgufFile::open(*path);
    if (!fr) return fail(fr.error());
    auto shape = check_prune(**fr, p);
    if (!shape) return fail(shape.error());
    if (p.method == PruneMethod::Activation && o->file.empty())
      return fail("the activation method needs calibration text: -f FILE (or --method magnitude, from the weights)");

    Result<PruneImportance> imp = Status::error("no importance");
    if (p.method == PruneMethod::Activation) {
      auto text = read_text_file(o->file, "calibration text");
      if (!text) return fail(text.error());
      fr->reset();  // measure_activation_importance maps the file itself
      const bool live = ::isatty(2) != 0;
      ProgressLine line;
      imp = measure_activation_importance(*path, *text, p, [&](const PruneProgress& pr) {
        if (live) line.draw(format("\rprune: measuring importance, chunk %d/%d", pr.chunk, pr.n_chunks));
      });
      line.finish();
      if (!imp) return fail(imp.error());
      fr = GgufFile::open(*path);
      if (!fr) return fail(fr.error());
    } else {
      imp = measure_magnitude_importance(**fr, *shape, p.n_threads);
      if (!imp) return fail(imp.error());
    }
    auto plan = plan_prune(**fr, *shape, *imp);
    if (!plan) return fail(plan.error());
    fr->reset();
    for (const PrunedTensor& t : plan->tensors)
      if (!t.note.empty()) std::fprintf(stderr, "slim: note: %s: %s\n", t.name.c_str(), t.note.c_str());

    size_t file_bytes = 0;
    if (!o->dry_run) {
      auto r = write_pruned(*path, o->out, *plan, p.n_threads);
      if (!r) return fail(r.error());
      file_bytes = *r;
    }
    if (o->json) {
      nlohmann::json j = plan_json(*plan, *path);
      j["written"] = o->dry_run ? nlohmann::json(nullptr) : nlohmann::json(o->out);
      if (!o->dry_run) j["file_bytes"] = file_bytes;
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    print_plan(*plan, *path);
    if (o->dry_run) {
      int rows = 0, cols = 0, copied = 0;
      for (const PrunedTensor& t : plan->tensors) (t.copied() ? copied : t.keep_cols.empty() ? rows : cols)++;
      std::printf("tensors:    %zu (%d row-sliced, %d column-sliced, %d copied); dry run, nothing written\n",
                  plan->tensors.size(), rows, cols, copied);
      // every kept layer's tensor of one kind comes out alike: one line a kind
      std::map<std::string, int> kinds;
      for (const PrunedTensor& t : plan->tensors) {
        if (t.copied()) continue;
        const size_t dot = t.name.rfind("blk.", 0) == 0 ? t.name.find('.', 4) : std::string::npos;
        const std::string kind = dot == std::string::npos ? t.name : "blk.*" + t.name.substr(dot);
        ++kinds[format("%-28s %-7s -> %-7s %s", kind.c_str(), type_name(t.from), type_name(t.to), shape_of(t.ne).c_str())];
      }
      for (const auto& [line, n] : kinds) std::printf("  %s  x%d\n", line.c_str(), n);
    } else {
      std::printf("wrote %s: %zu tensors, %.2f MiB\n", o->out.c_str(), plan->tensors.size(), file_bytes / 1048576.0);
    }
    return 0;
  };
}

}  // namespace slim
