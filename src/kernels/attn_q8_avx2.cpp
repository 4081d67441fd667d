// AVX2 attention loops over a Q8_0 KV cache (dispatch.h AttnKernels). Scores:
// the query's Q8_0 blocks against four keys at a time, the int8 products summed
// with maddubs + madd, each block's int32 lanes scaled by d_q * d_k in float.
// Mix: V dequantized straight into accumulators holding two blocks of the
// output row, so any head dim (a multiple of 32) stays in registers.
#include <immintrin.h>

#include "kernels/kernels_isa.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace avx2_q8 {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline const BlockQ8_0* row_at(const void* base, size_t stride, int64_t j) {
  return (const BlockQ8_0*)((const char*)base + j * stride);
}

// i32 lane k = sum of bytes 4k..4k+3 of u * s (u 0..127: no int16 saturation)
inline __m256i mul_sum_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// One block of one key: d_q * d_k * (lanes of the int dot), added to acc.
// aq = |q|; the key takes q's signs so the unsigned x signed product is q * k.
inline __m256 block_dot(__m256 acc, __m256i aq, __m256i qq, __m256 dq, const BlockQ8_0& kb) {
  const __m256i sk = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)kb.qs), qq);
  const __m256 dk = _mm256_cvtph_ps(_mm_set1_epi16((short)kb.d));
  return _mm256_fmadd_ps(_mm256_mul_ps(dq, dk), _mm256_cvtepi32_ps(mul_sum_u8s8(aq, sk)), acc);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// [sum of a0, sum of a1, sum of a2, sum of a3]
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
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
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i qq = _mm256_loadu_si256((const __m256i*)qb[b].qs);
      const __m256i aq = _mm256_sign_epi8(qq, qq);
      const __m256 dq = _mm256_set1_ps(h2f(qb[b].d));
      a0 = block_dot(a0, aq, qq, dq, k0[b]);
      a1 = block_dot(a1, aq, qq, dq, k1[b]);
      a2 = block_dot(a2, aq, qq, dq, k2[b]);
      a3 = block_dot(a3, aq, qq, dq, k3[b]);
    }
    _mm_storeu_ps(s + j, hsum4(a0, a1, a2, a3));
  }
  for (; j < n_keys; ++j) {
    const BlockQ8_0* kj = row_at(k, stride, j);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i qq = _mm256_loadu_si256((const __m256i*)qb[b].qs);
      acc = block_dot(acc, _mm256_sign_epi8(qq, qq), qq, _mm256_set1_ps(h2f(qb[b].d)), kj[b]);
    }
    s[j] = hsum(acc);
  }
}

// Blocks b0 .. b0+NB-1 of the output row over every key (j ascending), the
// accumulators in registers; w_j * d folded into one broadcast per block.
template <int NB>
void mix_pass(int64_t n_keys, int64_t b0, const float* w, const void* v, size_t stride, float* out) {
  __m256 acc[4 * NB];
  for (int c = 0; c < 4 * NB; ++c) acc[c] = _mm256_loadu_ps(out + b0 * kQK + 8 * c);
  for (int64_t j = 0; j < n_keys; ++j) {
    const BlockQ8_0* vb = row_at(v, stride, j) + b0;
    for (int b = 0; b < NB; ++b) {
      const __m256 sc = _mm256_set1_ps(w[j] * h2f(vb[b].d));
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(vb[b].qs + 8 * c)));
        acc[4 * b + c] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(q), acc[4 * b + c]);
      }
    }
  }
  for (int c = 0; c < 4 * NB; ++c) _mm256_storeu_ps(out + b0 * kQK + 8 * c, acc[c]);
}

void mix_q8_0(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out) {
  const int64_t nb = dim / kQK;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) mix_pass<2>(n_keys, b, w, v, stride, out);  // 8 of the 16 ymm registers
  if (b < nb) mix_pass<1>(n_keys, b, w, v, stride, out);
}

}  // namespace
}  // namespace avx2_q8

void fill_attn_q8_avx2(KernelTable& t) {
  t.attn_q8_0 = {avx2_q8::scores_q8_0, avx2_q8::mix_q8_0, t.attn_f32.softmax};
}

}  // namespace slim
