// AVX-512 attention loops over a Q8_0 KV cache (dispatch.h AttnKernels).
// Scores: two keys share a 512-bit register (one block of each), the int8 dot
// is VNNI dpbusd of |q| against the key with q's signs, each block's int32
// lanes scaled by d_q * d_k in float; four keys a step. Mix: V dequantized
// straight into accumulators holding up to eight blocks of the output row.
// GCC 12 reports -Wuninitialized inside its own AVX-512 headers (the
// _mm*_undefined_* operands of the casts, a known false positive); silenced
// for this file only, before the header is read (as kernels_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/kernels_isa.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace avx512_q8 {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline const BlockQ8_0* row_at(const void* base, size_t stride, int64_t j) {
  return (const BlockQ8_0*)((const char*)base + j * stride);
}

// One block of two keys x, y (lanes 0..7: x, 8..15: y), added to acc. The
// query block is in both halves: aq = |q|, neg = its negative bytes, whose
// signs the keys take so that dpbusd's unsigned x signed product is q * k.
inline __m512 pair_dot(__m512 acc, __m512i aq, __mmask64 neg, __m512 dq, const BlockQ8_0& x, const BlockQ8_0& y) {
  __m512i kk = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)x.qs)),
                                  _mm256_loadu_si256((const __m256i*)y.qs), 1);
  kk = _mm512_mask_sub_epi8(kk, neg, _mm512_setzero_si512(), kk);
  const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aq, kk);
  const __m256i d2 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)x.d)),
                                             _mm_set1_epi16((short)y.d), 1);
  return _mm512_fmadd_ps(_mm512_mul_ps(dq, _mm512_cvtph_ps(d2)), _mm512_cvtepi32_ps(p), acc);
}

// [sum of a0, sum of a1, sum of a2, sum of a3]
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void scores_q8_0(int64_t n_keys, int64_t dim, const void* q, const void* k, size_t stride, float* s) {
  const BlockQ8_0* qb = (const BlockQ8_0*)q;
  const int64_t nb = dim / kQK;
  int64_t j = 0;
  for (; j + 4 <= n_keys; j += 4) {
    const BlockQ8_0* k0 = row_at(k, stride, j);
    const BlockQ8_0* k1 = row_at(k, stride, j + 1);
    const BlockQ8_0* k2 = row_at(k, stride, j + 2);
    const BlockQ8_0* k3 = row_at(k, stride, j + 3);
    __m512 a01 = _mm512_setzero_ps(), a23 = a01;
    for (int64_t b = 0; b < nb; ++b) {
      const __m512i q2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)qb[b].qs));
      const __m512i aq = _mm512_abs_epi8(q2);
      const __mmask64 neg = _mm512_movepi8_mask(q2);
      const __m512 dq = _mm512_set1_ps(h2f(qb[b].d));
      a01 = pair_dot(a01, aq, neg, dq, k0[b], k1[b]);
      a23 = pair_dot(a23, aq, neg, dq, k2[b], k3[b]);
    }
    _mm_storeu_ps(s + j, hsum4(_mm512_castps512_ps256(a01), _mm512_extractf32x8_ps(a01, 1),
                               _mm512_castps512_ps256(a23), _mm512_extractf32x8_ps(a23, 1)));
  }
  for (; j < n_keys; ++j) {  // the last 0..3 keys one at a time, 256 bits wide
    const BlockQ8_0* kj = row_at(k, stride, j);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i qq = _mm256_loadu_si256((const __m256i*)qb[b].qs);
      const __m256i sk = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)kj[b].qs), qq);
      const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qq), sk);
      const __m256 d = _mm256_set1_ps(h2f(qb[b].d) * h2f(kj[b].d));
      acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    s[j] = hsum(acc);
  }
}

// Blocks b0 .. b0+NB-1 of the output row over every key (j ascending), the
// accumulators in registers; w_j * d folded into one broadcast per block.
template <int NB>
void mix_pass(int64_t n_keys, int64_t b0, const float* w, const void* v, size_t stride, float* out) {
  __m512 acc[2 * NB];
  for (int c = 0; c < 2 * NB; ++c) acc[c] = _mm512_loadu_ps(out + b0 * kQK + 16 * c);
  for (int64_t j = 0; j < n_keys; ++j) {
    const BlockQ8_0* vb = row_at(v, stride, j) + b0;
    for (int b = 0; b < NB; ++b) {
      const __m512 sc = _mm512_set1_ps(w[j] * h2f(vb[b].d));
      for (int c = 0; c < 2; ++c) {
        const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(vb[b].qs + 16 * c)));
        acc[2 * b + c] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(q), acc[2 * b + c]);
      }
    }
  }
  for (int c = 0; c < 2 * NB; ++c) _mm512_storeu_ps(out + b0 * kQK + 16 * c, acc[c]);
}

void mix_q8_0(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out) {
  const int64_t nb = dim / kQK;
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) mix_pass<8>(n_keys, b, w, v, stride, out);  // 16 of the 32 zmm registers
  if (b + 4 <= nb) mix_pass<4>(n_keys, b, w, v, stride, out), b += 4;
  if (b + 2 <= nb) mix_pass<2>(n_keys, b, w, v, stride, out), b += 2;
  if (b < nb) mix_pass<1>(n_keys, b, w, v, stride, out);
}

}  // namespace
}  // namespace avx512_q8

void fill_attn_q8_avx512(KernelTable& t) {
  t.attn_q8_0 = {avx512_q8::scores_q8_0, avx512_q8::mix_q8_0, t.attn_f32.softmax};
}

}  // namespace slim
