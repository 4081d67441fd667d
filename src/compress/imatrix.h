// Importance matrices: per input column of every matrix multiplication, the
// mean of the squared activations that entered it over calibration text
// (per expert where there are experts). Read and written in llama.cpp's two
// file formats — the GGUF-based one and the older binary `.dat` — so files
// can be shared between tools.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace slim {

struct ImatrixTensor {
  std::vector<float> sums;   // per column (× n_expert): sum of squared activations
  std::vector<int64_t> counts;  // per expert (one entry without experts): rows accumulated
  int n_expert = 1;
  // Mean squared activation of each column of expert `e` (sums / counts).
  std::vector<float> importance(int e = 0) const;
};

struct Imatrix {
  std::map<std::string, ImatrixTensor> tensors;  // weight name ("blk.0.attn_q.weight") → statistics
  std::vector<std::string> datasets;             // calibration files it was collected on
  int64_t chunks = 0;                            // chunks of context processed
  int chunk_size = 0;
};

// Detects the format from the file's first bytes ("GGUF", else `.dat`). A
// `.dat` file stores per-column means times a call count and no chunk size;
// its sums and counts are rebuilt with `dat_chunk_size` tokens a call (0:
// 512, llama.cpp's default context, as its tools assume).
Result<Imatrix> read_imatrix(const std::string& path, int dat_chunk_size = 0);
// GGUF format unless the path ends in ".dat"; written atomically.
Status write_imatrix(const std::string& path, const Imatrix& m);
// Adds b's sums and counts into a (tensors of the same shape).
Status merge_imatrix(Imatrix& a, const Imatrix& b);

// Collection over calibration text (`slim imatrix`).
struct ImatrixParams {
  int n_ctx = 512;              // tokens a chunk (BOS first when the vocabulary adds one)
  int n_batch = 512;            // tokens a forward pass; chunks share one when n_batch >= 2 n_ctx
  int n_chunks = -1;            // at most this many chunks; -1: all the text holds
  int n_threads = 0;            // 0: physical cores
  bool process_output = false;  // also output.weight (llama.cpp's --process-output)
  bool compute_ppl = true;      // PPL of each chunk's second half, as a sanity check
  std::string dataset;          // recorded in imatrix.datasets
};

struct ImatrixProgress {
  int chunk = 0, n_chunks = 0;  // chunks done, of
  double ppl = 0;               // running perplexity (0 without compute_ppl)
  double tokens_per_s = 0;
};

// Loads the model, runs it over `text` in chunks of n_ctx tokens and sums the
// squares of the activations entering every weight matmul of the layers
// ("blk.*"; and output.weight with process_output). `progress` after each chunk.
Result<Imatrix> collect_imatrix(const std::string& model_path, const std::string& text, const ImatrixParams& p,
                                const std::function<void(const ImatrixProgress&)>& progress = nullptr);

}  // namespace slim
