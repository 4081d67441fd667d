// AVX2 + FMA + F16C kernels: the shared quantized tiles (simd_body.inc) with
// the maddubs/madd int8 primitive, plus 256-bit float dot products and the
// F16/BF16 activation converters. Compiled with -mavx2 -mfma -mf16c -mbmi2.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/kernels_isa.h"
#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {
namespace avx2 {
namespace {

inline __m256i mul_sum_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i mul_sum_u8s8_scaled(__m256i u, __m256i s, int sa, int sb) {
  const __m256i sc = _mm256_set_m128i(_mm_set1_epi16((short)sb), _mm_set1_epi16((short)sa));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc);
}

#include "kernels/simd_body.inc"

// ---- float types: 16 values a step in two accumulators per token ----
inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
inline __m256 load8_bf16(const uint16_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

template <class E, __m256 (*Load)(const E*), float (*Scalar)(E), int NC>
void tile_float(int64_t n, float* out, const void* vx, const void* vy, size_t ys) {
  const E* x = (const E*)vx;
  __m256 a0[NC], a1[NC];
  for (int c = 0; c < NC; ++c) a0[c] = _mm256_setzero_ps(), a1[c] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = Load(x + i), x1 = Load(x + i + 8);
    for (int c = 0; c < NC; ++c) {
      const E* y = act_row<E>(vy, ys, c);
      a0[c] = _mm256_fmadd_ps(x0, Load(y + i), a0[c]);
      a1[c] = _mm256_fmadd_ps(x1, Load(y + i + 8), a1[c]);
    }
  }
  for (int c = 0; c < NC; ++c) {
    const E* y = act_row<E>(vy, ys, c);
    float s = hsum_ps(_mm256_add_ps(a0[c], a1[c]));
    for (int64_t j = i; j < n; ++j) s += Scalar(x[j]) * Scalar(y[j]);
    out[c] = s;
  }
}

inline float id_f32(float v) { return v; }
inline float cvt_f16(uint16_t v) { return fp16_to_fp32(v); }
inline float cvt_bf16(uint16_t v) { return bf16_to_fp32(v); }

template <int NC> struct TileF32 {
  static void run(int64_t n, float* o, const void* x, const void* y, size_t ys) {
    tile_float<float, load8_f32, id_f32, NC>(n, o, x, y, ys);
  }
};
template <int NC> struct TileF16 {
  static void run(int64_t n, float* o, const void* x, const void* y, size_t ys) {
    tile_float<uint16_t, load8_f16, cvt_f16, NC>(n, o, x, y, ys);
  }
};
template <int NC> struct TileBF16 {
  static void run(int64_t n, float* o, const void* x, const void* y, size_t ys) {
    tile_float<uint16_t, load8_bf16, cvt_bf16, NC>(n, o, x, y, ys);
  }
};

void quantize_f16(const float* x, void* dst, int64_t n) {
  uint16_t* y = (uint16_t*)dst;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i*)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

// round to nearest even on the integer bits, NaN kept quiet (same as fp32_to_bf16)
void quantize_bf16(const float* x, void* dst, int64_t n) {
  uint16_t* y = (uint16_t*)dst;
  int64_t i = 0;
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
  for (; i + 16 <= n; i += 16) {
    __m256i r[2];
    for (int k = 0; k < 2; ++k) {
      const __m256 f = _mm256_loadu_ps(x + i + 8 * k);
      const __m256i u = _mm256_castps_si256(f);
      const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
      const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), lsb), 16);
      const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
      const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
      r[k] = _mm256_blendv_epi8(rounded, nan, is_nan);
    }
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
    _mm256_storeu_si256((__m256i*)(y + i), p);
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}


// ---- attention loops (dispatch.h AttnKernels) ----
inline __m256 attn_load_out(const float* p) { return _mm256_loadu_ps(p); }
inline void attn_store_out(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
inline __m256 attn_load(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 attn_load(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
inline float attn_scalar(float x) { return x; }
inline float attn_scalar(uint16_t x) { return fp16_to_fp32(x); }

// The sums of 8 vectors in one (lane l: the sum of v[l]'s lanes): two rounds
// of horizontal adds and one of 128-bit halves, instead of a horizontal sum a key.
inline __m256 sum8(const __m256* v) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Decode's query against each cached key: the query converted once, keys
// eight at a time with their own FMA chains, summed by sum8 into one store.
template <class E>
void attn_scores(int64_t n_keys, int64_t dim, const void* q, const void* k, size_t stride, float* s) {
  const E* qv = (const E*)q;
  auto key = [&](int64_t j) { return (const E*)((const char*)k + j * stride); };
  int64_t j = 0;
  if (dim % 8 == 0 && dim <= 256) {
    alignas(32) float qf[256];
    for (int64_t i = 0; i < dim; i += 8) _mm256_store_ps(qf + i, attn_load(qv + i));
    for (; j + 8 <= n_keys; j += 8) {
      __m256 acc[8];
      for (int l = 0; l < 8; ++l) {
        const E* kv = key(j + l);
        __m256 a = _mm256_mul_ps(_mm256_load_ps(qf), attn_load(kv));
        for (int64_t i = 8; i < dim; i += 8) a = _mm256_fmadd_ps(_mm256_load_ps(qf + i), attn_load(kv + i), a);
        acc[l] = a;
      }
      _mm256_storeu_ps(s + j, sum8(acc));
    }
  }
  const int64_t nv = dim / 8 * 8;
  for (; j < n_keys; ++j) {
    const E* kv = key(j);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nv; i += 8) acc = _mm256_fmadd_ps(attn_load(qv + i), attn_load(kv + i), acc);
    float sum = hsum_ps(acc);
    for (int64_t i = nv; i < dim; ++i) sum += attn_scalar(qv[i]) * attn_scalar(kv[i]);
    s[j] = sum;
  }
}

// exp of 8 floats: x = n ln2 + r, |r| <= ln2/2, degree-7 polynomial, 2^n
// built in the exponent bits; x is clamped to [-87, 88] so 2^n stays a
// normal float (e^-87 ~ 1.6e-38 stands in for 0), about 1 ulp from std::exp.
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void attn_softmax(int64_t n, float* s, float scale, float cap) {
  if (cap > 0 || n < 8) {  // soft-capping (tanh) and short rows: the scalar twin
    attn_softmax_ref(n, s, scale, cap);
    return;
  }
  const __m256 sc = _mm256_set1_ps(scale);
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(s + j), sc);
    _mm256_storeu_ps(s + j, t);
    mx = _mm256_max_ps(mx, t);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mx);
  float m = lanes[0];
  for (int l = 1; l < 8; ++l) m = std::max(m, lanes[l]);
  for (int64_t i = j; i < n; ++i) s[i] *= scale, m = std::max(m, s[i]);
  const __m256 vm = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  float total = hsum_ps(sum);
  for (; j < n; ++j) total += s[j] = std::exp(s[j] - m);
  const float inv = 1.0f / total;
  const __m256 vinv = _mm256_set1_ps(inv);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), vinv));
  for (; j < n; ++j) s[j] *= inv;
}

void swiglu(int64_t n, const float* gate, const float* up, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(gate + i);
    const __m256 sg = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(sg, _mm256_loadu_ps(up + i)));
  }
  swiglu_ref(n - i, gate + i, up + i, out + i);
}

// out kept in registers over all keys when dim fits (head dims up to 256)
template <class E>
void attn_mix(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out) {
  constexpr int kMaxVec = 256 / 8;
  if (dim % 8 != 0 || dim > 256) {
    for (int64_t j = 0; j < n_keys; ++j) {
      const E* vv = (const E*)((const char*)v + j * stride);
      for (int64_t i = 0; i < dim; ++i) out[i] += w[j] * attn_scalar(vv[i]);
    }
    return;
  }
  const int nvec = (int)(dim / 8);
  __m256 acc[kMaxVec];
  for (int c = 0; c < nvec; ++c) acc[c] = attn_load_out(out + c * 8);
  for (int64_t j = 0; j < n_keys; ++j) {
    const E* vv = (const E*)((const char*)v + j * stride);
    const __m256 a = _mm256_set1_ps(w[j]);
    for (int c = 0; c < nvec; ++c) acc[c] = _mm256_fmadd_ps(a, attn_load(vv + c * 8), acc[c]);
  }
  for (int c = 0; c < nvec; ++c) attn_store_out(out + c * 8, acc[c]);
}

}  // namespace
}  // namespace avx2

void fill_rows_avx2(KernelRow* rows) {
  using namespace avx2;
  set_tile<TileF32>(rows, GgmlType::F32);
  set_tile<TileF16>(rows, GgmlType::F16);
  set_tile<TileBF16>(rows, GgmlType::BF16);
  set_tile<TileQ8_0>(rows, GgmlType::Q8_0);
  set_tile<TileQ4_0>(rows, GgmlType::Q4_0);
  set_tile<TileQ5_0>(rows, GgmlType::Q5_0);
  set_tile<TileQ4_1>(rows, GgmlType::Q4_1);
  set_tile<TileQ5_1>(rows, GgmlType::Q5_1);
  set_tile<TileIQ4_NL>(rows, GgmlType::IQ4_NL);
  set_tile<TileQ4_K>(rows, GgmlType::Q4_K);
  set_tile<TileQ5_K>(rows, GgmlType::Q5_K);
  set_tile<TileQ6_K>(rows, GgmlType::Q6_K);
  set_tile<TileQ2_K>(rows, GgmlType::Q2_K);
  set_tile<TileQ3_K>(rows, GgmlType::Q3_K);
  set_tile<TileIQ4_XS>(rows, GgmlType::IQ4_XS);
  rows[(size_t)GgmlType::F16].from_float = quantize_f16;
  rows[(size_t)GgmlType::BF16].from_float = quantize_bf16;
  rows[(size_t)GgmlType::Q8_0].from_float = quantize_q8_0;
  rows[(size_t)GgmlType::Q8_1].from_float = quantize_q8_1;
  rows[(size_t)GgmlType::Q8_K].from_float = quantize_q8_k;
}

void fill_float_avx2(KernelTable& t) {
  using namespace avx2;
  t.attn_f32 = {attn_scores<float>, attn_mix<float>, attn_softmax};
  t.attn_f16 = {attn_scores<uint16_t>, attn_mix<uint16_t>, attn_softmax};
  t.swiglu = swiglu;
}

}  // namespace slim
