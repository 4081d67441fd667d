// Plain implementations of the forward-pass operations.
#include "model/ops.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "kernels/matmul.h"

namespace slim {

ThreadPool& pool_of(ForwardState& st) {
  static ThreadPool single(1);  // callers without a pool (tests, tools) run on one thread
  return st.pool ? *st.pool : single;
}

void matmul_rows(const Weight& w, int64_t r0, int64_t r1, const float* x, int n_tokens, float* y,
                 int64_t ldy, ForwardState& st) {
  slim::matmul_rows(w, r0, r1, x, n_tokens, y, ldy, pool_of(st), kernels());
}

void matmul_many(const MatmulPart* parts, int n_parts, const float* x, int n_tokens, ForwardState& st) {
  if (st.matmul_hook)
    for (int i = 0; i < n_parts; ++i) {
      bool seen = false;  // the Q, K, V rows of one fused matrix are one product
      for (int j = 0; j < i; ++j) seen = seen || parts[j].w == parts[i].w;
      if (!seen) st.matmul_hook(st.matmul_hook_user, *parts[i].w, x, n_tokens);
    }
  slim::matmul_many(parts, n_parts, x, n_tokens, pool_of(st), kernels());
}

void matmul(const Weight& w, const float* x, int n_tokens, float* y, ForwardState& st) {
  if (st.matmul_hook) st.matmul_hook(st.matmul_hook_user, w, x, n_tokens);
  slim::matmul(w, x, n_tokens, y, pool_of(st), kernels());
}

void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  // accumulate in double, as the reference does; in eight lanes, so the sum
  // is not one serial chain of adds
  double lane[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += (double)x[i + k] * x[i + k];
  double s = 0;
  for (; i < n; ++i) s += (double)x[i] * x[i];
  for (double l : lane) s += l;
  const float scale = 1.0f / std::sqrt((float)(s / n) + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void add_bias(float* y, const float* b, int n_tokens, int n) {
  for (int t = 0; t < n_tokens; ++t)
    for (int i = 0; i < n; ++i) y[t * n + i] += b[i];
}

void rope_angles(int pos, int n_rot, float freq_base, float freq_scale, const float* freq_factors, float mscale,
                 float* cs, float* sn) {
  for (int i = 0; i < n_rot / 2; ++i) {
    float inv_freq = std::pow(freq_base, -2.0f * i / n_rot);
    if (freq_factors) inv_freq /= freq_factors[i];
    float theta = (float)pos * freq_scale * inv_freq;
    cs[i] = std::cos(theta) * mscale;
    sn[i] = std::sin(theta) * mscale;
  }
}

void rope_rotate(float* v, int n_head, int head_dim, int n_rot, RopeType type, const float* cs, const float* sn) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_head; ++h) {
    float* x = v + h * head_dim;
    for (int i = 0; i < half; ++i) {
      int a = type == RopeType::Neox ? i : 2 * i;
      int b = type == RopeType::Neox ? i + half : 2 * i + 1;
      float x0 = x[a], x1 = x[b];
      x[a] = x0 * cs[i] - x1 * sn[i];
      x[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

namespace {
std::vector<uint16_t> make_gelu_table() {
  std::vector<uint16_t> t(1 << 16);
  for (uint32_t i = 0; i < t.size(); ++i) {
    double x = fp16_to_fp32((uint16_t)i);
    double g = 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x)));
    t[i] = fp32_to_fp16((float)g);
  }
  return t;
}
}  // namespace

float gelu_tanh(float x) {
  // ggml computes GELU through a table of F16 inputs; doing the same keeps
  // gemma logits within the reference's own rounding.
  static const std::vector<uint16_t> table = make_gelu_table();
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return fp16_to_fp32(table[fp32_to_fp16(x)]);
}

void softcap(float* x, int n, float cap) {
  for (int i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace slim
