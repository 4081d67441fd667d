// Whole-model speed measurement (what `slim bench` reports): prompt
// processing and decode tokens/s over repetitions, and this machine's memory
// read bandwidth, the roofline that bounds decode.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"

namespace slim {

struct SpeedStats {
  int n_tokens = 0;
  double tps_mean = 0, tps_sd = 0;
  std::vector<double> samples;
};

// Prefill: n_prompt tokens in batches of the engine's n_batch, after `depth`
// tokens already in the cache (0: an empty cache, as llama-bench's pp).
Result<SpeedStats> bench_prefill(Engine& e, int n_prompt, int reps, int depth = 0);
// Decode: n_gen tokens one at a time after `depth` cached tokens (as
// llama-bench's tg, and its -d).
Result<SpeedStats> bench_decode(Engine& e, int n_gen, int reps, int depth = 0);

// Read bandwidth in GB/s with n_threads threads, over a buffer much larger
// than the caches. Measured once per machine and thread count and cached in
// $XDG_CACHE_HOME/slim/bandwidth.json (~/.cache/slim/...); `remeasure` skips the cache.
double read_bandwidth_gbs(int n_threads, bool remeasure = false);

// Peak resident set size of this process in bytes.
size_t peak_rss_bytes();

}  // namespace slim
