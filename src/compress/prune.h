// `slim prune`: structured pruning of a GGUF model, Minitron-style — width
// (FFN neurons, attention heads in whole GQA groups) and depth (whole layers).
//
// Three steps, each usable alone:
//   check_prune     the model's shape and what the parameters remove from it,
//                   refusing what cannot be pruned (before any slow work);
//   measure_*       importance scores, higher = keep:
//     activation (Minitron, ShortGPT) over calibration text run through the
//       forward pass's trace hook: a neuron's mean |SwiGLU output| (the input
//       of ffn_down), a query head's mean L2 norm of its slice of the
//       attention output (the input of attn_output), a KV group the sum over
//       its query heads; a layer's "block importance" 1 - mean cosine
//       similarity of the residual stream before and after it;
//     magnitude (no text): a neuron ||gate row|| * ||up row|| * ||down column||,
//       a KV group the L2 norm of all its weights (Q, K, V rows, attn_output
//       columns), a layer the sum of its matrices' Frobenius norms (a weak
//       stand-in: block importance needs activations);
//   plan_prune      which neurons, groups and layers go (the lowest scores),
//                   every output tensor's shape and type, parameter counts;
//   write_pruned    carries a plan out into a new GGUF file (atomically).
//
// Row slices keep a tensor's type (rows are independent blocks). Column
// slices of a quantized tensor are dequantized, sliced and quantized again to
// the same type when the new row length is a multiple of its block, else
// written F16 (the plan notes it). Unchanged tensors are copied byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tensor/types.h"

namespace slim {

class GgufFile;

enum class PruneMethod { Activation, Magnitude };
Result<PruneMethod> parse_prune_method(const std::string& s);  // "activation", "magnitude"
const char* prune_method_name(PruneMethod m);

struct PruneParams {
  double ffn = 0;    // fraction of FFN neurons removed from every layer, [0, 1)
  double heads = 0;  // fraction of KV groups (each with its query heads) removed from every layer, [0, 1)
  int layers = 0;    // whole layers removed, [0, block_count)
  PruneMethod method = PruneMethod::Activation;
  int n_ctx = 0;     // calibration chunk in tokens; 0: 256, or the trained context when smaller
  int n_chunks = -1; // at most this many chunks; -1: all the text holds
  int n_threads = 0; // 0: physical cores
};

// The model's prunable shape and how much the parameters remove.
struct PruneShape {
  std::string arch;
  int n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0, n_rot = 0, n_ff = 0;
  int n_ctx_train = 0;
  int ffn_remove = 0;     // neurons removed from every layer
  int groups_remove = 0;  // KV groups removed from every layer
  int layers_remove = 0;
  int group_size() const { return n_head / n_head_kv; }  // query heads a KV group
};

// Checks the parameters against the model (ranges, architecture, fused
// tensors) and works out the counts; a one-line error otherwise.
Result<PruneShape> check_prune(const GgufFile& f, const PruneParams& p);

// Importance scores, higher = more important (kept first).
struct PruneImportance {
  PruneMethod method = PruneMethod::Activation;
  std::vector<std::vector<double>> ffn;     // [layer][n_ff]
  std::vector<std::vector<double>> groups;  // [layer][n_head_kv]
  std::vector<std::vector<double>> heads;   // [layer][n_head] (activation only; empty for magnitude)
  std::vector<double> layers;               // [layer]
  int64_t n_tokens = 0;                     // calibration tokens evaluated (activation)
  int n_chunks = 0, n_ctx = 0;
};

struct PruneProgress {
  int chunk = 0, n_chunks = 0;  // chunks done, of
};
using PruneProgressFn = std::function<void(const PruneProgress&)>;

// The chunk size check_prune's defaults give: p.n_ctx, or 256 (the trained
// context when smaller).
int prune_calibration_ctx(const PruneShape& s, const PruneParams& p);

// Runs the model over `text` (tokenized with its own tokenizer, BOS first when
// the vocabulary adds one; chunks of prune_calibration_ctx tokens, each
// starting with BOS; a shorter tail is evaluated too).
Result<PruneImportance> measure_activation_importance(const std::string& model_path, std::string_view text,
                                                      const PruneParams& p,
                                                      const PruneProgressFn& progress = nullptr);
// From the weights alone (dequantized row by row on n_threads threads).
Result<PruneImportance> measure_magnitude_importance(const GgufFile& f, const PruneShape& s, int n_threads = 0);

// One output tensor: where it comes from and how.
struct PrunedTensor {
  std::string name;                // in the output ("blk.2.*" renumbered)
  std::string source;              // in the input
  GgmlType from = GgmlType::F32, to = GgmlType::F32;
  std::vector<int64_t> ne;         // output shape
  std::vector<int64_t> keep_rows;  // input rows kept, ascending; empty: every row
  std::vector<int64_t> keep_cols;  // input columns (ne0 values) kept, ascending; empty: all
  std::string note;                // why `to` differs from `from`, else empty
  bool copied() const { return keep_rows.empty() && keep_cols.empty(); }
  int64_t n_elements() const;
};

struct PruneLayer {
  int layer = 0;                     // index in the input
  int new_index = -1;                // in the output; -1: removed
  double score = 0;                  // layer importance
  std::vector<int> ffn_removed;      // neuron indices, ascending
  std::vector<int> groups_removed;   // KV head indices, ascending
  std::vector<int> heads_removed;    // the query heads that go with them, ascending
};

struct PrunePlan {
  PruneShape shape;
  PruneMethod method = PruneMethod::Activation;
  int64_t n_calib_tokens = 0;
  int n_chunks = 0, n_ctx = 0;
  int n_layer_after = 0, n_ff_after = 0, n_head_after = 0, n_head_kv_after = 0;
  std::vector<PruneLayer> layers;      // every input layer, in order
  std::vector<int> removed_layers;     // least important first
  std::vector<PrunedTensor> tensors;   // the output's, in file order
  int64_t params_before = 0, params_after = 0;
  size_t bytes_before = 0, bytes_after = 0;  // tensor data
};

// What goes: in every layer the ffn_remove lowest-scoring neurons and the
// groups_remove lowest KV groups, and the layers_remove lowest layers (ties:
// the later index goes first). `imp` must match the shape.
Result<PrunePlan> plan_prune(const GgufFile& f, const PruneShape& s, const PruneImportance& imp);

// Writes the plan's tensors from `in` to `out` (OUT.tmp.* renamed into place;
// nothing left behind on error). Metadata is copied, with the new block
// count, FFN length and head counts, explicit key/value/rope head dims, and
// general.pruned_from / general.pruning. Returns the file size.
Result<size_t> write_pruned(const std::string& in, const std::string& out, const PrunePlan& plan,
                            int n_threads = 0);

}  // namespace slim
