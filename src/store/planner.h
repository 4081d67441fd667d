// The memory planner: how much resident memory running a model takes, from
// its file and the run's settings, against what this machine has.
//
//   weights   the mapped file bytes the forward pass touches (header + tensors),
//             and what repacking adds where the kernels repack (model.h)
//   KV cache  n_layer x n_ctx x n_seq x (K + V row bytes of the cache type),
//             plus the one-layer prototype make_kv_cache copies from
//   compute   the ForwardState scratch for one batch of n_batch tokens, the
//             activation scratch of the widest matmul, logits and sampler rows
//   overhead  the runtime (binary, shared libraries, threads) measured on
//             stories260K, and the tokenizer's tables (grow with the vocabulary)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace slim {

struct PlanParams {
  int n_ctx = 4096;
  int n_seq = 1;        // parallel slots
  int n_batch = 512;    // prompt tokens per forward pass
  CacheType cache_type = CacheType::F16;  // sized by model.h's cache_row_bytes
};

// Resident bytes of this process the first time it is called (memoized):
// call it early, before a model is loaded, to capture the runtime alone.
uint64_t runtime_baseline_bytes();

struct MemoryPlan {
  uint64_t weights = 0, kv_cache = 0, compute = 0, overhead = 0;
  uint64_t total() const { return weights + kv_cache + compute + overhead; }
};

MemoryPlan plan_memory(const Model& m, const PlanParams& p);

// The largest context (per slot, at most `cap`) whose plan fits in `avail`
// bytes; 0 when not even a context of `min_ctx` fits. Rounded down to a
// multiple of 256 when that is at least 256.
int largest_context(const Model& m, PlanParams p, uint64_t avail, int cap, int min_ctx = 1);

// MemAvailable from /proc/meminfo.
Result<uint64_t> available_memory();
// "8G", "512M", "1.5GiB", "123456" (bytes); K/M/G/T are powers of 1024.
Result<uint64_t> parse_size(const std::string& s);

// Approximate bits per weight of common quants, best quality first, for
// "which quant of this model would fit".
struct QuantEstimate { const char* name; double bits_per_weight; };
const std::vector<QuantEstimate>& quant_estimates();
// The weights of `m` re-quantized to `bpw` for its matrices (vectors stay F32).
uint64_t weights_at(const Model& m, double bpw);

enum class Verdict { Fits, FitsSmallerContext, DoesNotFit };

struct FitReport {
  MemoryPlan plan;
  uint64_t available = 0;
  Verdict verdict = Verdict::DoesNotFit;
  int largest_ctx = 0;            // that fits, capped by the trained context
  std::string quant_advice;       // when it does not fit: a quant that would
  std::string summary() const;    // one line: verdict and advice
};

FitReport check_fit(const Model& m, const PlanParams& p, uint64_t available);

}  // namespace slim

namespace slim {

// For commands about to load a model (run, serve): plans `path` with `p` and
// returns the context to use — p.n_ctx, or with `auto_ctx` the largest that
// fits (capped by the trained context). A configuration that does not fit is
// an error carrying the fit advice, before anything big is allocated.
// Available memory: $SLIM_RAM when set (a size, as --ram), else MemAvailable.
Result<int> plan_run(const std::string& path, PlanParams p, bool auto_ctx);

}  // namespace slim
