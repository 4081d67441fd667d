// Scalar reference of the 256-value super-block formats: Q2_K..Q6_K, Q8_K and
// IQ4_XS. Dequantize and dot products follow the file format exactly; the
// weight quantizers search sub-block scales by weighted least squares (the
// usual approach for these formats; not bit-identical to llama-quantize, but
// of the same quality). Q8_K (activations) uses ggml's reference rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {
namespace {

int nearest_int(float v) { return (int)std::nearbyint(v); }  // ties to even, like ggml

// Affine fit x ~ scale * L - mn with L in [0, nmax], minimizing sum w * err^2.
// Tries a fan of inverse scales and solves the 2x2 least-squares system for each
// rounding; the offset is kept <= 0 (mn >= 0) because the formats store it unsigned.
float fit_affine(int n, int nmax, const float* x, const float* w, uint8_t* L, float* mn,
                 float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (lo > 0) lo = 0;
  if (hi <= lo) {
    std::fill(L, L + n, 0);
    *mn = -lo;
    return 0;
  }
  uint8_t tmp[32];
  auto error_of = [&](float scale, float off, const uint8_t* q) {
    float e = 0;
    for (int i = 0; i < n; ++i) {
      float d = scale * q[i] + off - x[i];
      e += w[i] * d * d;
    }
    return e;
  };
  auto round_with = [&](float iscale, float off, uint8_t* q) {
    for (int i = 0; i < n; ++i) q[i] = (uint8_t)std::clamp(nearest_int(iscale * (x[i] - off)), 0, nmax);
  };
  float best_scale = (hi - lo) / nmax, best_off = lo;
  round_with(1.0f / best_scale, best_off, L);
  float best_err = error_of(best_scale, best_off, L);
  for (int is = 0; is <= nstep; ++is) {
    const float iscale = (rmin + rdelta * is + nmax) / (hi - lo);
    round_with(iscale, lo, tmp);
    float sw = 0, sx = 0, sl = 0, sl2 = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      const float l = tmp[i];
      sw += w[i];
      sx += w[i] * x[i];
      sl += w[i] * l;
      sl2 += w[i] * l * l;
      sxl += w[i] * l * x[i];
    }
    const float det = sw * sl2 - sl * sl;
    if (det <= 0) continue;
    float scale = (sw * sxl - sx * sl) / det;
    float off = (sl2 * sx - sl * sxl) / det;
    if (off > 0) {
      off = 0;
      scale = sl2 > 0 ? sxl / sl2 : 0;
    }
    const float err = error_of(scale, off, tmp);
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      best_off = off;
      std::memcpy(L, tmp, (size_t)n);
    }
  }
  *mn = -best_off;
  return best_scale;
}

// Symmetric fit x ~ scale * l with l in [-nmax, nmax-1]; returns the scale
// (sign chosen so the largest magnitude lands on -nmax, using the extra level).
float fit_symmetric(int n, int nmax, const float* x, const float* w) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); max = x[i]; }
  if (amax < 1e-30f) return 0;
  float best_scale = 0, best_score = -1;
  for (int is = -9; is <= 9; ++is) {
    const float iscale = -(nmax + 0.1f * is) / max;
    float sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      sxl += w[i] * x[i] * l;
      sl2 += w[i] * l * l;
    }
    if (sl2 > 0 && sxl * sxl > best_score * sl2) {
      best_score = sxl * sxl / sl2;
      best_scale = sxl / sl2;
    }
  }
  return best_scale;
}

// Q4_K/Q5_K shared quantizer: 8 sub-blocks of 32, 6-bit scales and mins.
void quantize_k4_like(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out,
                      uint8_t* packed_scales, uint8_t* L) {
  float scales[8], mins[8], w[32];
  float sum_x2 = 0;
  for (int i = 0; i < kQKK; ++i) sum_x2 += x[i] * x[i];
  const float av_x = std::sqrt(sum_x2 / kQKK);
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = fit_affine(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = (uint8_t)std::min(63, nearest_int(inv_scale * scales[j]));
    lm[j] = (uint8_t)std::min(63, nearest_int(inv_min * mins[j]));
  }
  std::memset(packed_scales, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      packed_scales[j] = ls[j];
      packed_scales[j + 4] = lm[j];
    } else {
      packed_scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      packed_scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
      packed_scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
  }
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);
  // re-round every value against the scales as stored
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(j, packed_scales, &sc, &m);
    const float ds = d * sc;
    if (ds == 0) {
      std::fill(L + 32 * j, L + 32 * j + 32, 0);
      continue;
    }
    const float dm = dmin * m;
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = (uint8_t)std::clamp(nearest_int((x[32 * j + l] + dm) / ds), 0, nmax);
  }
}

}  // namespace

// ---- Q8_K ----
void quantize_row_q8_k(const float* x, void* dst, int64_t n) {
  BlockQ8_K* y = (BlockQ8_K*)dst;
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQKK; ++j)
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) y[i].qs[j] = (int8_t)std::min(127, nearest_int(iscale * x[j]));
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[i].qs[16 * j + l];
      y[i].bsums[j] = (int16_t)s;
    }
    y[i].d = 1 / iscale;
  }
}
void dequantize_row_q8_k(const void* src, float* y, int64_t n) {
  const BlockQ8_K* x = (const BlockQ8_K*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK)
    for (int j = 0; j < kQKK; ++j) y[j] = x[i].d * x[i].qs[j];
}

// ---- Q2_K ----
void quantize_row_q2_k(const float* x, void* dst, int64_t n) {
  BlockQ2_K* y = (BlockQ2_K*)dst;
  uint8_t L[kQKK];
  float w[16], scales[16], mins[16];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float iscale = max_scale > 0 ? 15.f / max_scale : 0.f;
    const float imin = max_min > 0 ? 15.f / max_min : 0.f;
    for (int j = 0; j < 16; ++j) {
      const int ls = std::min(15, nearest_int(iscale * scales[j]));
      const int lm = std::min(15, nearest_int(imin * mins[j]));
      y[i].scales[j] = (uint8_t)(ls | (lm << 4));
    }
    y[i].d = fp32_to_fp16(max_scale / 15.f);
    y[i].dmin = fp32_to_fp16(max_min / 15.f);
    const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
    for (int j = 0; j < 16; ++j) {
      const float ds = d * (y[i].scales[j] & 0xF);
      if (ds == 0) {
        std::fill(L + 16 * j, L + 16 * j + 16, 0);
        continue;
      }
      const float dm = dmin * (y[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = (uint8_t)std::clamp(nearest_int((x[16 * j + l] + dm) / ds), 0, 3);
    }
    for (int j = 0; j < kQKK; j += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                       (L[j + l + 96] << 6));
  }
}
// value e of a Q2_K/Q3_K block: byte 32*(e/128) + e%32 of qs, bit pair (e/32)%4
static inline int q2_bits(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + (e % 32)] >> (2 * ((e / 32) % 4))) & 3;
}
void dequantize_row_q2_k(const void* src, float* y, int64_t n) {
  const BlockQ2_K* x = (const BlockQ2_K*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    for (int e = 0; e < kQKK; ++e) {
      const uint8_t sc = x[i].scales[e / 16];
      y[e] = d * (sc & 0xF) * q2_bits(x[i].qs, e) - dmin * (sc >> 4);
    }
  }
}

// ---- Q3_K ----
void quantize_row_q3_k(const float* x, void* dst, int64_t n) {
  BlockQ3_K* y = (BlockQ3_K*)dst;
  float w[16], scales[16];
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float amax = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = x[16 * j + l] * x[16 * j + l];
      scales[j] = fit_symmetric(16, 4, x + 16 * j, w);
      if (std::fabs(scales[j]) > amax) { amax = std::fabs(scales[j]); max_scale = scales[j]; }
    }
    std::memset(y[i].scales, 0, 12);
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof(BlockQ3_K));
      // zero scale with stored offset 32 -> value 0; hmask/qs irrelevant
      for (int j = 0; j < 16; ++j) {
        const int l = 32;
        y[i].scales[j % 8] |= (uint8_t)((l & 0xF) << (4 * (j / 8)));
        y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
      }
      continue;
    }
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; ++j) {
      const int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
      y[i].scales[j % 8] |= (uint8_t)((l & 0xF) << (4 * (j / 8)));
      y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    y[i].d = fp32_to_fp16(1 / iscale);
    const float d = fp16_to_fp32(y[i].d);
    for (int j = 0; j < 16; ++j) {
      const float ds = d * unpack_scale_q3_k(j, y[i].scales);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = ds == 0 ? 4 : (uint8_t)(std::clamp(nearest_int(x[16 * j + l] / ds), -4, 3) + 4);
    }
    std::memset(y[i].hmask, 0, 32);
    std::memset(y[i].qs, 0, 64);
    for (int e = 0; e < kQKK; ++e) {
      if (L[e] > 3) y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
      y[i].qs[32 * (e / 128) + (e % 32)] |= (uint8_t)((L[e] & 3) << (2 * ((e / 32) % 4)));
    }
  }
}
void dequantize_row_q3_k(const void* src, float* y, int64_t n) {
  const BlockQ3_K* x = (const BlockQ3_K*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int e = 0; e < kQKK; ++e) {
      const int hi = (x[i].hmask[e % 32] >> (e / 32)) & 1;
      const int q = q2_bits(x[i].qs, e) - (hi ? 0 : 4);
      y[e] = d * unpack_scale_q3_k(e / 16, x[i].scales) * q;
    }
  }
}

// ---- Q4_K ----
void quantize_row_q4_k(const float* x, void* dst, int64_t n) {
  BlockQ4_K* y = (BlockQ4_K*)dst;
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    quantize_k4_like(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int j = 0; j < kQKK; j += 64)
      for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
  }
}
void dequantize_row_q4_k(const void* src, float* y, int64_t n) {
  const BlockQ4_K* x = (const BlockQ4_K*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, x[i].scales, &sc, &m);
      const float ds = d * sc, dm = dmin * m;
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) y[32 * j + l] = ds * ((q[l] >> shift) & 0xF) - dm;
    }
  }
}

// ---- Q5_K ----
void quantize_row_q5_k(const float* x, void* dst, int64_t n) {
  BlockQ5_K* y = (BlockQ5_K*)dst;
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    quantize_k4_like(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, 32);
    for (int j = 0; j < kQKK; j += 64) {
      const int b = j / 32;  // sub-block pair (b, b+1) uses qh bits b and b+1
      for (int l = 0; l < 32; ++l) {
        const int lo = L[j + l], hi = L[j + l + 32];
        y[i].qs[j / 2 + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
        y[i].qh[l] |= (uint8_t)(((lo >> 4) << b) | ((hi >> 4) << (b + 1)));
      }
    }
  }
}
void dequantize_row_q5_k(const void* src, float* y, int64_t n) {
  const BlockQ5_K* x = (const BlockQ5_K*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, x[i].scales, &sc, &m);
      const float ds = d * sc, dm = dmin * m;
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xF) | (((x[i].qh[l] >> j) & 1) << 4);
        y[32 * j + l] = ds * v - dm;
      }
    }
  }
}

// ---- Q6_K ----
// value e: low nibble from ql[64*(e/128) + e%64] (high nibble when (e%128) >= 64),
// two high bits from qh[32*(e/128) + e%32] at bit pair (e%128)/32.
static inline int q6_value(const BlockQ6_K& b, int e) {
  const int h = e / 128, r = e % 128;
  const int lo = (b.ql[64 * h + (r % 64)] >> (4 * (r / 64))) & 0xF;
  const int hi = (b.qh[32 * h + (r % 32)] >> (2 * (r / 32))) & 3;
  return (lo | (hi << 4)) - 32;
}
void quantize_row_q6_k(const float* x, void* dst, int64_t n) {
  BlockQ6_K* y = (BlockQ6_K*)dst;
  float w[16], scales[16];
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float amax = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = x[16 * j + l] * x[16 * j + l];
      scales[j] = fit_symmetric(16, 32, x + 16 * j, w);
      if (std::fabs(scales[j]) > amax) { amax = std::fabs(scales[j]); max_scale = scales[j]; }
    }
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j) y[i].scales[j] = (int8_t)std::min(127, nearest_int(iscale * scales[j]));
    const float d = fp16_to_fp32(y[i].d);
    for (int j = 0; j < 16; ++j) {
      const float ds = d * y[i].scales[j];
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = ds == 0 ? 32 : (uint8_t)(std::clamp(nearest_int(x[16 * j + l] / ds), -32, 31) + 32);
    }
    std::memset(y[i].ql, 0, 128);
    std::memset(y[i].qh, 0, 64);
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128, r = e % 128;
      y[i].ql[64 * h + (r % 64)] |= (uint8_t)((L[e] & 0xF) << (4 * (r / 64)));
      y[i].qh[32 * h + (r % 32)] |= (uint8_t)((L[e] >> 4) << (2 * (r / 32)));
    }
  }
}
void dequantize_row_q6_k(const void* src, float* y, int64_t n) {
  const BlockQ6_K* x = (const BlockQ6_K*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int e = 0; e < kQKK; ++e) y[e] = d * x[i].scales[e / 16] * q6_value(x[i], e);
  }
}

// ---- IQ4_XS ----
static inline int iq4xs_scale(const BlockIQ4_XS& b, int ib) {
  return (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4)) - 32;
}
void quantize_row_iq4_xs(const float* x, void* dst, int64_t n) {
  BlockIQ4_XS* y = (BlockIQ4_XS*)dst;
  float w[32], scales[8];
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    std::memset(&y[i], 0, sizeof(BlockIQ4_XS));
    float amax = 0, max_scale = 0;
    for (int ib = 0; ib < 8; ++ib) {
      for (int j = 0; j < 32; ++j) w[j] = x[32 * ib + j] * x[32 * ib + j];
      scales[ib] = iq4_fit_scale(x + 32 * ib, w, 32, L + 32 * ib);
      if (std::fabs(scales[ib]) > amax) { amax = std::fabs(scales[ib]); max_scale = scales[ib]; }
    }
    if (amax == 0) {
      // all-zero block: scale -32+32 stored, every value maps to index 8 (=1*0)
      for (int j = 0; j < 128; ++j) y[i].qs[j] = 0x88;
      continue;
    }
    const float d = -max_scale / 32;
    y[i].d = fp32_to_fp16(d);
    const float dd = fp16_to_fp32(y[i].d);
    const float id = 1 / d;
    for (int ib = 0; ib < 8; ++ib) {
      const int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
      const int ls = l + 32;
      y[i].scales_l[ib / 2] |= (uint8_t)((ls & 0xF) << (4 * (ib % 2)));
      y[i].scales_h |= (uint16_t)((ls >> 4) << (2 * ib));
      const float dl = dd * l;
      uint8_t* Lb = L + 32 * ib;
      if (dl != 0) {
        const float idl = 1 / dl;
        for (int j = 0; j < 32; ++j) Lb[j] = (uint8_t)iq4_nearest_index(idl * x[32 * ib + j]);
      } else {
        for (int j = 0; j < 32; ++j) Lb[j] = 8;
      }
      for (int j = 0; j < 16; ++j) y[i].qs[16 * ib + j] = (uint8_t)(Lb[j] | (Lb[j + 16] << 4));
    }
  }
}
void dequantize_row_iq4_xs(const void* src, float* y, int64_t n) {
  const BlockIQ4_XS* x = (const BlockIQ4_XS*)src;
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      const float dl = d * iq4xs_scale(x[i], ib);
      const uint8_t* q = x[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[32 * ib + j] = dl * kIq4nlValues[q[j] & 0xF];
        y[32 * ib + j + 16] = dl * kIq4nlValues[q[j] >> 4];
      }
    }
  }
}

// ---- dot products with Q8_K: integer sums per sub-block, two floats per block ----
void vec_dot_q2_k_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ2_K* x = (const BlockQ2_K*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int summs = 0, isum = 0;
    for (int j = 0; j < 16; ++j) {
      summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q2_bits(x[i].qs, 16 * j + l) * y[i].qs[16 * j + l];
      isum += (x[i].scales[j] & 0xF) * s;
    }
    sum += y[i].d * fp16_to_fp32(x[i].d) * isum - y[i].d * fp16_to_fp32(x[i].dmin) * summs;
  }
  *out = sum;
}

void vec_dot_q3_k_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ3_K* x = (const BlockQ3_K*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        const int hi = (x[i].hmask[e % 32] >> (e / 32)) & 1;
        s += (q2_bits(x[i].qs, e) - (hi ? 0 : 4)) * y[i].qs[e];
      }
      isum += unpack_scale_q3_k(j, x[i].scales) * s;
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * isum;
  }
  *out = sum;
}

void vec_dot_q4_k_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ4_K* x = (const BlockQ4_K*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int isum = 0, summs = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, x[i].scales, &sc, &m);
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l) s += ((q[l] >> shift) & 0xF) * y[i].qs[32 * j + l];
      isum += sc * s;
      summs += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * isum - fp16_to_fp32(x[i].dmin) * y[i].d * summs;
  }
  *out = sum;
}

void vec_dot_q5_k_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ5_K* x = (const BlockQ5_K*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int isum = 0, summs = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, x[i].scales, &sc, &m);
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xF) | (((x[i].qh[l] >> j) & 1) << 4);
        s += v * y[i].qs[32 * j + l];
      }
      isum += sc * s;
      summs += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * isum - fp16_to_fp32(x[i].dmin) * y[i].d * summs;
  }
  *out = sum;
}

void vec_dot_q6_k_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ6_K* x = (const BlockQ6_K*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q6_value(x[i], 16 * j + l) * y[i].qs[16 * j + l];
      isum += x[i].scales[j] * s;
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * isum;
  }
  *out = sum;
}

void vec_dot_q8_k_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockQ8_K* x = (const BlockQ8_K*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int s = 0;
    for (int j = 0; j < kQKK; ++j) s += x[i].qs[j] * y[i].qs[j];
    sum += x[i].d * y[i].d * s;
  }
  *out = sum;
}

void vec_dot_iq4_xs_q8_k(int64_t n, float* out, const void* vx, const void* vy) {
  const BlockIQ4_XS* x = (const BlockIQ4_XS*)vx;
  const BlockQ8_K* y = (const BlockQ8_K*)vy;
  float sum = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int isum = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = x[i].qs + 16 * ib;
      const int8_t* yq = y[i].qs + 32 * ib;
      int s = 0;
      for (int j = 0; j < 16; ++j)
        s += kIq4nlValues[q[j] & 0xF] * yq[j] + kIq4nlValues[q[j] >> 4] * yq[j + 16];
      isum += iq4xs_scale(x[i], ib) * s;
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * isum;
  }
  *out = sum;
}

}  // namespace slim
