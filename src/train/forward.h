// The training forward and backward of a whole model: the inference forward
// (model/llama.cpp) again, but on F32 master weights, over whole sequences at
// once, keeping what the backward needs, then the backward in reverse layer
// order. One function, readable top to bottom with ops.h beside it.
#pragma once

#include <cstdint>
#include <vector>

#include "train/ops.h"
#include "train/params.h"

namespace slim {
class ThreadPool;
}

namespace slim::train {

// n_seq sequences of n_tok tokens: the inputs, the tokens they should predict
// (the inputs shifted by one) and, for distillation, the teacher's top-k
// distribution at every input position.
struct TrainBatch {
  int n_seq = 0, n_tok = 0;
  std::vector<int32_t> input, target;   // [n_seq * n_tok]
  std::vector<int32_t> teacher_ids;     // [n_seq * n_tok][teacher_k], empty: no teacher
  std::vector<float> teacher_probs;
  int teacher_k = 0;
  int rows() const { return n_seq * n_tok; }
};

// Builds a batch from sequences of n_tok + 1 tokens.
TrainBatch make_batch(const std::vector<const std::vector<int32_t>*>& seqs, int n_tok);

struct LossConfig {
  bool distill = false;   // the batch carries a teacher
  float temperature = 1;  // tau
  float alpha = 0.5f;     // weight of the distillation term
};

// Sums over the batch's tokens (divide by n_tokens for means).
struct LossSums {
  double loss = 0;  // what the gradient is the gradient of
  double ce = 0;    // cross-entropy against the targets
  double kl = 0;    // KL to the teacher at the temperature (distillation)
  int64_t n_tokens = 0;
};

// Activations saved by the forward for the backward, reused across steps.
struct Workspace {
  struct Layer {
    std::vector<float> x_in, xn1, rstd1, q_lin, k_lin, rstd_q, rstd_k, q, k, v, att, x_mid, xn2, rstd2, g, u, h;
  };
  std::vector<Layer> layers;
  std::vector<int32_t> pos;
  std::vector<float> x, xf, rstdf, logits, dlogits;
  // gradients of the activations
  std::vector<float> dx, dxf, dh, dg, du, dxn, datt, dq, dk, dv, dq_lin, dk_lin, scratch;
};

// Runs the batch. With `grad` (n_params floats) the backward adds to it the
// gradient of loss * scale (scale: 1 / the tokens of the whole optimizer step).
LossSums forward_backward(const TrainModel& m, const TrainBatch& b, const LossConfig& lc, float* grad, float scale,
                          Workspace& ws, ThreadPool* pool);

}  // namespace slim::train
