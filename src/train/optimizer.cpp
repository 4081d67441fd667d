#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "kernels/threadpool.h"

namespace slim::train {

void adamw_step(TrainModel& m, const float* grad, float* mom, float* vel, int64_t step, float lr,
                const AdamParams& p, ThreadPool* pool) {
  const double c1 = 1.0 - std::pow((double)p.beta1, (double)step);
  const double c2 = 1.0 - std::pow((double)p.beta2, (double)step);
  const float step_size = (float)(lr / c1), inv_c2 = (float)(1.0 / c2);
  for (const Param& prm : m.params) {
    const float decay = prm.decay ? 1.0f - lr * p.weight_decay : 1.0f;
    auto update = [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        const size_t i = prm.offset + (size_t)j;
        const float g = grad[i];
        mom[i] = p.beta1 * mom[i] + (1 - p.beta1) * g;
        vel[i] = p.beta2 * vel[i] + (1 - p.beta2) * g * g;
        m.w[i] = m.w[i] * decay - step_size * mom[i] / (std::sqrt(vel[i] * inv_c2) + p.eps);
      }
    };
    if (pool && prm.n > 65536) pool->parallel_for((int64_t)prm.n, 16384, update);
    else update(0, (int64_t)prm.n);
  }
}

float lr_at(int64_t step, int64_t total, int64_t warmup, float lr, float min_ratio) {
  if (step < warmup) return lr * (float)(step + 1) / (float)warmup;
  const int64_t span = std::max<int64_t>(1, total - 1 - warmup);
  const double t = std::min(1.0, (double)(step - warmup) / (double)span);
  const double floor = lr * min_ratio;
  return (float)(floor + 0.5 * (lr - floor) * (1.0 + std::cos(M_PI * t)));
}

double grad_norm(const float* grad, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += (double)grad[i] * grad[i];
  return std::sqrt(s);
}

double clip_grad_norm(float* grad, size_t n, double max_norm) {
  const double norm = grad_norm(grad, n);
  if (max_norm > 0 && norm > max_norm) {
    const float f = (float)(max_norm / (norm + 1e-12));
    for (size_t i = 0; i < n; ++i) grad[i] *= f;
  }
  return norm;
}

}  // namespace slim::train
