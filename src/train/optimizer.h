// AdamW (Loshchilov & Hutter: the weight decay is applied to the weights
// directly, not through the gradient), the learning-rate schedule (linear
// warm-up then cosine decay to a floor) and global gradient-norm clipping.
#pragma once

#include <cstdint>

#include "train/params.h"

namespace slim {
class ThreadPool;
}

namespace slim::train {

struct AdamParams {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;  // matrices only (Param::decay)
};

// One update of m.w from grad, with step >= 1 (for the bias corrections).
// mom and vel hold the first and second moments (n_params each).
void adamw_step(TrainModel& m, const float* grad, float* mom, float* vel, int64_t step, float lr,
                const AdamParams& p, ThreadPool* pool);

// The learning rate of step (0-based) of `total`: lr * (step + 1) / warmup
// during the warm-up, then a cosine from lr down to lr * min_ratio at the last step.
float lr_at(int64_t step, int64_t total, int64_t warmup, float lr, float min_ratio);

// L2 norm of the whole gradient, in double, summed in a fixed order.
double grad_norm(const float* grad, size_t n);
// Scales grad so its norm is at most max_norm (max_norm <= 0: no clipping). Returns the norm before.
double clip_grad_norm(float* grad, size_t n, double max_norm);

}  // namespace slim::train
