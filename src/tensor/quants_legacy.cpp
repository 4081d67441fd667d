// Scalar reference of the 32-value block formats: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1 and IQ4_NL. Quantizers follow ggml's reference rounding exactly
// (truncating casts after +0.5 offsets, roundf for Q8), because activations
// quantized here must match what llama.cpp feeds its dot products.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {
namespace {

// Largest-magnitude value with its sign (the sign picks which end of the
// asymmetric signed range it lands on).
float signed_absmax(const float* x, int n, float* amax_out) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    float a = std::fabs(x[j]);
    if (a > amax) { amax = a; max = x[j]; }
  }
  *amax_out = amax;
  return max;
}

uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

}  // namespace

// ---- Q4_0 ----
void quantize_row_q4_0(const float* x, void* dst, int64_t n) {
  BlockQ4_0* y = (BlockQ4_0*)dst;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    const float max = signed_absmax(x, kQK, &amax);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + 16] * id + 8.5f);
      q0 = q0 > 15 ? 15 : q0;
      q1 = q1 > 15 ? 15 : q1;
      y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}
void dequantize_row_q4_0(const void* src, float* y, int64_t n) {
  const BlockQ4_0* x = (const BlockQ4_0*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * ((x[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * ((x[i].qs[j] >> 4) - 8);
    }
  }
}

// ---- Q4_1 ----
void quantize_row_q4_1(const float* x, void* dst, int64_t n) {
  BlockQ4_1* y = (BlockQ4_1*)dst;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
      int q0 = (int8_t)((x[j] - min) * id + 0.5f), q1 = (int8_t)((x[j + 16] - min) * id + 0.5f);
      q0 = q0 > 15 ? 15 : q0;
      q1 = q1 > 15 ? 15 : q1;
      y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}
void dequantize_row_q4_1(const void* src, float* y, int64_t n) {
  const BlockQ4_1* x = (const BlockQ4_1*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = (x[i].qs[j] & 0xF) * d + m;
      y[j + 16] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

// ---- Q5_0 ----
void quantize_row_q5_0(const float* x, void* dst, int64_t n) {
  BlockQ5_0* y = (BlockQ5_0*)dst;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    const float max = signed_absmax(x, kQK, &amax);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      int q0 = (int8_t)(x[j] * id + 16.5f), q1 = (int8_t)(x[j + 16] * id + 16.5f);
      q0 = q0 > 31 ? 31 : q0;
      q1 = q1 > 31 ? 31 : q1;
      y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= (uint32_t)((q0 >> 4) & 1) << j;
      qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}
void dequantize_row_q5_0(const void* src, float* y, int64_t n) {
  const BlockQ5_0* x = (const BlockQ5_0*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
      y[j] = d * (((x[i].qs[j] & 0xF) | (h0 << 4)) - 16);
      y[j + 16] = d * (((x[i].qs[j] >> 4) | (h1 << 4)) - 16);
    }
  }
}

// ---- Q5_1 ----
void quantize_row_q5_1(const float* x, void* dst, int64_t n) {
  BlockQ5_1* y = (BlockQ5_1*)dst;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      int q0 = (uint8_t)((x[j] - min) * id + 0.5f), q1 = (uint8_t)((x[j + 16] - min) * id + 0.5f);
      q0 = q0 > 31 ? 31 : q0;
      q1 = q1 > 31 ? 31 : q1;
      y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= (uint32_t)((q0 >> 4) & 1) << j;
      qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}
void dequantize_row_q5_1(const void* src, float* y, int64_t n) {
  const BlockQ5_1* x = (const BlockQ5_1*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
      y[j] = ((x[i].qs[j] & 0xF) | (h0 << 4)) * d + m;
      y[j + 16] = ((x[i].qs[j] >> 4) | (h1 << 4)) * d + m;
    }
  }
}

// ---- Q8_0 ----
void quantize_row_q8_0(const float* x, void* dst, int64_t n) {
  BlockQ8_0* y = (BlockQ8_0*)dst;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    signed_absmax(x, kQK, &amax);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = (int8_t)std::roundf(x[j] * id);
  }
}
void dequantize_row_q8_0(const void* src, float* y, int64_t n) {
  const BlockQ8_0* x = (const BlockQ8_0*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = x[i].qs[j] * d;
  }
}

// ---- Q8_1 ----
void quantize_row_q8_1(const float* x, void* dst, int64_t n) {
  BlockQ8_1* y = (BlockQ8_1*)dst;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    signed_absmax(x, kQK, &amax);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      y[i].qs[j] = (int8_t)std::roundf(x[j] * id);
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16((float)sum * d);
  }
}
void dequantize_row_q8_1(const void* src, float* y, int64_t n) {
  const BlockQ8_1* x = (const BlockQ8_1*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = x[i].qs[j] * d;
  }
}

// ---- IQ4_NL ----
namespace {
int nearest_iq4nl(float v) {
  // code book is sorted: binary search for the first value >= v, then compare neighbours
  int lo = 0, hi = 15;
  if (v <= kIq4nlValues[0]) return 0;
  if (v >= kIq4nlValues[15]) return 15;
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (v < kIq4nlValues[mid]) hi = mid; else lo = mid;
  }
  return v - kIq4nlValues[lo] < kIq4nlValues[hi] - v ? lo : hi;
}
}  // namespace

// Best scale of n values on the IQ4 code book, weighted least squares; tries a
// spread of inverse scales around max/127 (the code book's ends are -127, 113,
// so the best fit is not always the one that maps the extreme value to an end).
float iq4_fit_scale(const float* x, const float* w, int n, uint8_t* L) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    float a = std::fabs(x[j]);
    if (a > amax) { amax = a; max = x[j]; }
  }
  if (amax < 1e-30f) {
    for (int j = 0; j < n; ++j) L[j] = 8;  // value 1 * d(=0) = 0
    return 0;
  }
  float best_d = 0, best_score = -1;
  uint8_t tmp[256];
  for (int itry = -7; itry <= 7; ++itry) {
    const float id = (itry + kIq4nlValues[0]) / max;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < n; ++j) {
      int l = nearest_iq4nl(id * x[j]);
      tmp[j] = (uint8_t)l;
      float q = kIq4nlValues[l];
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
      best_score = sumqx * sumqx / sumq2;
      best_d = sumqx / sumq2;
      std::memcpy(L, tmp, (size_t)n);
    }
  }
  return best_d;
}

int iq4_nearest_index(float v) { return nearest_iq4nl(v); }

void quantize_row_iq4_nl(const float* x, void* dst, int64_t n) {
  BlockIQ4_NL* y = (BlockIQ4_NL*)dst;
  float w[kQK];
  uint8_t L[kQK];
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    for (int j = 0; j < kQK; ++j) w[j] = x[j] * x[j];
    const float d = iq4_fit_scale(x, w, kQK, L);
    y[i].d = fp32_to_fp16(d);
    // re-pick indices for the stored (fp16-rounded) scale
    const float ds = fp16_to_fp32(y[i].d);
    if (ds != 0) {
      const float id = 1.0f / ds;
      for (int j = 0; j < kQK; ++j) L[j] = (uint8_t)nearest_iq4nl(id * x[j]);
    }
    for (int j = 0; j < 16; ++j) y[i].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
  }
}
void dequantize_row_iq4_nl(const void* src, float* y, int64_t n) {
  const BlockIQ4_NL* x = (const BlockIQ4_NL*)src;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * kIq4nlValues[x[i].qs[j] & 0xF];
      y[j + 16] = d * kIq4nlValues[x[i].qs[j] >> 4];
    }
  }
}

// ---- dot products: integer sums per block, one float multiply per block ----
void vec_dot_q4_0_q8_0(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ4_0* x = (const BlockQ4_0*)vx;
  const BlockQ8_0* y = (const BlockQ8_0*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    sum += s * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  }
  *out = sum;
}

void vec_dot_q4_1_q8_1(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ4_1* x = (const BlockQ4_1*)vx;
  const BlockQ8_1* y = (const BlockQ8_1*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    sum += (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) * s +
           fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
  }
  *out = sum;
}

void vec_dot_q5_0_q8_0(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ5_0* x = (const BlockQ5_0*)vx;
  const BlockQ8_0* y = (const BlockQ8_0*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_qh(x[i].qh);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = ((x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      const int q1 = ((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      s += q0 * y[i].qs[j] + q1 * y[i].qs[j + 16];
    }
    sum += s * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  }
  *out = sum;
}

void vec_dot_q5_1_q8_1(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ5_1* x = (const BlockQ5_1*)vx;
  const BlockQ8_1* y = (const BlockQ8_1*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_qh(x[i].qh);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = (x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int q1 = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      s += q0 * y[i].qs[j] + q1 * y[i].qs[j + 16];
    }
    sum += (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) * s +
           fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
  }
  *out = sum;
}

void vec_dot_q8_0_q8_0(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ8_0* x = (const BlockQ8_0*)vx;
  const BlockQ8_0* y = (const BlockQ8_0*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s = 0;
    for (int j = 0; j < kQK; ++j) s += x[i].qs[j] * y[i].qs[j];
    sum += s * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
  }
  *out = sum;
}

void vec_dot_q8_1_q8_1(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ8_1* x = (const BlockQ8_1*)vx;
  const BlockQ8_1* y = (const BlockQ8_1*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s = 0;
    for (int j = 0; j < kQK; ++j) s += x[i].qs[j] * y[i].qs[j];
    sum += s * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
  }
  *out = sum;
}

void vec_dot_iq4_nl_q8_0(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockIQ4_NL* x = (const BlockIQ4_NL*)vx;
  const BlockQ8_0* y = (const BlockQ8_0*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += kIq4nlValues[x[i].qs[j] & 0xF] * y[i].qs[j] + kIq4nlValues[x[i].qs[j] >> 4] * y[i].qs[j + 16];
    sum += (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) * s;
  }
  *out = sum;
}

}  // namespace slim
