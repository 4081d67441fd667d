// AVX-512 kernels (F/BW/VL/DQ + VNNI + BF16): the shared quantized tiles
// (simd_body.inc) with VNNI dpbusd as the int8 primitive (one instruction
// instead of maddubs + madd), 512-bit float dot products, BF16 pairs through
// vdpbf16ps, and the F16/BF16 activation converters.
// GCC 12 reports -Wuninitialized inside its own AVX-512 headers (the
// _mm*_undefined_* operands of unmasked intrinsics, a known false positive);
// silenced for this file only, before the header is read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/kernels_isa.h"
#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {
namespace avx512 {
namespace {

inline __m256i mul_sum_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}
inline __m256i mul_sum_u8s8_scaled(__m256i u, __m256i s, int sa, int sb) {
  const __m256i sc = _mm256_set_m128i(_mm_set1_epi32(sb), _mm_set1_epi32(sa));
  return _mm256_mullo_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), sc);
}

#include "kernels/simd_body.inc"

inline __m512 load16_f32(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16_f16(const uint16_t* p) {
  return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256((const __m256i*)p));
}
inline float hsum512(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));
  return _mm512_cvtss_f32(v);
}

inline float cvt_f32(float v) { return v; }
inline float cvt_f16(uint16_t v) { return fp16_to_fp32(v); }
inline float cvt_bf16(uint16_t v) { return bf16_to_fp32(v); }

template <class E, __m512 (*Load)(const E*), float (*Scalar)(E), int NC>
void tile_float(int64_t n, float* out, const void* vx, const void* vy, size_t ys) {
  const E* x = (const E*)vx;
  __m512 a0[NC], a1[NC];
  for (int c = 0; c < NC; ++c) a0[c] = _mm512_setzero_ps(), a1[c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = Load(x + i), x1 = Load(x + i + 16);
    for (int c = 0; c < NC; ++c) {
      const E* y = act_row<E>(vy, ys, c);
      a0[c] = _mm512_fmadd_ps(x0, Load(y + i), a0[c]);
      a1[c] = _mm512_fmadd_ps(x1, Load(y + i + 16), a1[c]);
    }
  }
  for (int c = 0; c < NC; ++c) {
    const E* y = act_row<E>(vy, ys, c);
    float s = hsum512(_mm512_add_ps(a0[c], a1[c]));
    for (int64_t j = i; j < n; ++j) s += Scalar(x[j]) * Scalar(y[j]);
    out[c] = s;
  }
}

// BF16: vdpbf16ps multiplies 32 pairs a step and adds adjacent products in
// float (the hardware flushes denormals, which bf16 weights do not use).
template <int NC>
void tile_bf16(int64_t n, float* out, const void* vx, const void* vy, size_t ys) {
  const uint16_t* x = (const uint16_t*)vx;
  __m512 acc[NC];
  for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + i);
    for (int c = 0; c < NC; ++c) {
      const uint16_t* y = act_row<uint16_t>(vy, ys, c);
      acc[c] = _mm512_dpbf16_ps(acc[c], xv, (__m512bh)_mm512_loadu_si512(y + i));
    }
  }
  for (int c = 0; c < NC; ++c) {
    const uint16_t* y = act_row<uint16_t>(vy, ys, c);
    float s = hsum512(acc[c]);
    for (int64_t j = i; j < n; ++j) s += bf16_to_fp32(x[j]) * bf16_to_fp32(y[j]);
    out[c] = s;
  }
}

template <int NC> struct TileF32 {
  static void run(int64_t n, float* o, const void* x, const void* y, size_t ys) {
    tile_float<float, load16_f32, cvt_f32, NC>(n, o, x, y, ys);
  }
};
template <int NC> struct TileF16 {
  static void run(int64_t n, float* o, const void* x, const void* y, size_t ys) {
    tile_float<uint16_t, load16_f16, cvt_f16, NC>(n, o, x, y, ys);
  }
};
template <int NC> struct TileBF16 {
  static void run(int64_t n, float* o, const void* x, const void* y, size_t ys) { tile_bf16<NC>(n, o, x, y, ys); }
};

void quantize_f16(const float* x, void* dst, int64_t n) {
  uint16_t* y = (uint16_t*)dst;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i*)(y + i), _mm512_maskz_cvtps_ph(0xFFFF, _mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_bf16(const float* x, void* dst, int64_t n) {
  uint16_t* y = (uint16_t*)dst;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i*)(y + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

}  // namespace
}  // namespace avx512

void fill_rows_avx512(KernelRow* rows) {
  using namespace avx512;
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

}  // namespace slim
