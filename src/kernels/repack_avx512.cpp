// Products over row-interleaved panels (repack.h) on AVX-512 VNNI, for one
// token (decode) and token tiles (prefill) alike: per block column the 16
// rows' quants are unpacked once into eight step vectors, and each token's
// activation words are broadcast against them, so lane l accumulates row l.
// No horizontal sums; the 16 scales are one load; the result is one store.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernels_isa.h"
#include "kernels/repack.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace avx512 {
namespace {

// Decode reads each weight byte once and these kernels outrun what the
// out-of-order window keeps in flight: prefetch a fixed distance ahead
// (8 KiB measured best at 2 threads on qwen2.5-0.5b Q4_0: 200 tokens/s
// against 173 without, 193 at 4 KiB and 190 at 16 KiB).
constexpr size_t kAhead = 8192;
template <size_t kBytes>
inline void prefetch_block(const uint8_t* p) {
  for (size_t o = 0; o < kBytes; o += 64) _mm_prefetch((const char*)p + kAhead + o, _MM_HINT_T0);
}

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// the eight step vectors of one 32-value group from four nibble vectors
inline void unpack_nibbles(const uint8_t* p, __m512i* w) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int k = 0; k < 4; ++k) {
    const __m512i v = _mm512_loadu_si512(p + 64 * k);
    w[k] = _mm512_and_si512(v, m4);
    w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
  }
}

// adds the top bits of every step from `bits`-bit fields (repack.h): the
// field of step s moves to bit 4 by a 16-bit shift whose spill into the
// neighbouring byte lands outside the mask
template <int kBits>
inline void add_high(const uint8_t* p, __m512i* w) {
  constexpr int per = 8 / kBits;
  const __m512i mask = _mm512_set1_epi8((char)(((1 << kBits) - 1) << 4));
  for (int v = 0; v < kBits; ++v) {
    const __m512i h = _mm512_loadu_si512(p + 64 * v);
    for (int f = 0; f < per; ++f) {
      const int shift = 4 - kBits * f;  // field f starts at bit kBits * f
      const __m512i at4 = shift >= 0 ? _mm512_slli_epi16(h, shift) : _mm512_srli_epi16(h, -shift);
      w[per * v + f] = _mm512_or_si512(w[per * v + f], _mm512_and_si512(at4, mask));
    }
  }
}

inline void store_rows(float* y, __m512 v, int n_rows) {
  _mm512_mask_storeu_ps(y, (__mmask16)((1u << n_rows) - 1), v);
}

// ---- 32-value blocks with Q8_0 activations: Q8_0, Q4_0, Q5_0 ----
template <GgmlType T, int C>
void gemm_32(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
             const int32_t* sy, size_t is, float* y, int64_t ldy, int n_rows) {
  constexpr size_t bb = T == GgmlType::Q8_0 ? 544 : T == GgmlType::Q4_0 ? 288 : 352;
  constexpr int offset = T == GgmlType::Q8_0 ? 128 : T == GgmlType::Q4_0 ? 8 : 16;
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  const int64_t nb = cols / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = panel + b * bb;
    if constexpr (C == 1) prefetch_block<bb>(p);
    __m512i w[8];
    if constexpr (T == GgmlType::Q8_0) {
      for (int s = 0; s < 8; ++s) w[s] = _mm512_loadu_si512(p + 64 * s);
    } else {
      unpack_nibbles(p, w);
      if constexpr (T == GgmlType::Q5_0) add_high<1>(p + 256, w);
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p + bb - 32)));
    for (int c = 0; c < C; ++c) {
      const int8_t* q = ((const BlockQ8_0*)((const char*)act + c * stride))[b].qs;
      __m512i isum = _mm512_set1_epi32(-offset * sy[c * is + b]);
      for (int s = 0; s < 8; ++s) isum = _mm512_dpbusd_epi32(isum, w[s], bcast4(q + 4 * s));
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, _mm512_set1_ps(dy[c * is + b])), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) store_rows(y + c * ldy, acc[c], n_rows);
}

// ---- Q4_K with Q8_K activations: per 32-value sub-block an integer dot times
// the 16 rows' 6-bit scales; the mins meet the activation's sub-block sums ----
template <int C>
void gemm_q4_k(int64_t cols, const uint8_t* panel, const void* act, size_t stride, float* y, int64_t ldy,
               int n_rows) {
  constexpr size_t bb = 2368;
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / kQKK; ++b) {
    const uint8_t* p = panel + b * bb;
    if constexpr (C == 1) prefetch_block<bb>(p);
    __m512i itot[C], mtot[C];
    for (int c = 0; c < C; ++c) itot[c] = mtot[c] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      __m512i w[8];
      unpack_nibbles(p + 256 * j, w);
      const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + 2048 + 16 * j)));
      const __m512i mn = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + 2176 + 16 * j)));
      for (int c = 0; c < C; ++c) {
        const BlockQ8_K& a = ((const BlockQ8_K*)((const char*)act + c * stride))[b];
        __m512i isum = _mm512_setzero_si512();
        for (int s = 0; s < 8; ++s) isum = _mm512_dpbusd_epi32(isum, w[s], bcast4(a.qs + 32 * j + 4 * s));
        itot[c] = _mm512_add_epi32(itot[c], _mm512_mullo_epi32(isum, sc));
        mtot[c] = _mm512_add_epi32(mtot[c], _mm512_mullo_epi32(mn, _mm512_set1_epi32(a.bsums[2 * j] + a.bsums[2 * j + 1])));
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p + 2304)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p + 2336)));
    for (int c = 0; c < C; ++c) {
      const __m512 da = _mm512_set1_ps(((const BlockQ8_K*)((const char*)act + c * stride))[b].d);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(itot[c]), _mm512_mul_ps(d, da), acc[c]);
      acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mtot[c]), _mm512_mul_ps(dmin, da), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) store_rows(y + c * ldy, acc[c], n_rows);
}

// ---- Q6_K with Q8_K activations: 16-value sub-blocks with int8 scales; the
// offset of 32 meets the activation's sums of 16 (bsums) ----
template <int C>
void gemm_q6_k(int64_t cols, const uint8_t* panel, const void* act, size_t stride, float* y, int64_t ldy,
               int n_rows) {
  constexpr size_t bb = 3360;
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / kQKK; ++b) {
    const uint8_t* p = panel + b * bb;
    if constexpr (C == 1) prefetch_block<bb>(p);
    __m512i itot[C];
    for (int c = 0; c < C; ++c) itot[c] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      __m512i w[8];
      unpack_nibbles(p + 384 * j, w);
      add_high<2>(p + 384 * j + 256, w);
      const __m512i s0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(p + 3072 + 32 * j)));
      const __m512i s1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(p + 3072 + 32 * j + 16)));
      for (int c = 0; c < C; ++c) {
        const BlockQ8_K& a = ((const BlockQ8_K*)((const char*)act + c * stride))[b];
        __m512i i0 = _mm512_set1_epi32(-32 * a.bsums[2 * j]);
        __m512i i1 = _mm512_set1_epi32(-32 * a.bsums[2 * j + 1]);
        for (int s = 0; s < 4; ++s) i0 = _mm512_dpbusd_epi32(i0, w[s], bcast4(a.qs + 32 * j + 4 * s));
        for (int s = 4; s < 8; ++s) i1 = _mm512_dpbusd_epi32(i1, w[s], bcast4(a.qs + 32 * j + 4 * s));
        itot[c] = _mm512_add_epi32(itot[c], _mm512_add_epi32(_mm512_mullo_epi32(i0, s0), _mm512_mullo_epi32(i1, s1)));
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p + 3328)));
    for (int c = 0; c < C; ++c) {
      const __m512 da = _mm512_set1_ps(((const BlockQ8_K*)((const char*)act + c * stride))[b].d);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(itot[c]), _mm512_mul_ps(d, da), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) store_rows(y + c * ldy, acc[c], n_rows);
}

template <GgmlType T, int C>
void gemm_tile(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
               const int32_t* sy, size_t is, float* y, int64_t ldy, int n_rows) {
  if constexpr (T == GgmlType::Q4_K) gemm_q4_k<C>(cols, panel, act, stride, y, ldy, n_rows);
  else if constexpr (T == GgmlType::Q6_K) gemm_q6_k<C>(cols, panel, act, stride, y, ldy, n_rows);
  else gemm_32<T, C>(cols, panel, act, stride, dy, sy, is, y, ldy, n_rows);
}

// nc tokens in tiles of up to 8 (4 for the K-quants: register budget)
template <GgmlType T>
void gemm_repacked(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                   const int32_t* sy, const float*, size_t is, int nc, float* y, int64_t ldy, int n_rows) {
  constexpr int kMax = (T == GgmlType::Q4_K || T == GgmlType::Q6_K) ? 4 : 8;
  for (int c0 = 0; c0 < nc; c0 += kMax) {
    const int n = std::min(kMax, nc - c0);
    const void* a = (const char*)act + c0 * stride;
    const float* d = dy ? dy + c0 * is : nullptr;
    const int32_t* s = sy ? sy + c0 * is : nullptr;
    float* yy = y + c0 * ldy;
    switch (n) {
#define SLIM_C(k)                                                                          \
  case k:                                                                                  \
    if constexpr (k <= kMax) gemm_tile<T, k>(cols, panel, a, stride, d, s, is, yy, ldy, n_rows); \
    break;
      SLIM_C(1) SLIM_C(2) SLIM_C(3) SLIM_C(4) SLIM_C(5) SLIM_C(6) SLIM_C(7) SLIM_C(8)
#undef SLIM_C
    }
  }
}

}  // namespace
}  // namespace avx512

void fill_repacked_avx512(KernelRow* rows) {
  using namespace avx512;
  rows[(size_t)GgmlType::Q8_0].gemm_repacked = gemm_repacked<GgmlType::Q8_0>;
  rows[(size_t)GgmlType::Q4_0].gemm_repacked = gemm_repacked<GgmlType::Q4_0>;
  rows[(size_t)GgmlType::Q5_0].gemm_repacked = gemm_repacked<GgmlType::Q5_0>;
  rows[(size_t)GgmlType::Q4_K].gemm_repacked = gemm_repacked<GgmlType::Q4_K>;
  rows[(size_t)GgmlType::Q6_K].gemm_repacked = gemm_repacked<GgmlType::Q6_K>;
}

}  // namespace slim
