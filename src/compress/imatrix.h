// Importance matrices: per input column of every matrix multiplication, the
// mean of the squared activations that entered it over calibration text
// (per expert where there are experts). Read and written in llama.cpp's two
// file formats — the GGUF-based one and the older binary `.dat` — so files
// can be shared between tools.
#pragma once

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

// Detects the format from the file's first bytes.
Result<Imatrix> read_imatrix(const std::string& path);
// GGUF format unless the path ends in ".dat"; written atomically.
Status write_imatrix(const std::string& path, const Imatrix& m);
// Adds b's sums and counts into a (tensors of the same shape).
Status merge_imatrix(Imatrix& a, const Imatrix& b);

}  // namespace slim
