// Decode matrix x vector (one token) on AVX-512 with VNNI and VBMI, for the
// types that dominate 4-bit files: Q4_0, Q5_0 (32-value blocks, Q8_0
// activations) and Q4_K, Q6_K (256-value super-blocks, Q8_K activations).
//
// Decode is meant to be bound by memory bandwidth, but the per-block tiles
// (simd_body.inc) spend about a dozen instructions on every 32 weights, which
// at two cores is slower than the memory. These kernels work on 128 or 256
// values per step in 512-bit registers:
//  - four 32-value blocks are gathered straight from the GGUF layout (no
//    repacking, weights stay in the mapped file) with one two-source byte
//    permute, their four fp16 scales with one word permute;
//  - the activation is rearranged once per call into the order the weights
//    unpack to, with the offset correction (-offset * sum of the block's
//    quants) precomputed per lane, so it seeds the dpbusd accumulator for free;
//  - two weight rows share every activation load.
// The result equals the per-row vec_dot up to float summation order; the
// tests compare both against the scalar reference.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "kernels/kernels_isa.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace avx512 {
namespace {

constexpr int kRows = 2;

// Decode streams the weights once per token, and these kernels consume them
// faster than the out-of-order window alone keeps loads in flight (a 512-bit
// step is ~17 instructions for 72 bytes: the reorder buffer covers ~1.3 KiB,
// far below the bandwidth x latency product). Prefetching a fixed distance
// ahead keeps enough lines in flight; every 64 bytes of the step's span get one.
// 8 KiB measured best on the qwen2.5-0.5b shapes (4 and 16 KiB were slower).
constexpr size_t kPrefetchAhead = 8192;
template <size_t kSpan>
inline void prefetch_ahead(const uint8_t* p) {
  for (size_t o = 0; o < kSpan; o += 64) _mm_prefetch((const char*)p + kPrefetchAhead + o, _MM_HINT_T0);
}  // weight rows a step: they share the activation loads

// ---------------- 32-value blocks (Q4_0, Q5_0) with Q8_0 activations ----------------

// Four activation blocks in the order the weights unpack to: the low halves
// (values 0..15 of each block, pairing with low nibbles), then the high
// halves, the seed of the integer accumulator (lane 4b: -offset * sum of block
// b's quants) and the activation scale of each lane's block.
struct Act4 {
  int8_t lo[64];
  int8_t hi[64];
  int32_t seed[16];
  float d[16];
};

void prepare_act4(const BlockQ8_0* y, int64_t n_groups, int offset, Act4* out) {
  for (int64_t g = 0; g < n_groups; ++g) {
    Act4& a = out[g];
    std::memset(a.seed, 0, sizeof a.seed);
    for (int b = 0; b < 4; ++b) {
      const BlockQ8_0& blk = y[4 * g + b];
      std::memcpy(a.lo + 16 * b, blk.qs, 16);
      std::memcpy(a.hi + 16 * b, blk.qs + 16, 16);
      int sum = 0;
      for (int i = 0; i < kQK; ++i) sum += blk.qs[i];
      a.seed[4 * b] = -offset * sum;
      const float d = fp16_to_fp32(blk.d);
      for (int l = 0; l < 4; ++l) a.d[4 * b + l] = d;
    }
  }
}

// Where the pieces of four consecutive blocks sit in their bytes
// (Block = BlockQ4_0 or BlockQ5_0): byte i of the gathered quants is byte
// i % 16 of block i / 16's qs; word l of the gathered scales is block l / 4's d.
template <class Block>
struct Gather4 {
  __m512i qs_idx, d_idx, qh_idx;
  Gather4() {
    alignas(64) uint8_t q[64];
    alignas(64) uint16_t d[32] = {}, h[32] = {};
    for (int i = 0; i < 64; ++i) q[i] = (uint8_t)(sizeof(Block) * (i / 16) + offsetof(Block, qs) + i % 16);
    for (int l = 0; l < 16; ++l) d[l] = (uint16_t)(sizeof(Block) * (l / 4) / 2);
    if constexpr (sizeof(Block) == sizeof(BlockQ5_0)) {
      // words 0..3: bits 0..15 of each block's qh (values 0..15), words 4..7: bits 16..31
      for (int b = 0; b < 4; ++b) {
        h[b] = (uint16_t)((sizeof(Block) * b + offsetof(BlockQ5_0, qh)) / 2);
        h[4 + b] = (uint16_t)(h[b] + 1);
      }
    }
    qs_idx = _mm512_load_si512(q);
    d_idx = _mm512_load_si512(d);
    qh_idx = _mm512_load_si512(h);
  }
};

template <class Block>
const Gather4<Block>& gather4() {
  static const Gather4<Block> g;
  return g;
}

// Rows [0, n_rows) x the groups of four blocks; the blocks past the last full
// group are left to the per-block vec_dot by the caller.
template <class Block, int R>
void gemv_32_rows(int64_t n_groups, const uint8_t* w, size_t w_rs, const Act4* act, float* y) {
  constexpr bool kFive = sizeof(Block) == sizeof(BlockQ5_0);
  constexpr size_t kSpan = 4 * sizeof(Block);  // bytes of a group of four blocks
  const Gather4<Block>& gx = gather4<Block>();
  const __m512i qs_idx = gx.qs_idx, d_idx = gx.d_idx, qh_idx = gx.qh_idx;
  const __m512i m4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(0x10);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  // kLast: the group's bytes past the first 64 come through a masked load, so
  // the read never passes the row (masked loads are slow: only the last group)
  auto step = [&]<bool kLast>(int64_t g) {
    const Act4& a = act[g];
    const __m512i ylo = _mm512_loadu_si512(a.lo), yhi = _mm512_loadu_si512(a.hi);
    const __m512i seed = _mm512_loadu_si512(a.seed);
    const __m512 dy = _mm512_loadu_ps(a.d);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * w_rs + g * kSpan;
      prefetch_ahead<kSpan>(p);
      const __m512i b0 = _mm512_loadu_si512(p);
      const __m512i b1 = kLast ? _mm512_maskz_loadu_epi8((__mmask64)((1ull << (kSpan - 64)) - 1), p + 64)
                               : _mm512_loadu_si512(p + 64);
      const __m512i qs = _mm512_permutex2var_epi8(b0, qs_idx, b1);
      __m512i lo = _mm512_and_si512(qs, m4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), m4);
      if constexpr (kFive) {  // the fifth bits, one per value, as two 64-bit masks
        const __m128i h = _mm512_castsi512_si128(_mm512_permutex2var_epi16(b0, qh_idx, b1));
        lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(_cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(h)), sixteen));
        hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(_cvtu64_mask64((uint64_t)_mm_extract_epi64(h, 1)), sixteen));
      }
      __m512i isum = _mm512_dpbusd_epi32(seed, lo, ylo);
      isum = _mm512_dpbusd_epi32(isum, hi, yhi);
      const __m512 dx = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(b0, d_idx, b1)));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dx, dy), acc[r]);
    }
  };
  for (int64_t g = 0; g + 1 < n_groups; ++g) step.template operator()<false>(g);
  if (n_groups > 0) step.template operator()<true>(n_groups - 1);
  for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(acc[r]);
}

template <class Block, int kOffset>
void gemv_32(int64_t cols, int64_t n_rows, const void* w, size_t w_rs, const void* x, float* y, VecDotFn tail_dot) {
  const int64_t nb = cols / kQK, n_groups = nb / 4;
  thread_local std::vector<Act4> act;
  if ((int64_t)act.size() < n_groups) act.resize(n_groups);
  prepare_act4((const BlockQ8_0*)x, n_groups, kOffset, act.data());
  const uint8_t* wb = (const uint8_t*)w;
  int64_t r = 0;
  for (; r + kRows <= n_rows; r += kRows) gemv_32_rows<Block, kRows>(n_groups, wb + r * w_rs, w_rs, act.data(), y + r);
  for (; r < n_rows; ++r) gemv_32_rows<Block, 1>(n_groups, wb + r * w_rs, w_rs, act.data(), y + r);
  if (nb % 4) {  // the last one to three blocks of every row
    const int64_t done = 4 * n_groups;
    const BlockQ8_0* xt = (const BlockQ8_0*)x + done;
    for (r = 0; r < n_rows; ++r) {
      float t;
      tail_dot((nb - done) * kQK, &t, wb + r * w_rs + done * sizeof(Block), xt);
      y[r] += t;
    }
  }
}

// ---------------- Q4_K with Q8_K activations ----------------

// One super-block of activations in Q4_K's unpack order: the low nibbles of
// 64 quant bytes are values [0, 32) and [64, 96) of a 128-value half, the high
// nibbles [32, 64) and [96, 128). msum: lanes 8..15 hold the sums of the
// eight 32-value sub-blocks (they meet the mins), lanes 0..7 zero.
struct ActQ4K {
  int8_t q[256];
  int32_t msum[16];
  float d;
};

void prepare_q4_k(const BlockQ8_K* y, int64_t nsb, ActQ4K* out) {
  static constexpr int kSrc[8] = {0, 64, 32, 96, 128, 192, 160, 224};
  for (int64_t i = 0; i < nsb; ++i) {
    ActQ4K& a = out[i];
    for (int k = 0; k < 8; ++k) std::memcpy(a.q + 32 * k, y[i].qs + kSrc[k], 32);
    for (int j = 0; j < 8; ++j) {
      a.msum[j] = 0;
      a.msum[8 + j] = y[i].bsums[2 * j] + y[i].bsums[2 * j + 1];
    }
    a.d = y[i].d;
  }
}

// 16-lane int32 vector of a super-block's 8 scales (lanes 0..7) and 8 mins
// (lanes 8..15) from the 12 packed bytes: 6 bits each; scales/mins 4..7 keep
// their low 4 bits in bytes 8..11 and their top 2 bits in the top of bytes 0..7.
inline __m512i q4_k_scales_mins(const uint8_t* s) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t six = 0x3f3f3f3f, low4 = 0x0f0f0f0f, two = 0x03030303;
  const uint32_t sc_lo = u[0] & six, mn_lo = u[1] & six;
  const uint32_t sc_hi = (u[2] & low4) | (((u[0] >> 6) & two) << 4);
  const uint32_t mn_hi = ((u[2] >> 4) & low4) | (((u[1] >> 6) & two) << 4);
  return _mm512_cvtepu8_epi32(_mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi));
}

template <int R>
void gemv_q4_k_rows(int64_t nsb, const uint8_t* w, size_t w_rs, const ActQ4K* act, float* y) {
  // lane l of the k-th dot product belongs to sub-block kSub[k][l / 8]
  const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
  const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(1));
  const __m512i idx2 = _mm512_add_epi32(idx0, _mm512_set1_epi32(4));
  const __m512i idx3 = _mm512_add_epi32(idx0, _mm512_set1_epi32(5));
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R], macc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps(), macc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const ActQ4K& a = act[i];
    const __m512i y0 = _mm512_loadu_si512(a.q), y1 = _mm512_loadu_si512(a.q + 64);
    const __m512i y2 = _mm512_loadu_si512(a.q + 128), y3 = _mm512_loadu_si512(a.q + 192);
    const __m512i ms = _mm512_loadu_si512(a.msum);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const BlockQ4_K& b = ((const BlockQ4_K*)(w + r * w_rs))[i];
      prefetch_ahead<sizeof(BlockQ4_K)>((const uint8_t*)&b);
      const __m512i sm = q4_k_scales_mins(b.scales);
      const __m512i q0 = _mm512_loadu_si512(b.qs), q1 = _mm512_loadu_si512(b.qs + 64);
      const __m512i z = _mm512_setzero_si512();
      const __m512i d0 = _mm512_dpbusd_epi32(z, _mm512_and_si512(q0, m4), y0);
      const __m512i d1 = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4), y1);
      const __m512i d2 = _mm512_dpbusd_epi32(z, _mm512_and_si512(q1, m4), y2);
      const __m512i d3 = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4), y3);
      __m512i isum = _mm512_mullo_epi32(d0, _mm512_permutexvar_epi32(idx0, sm));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d1, _mm512_permutexvar_epi32(idx1, sm)));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d2, _mm512_permutexvar_epi32(idx2, sm)));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d3, _mm512_permutexvar_epi32(idx3, sm)));
      const __m512i mins = _mm512_mullo_epi32(sm, ms);  // lanes 0..7 meet zeros
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(fp16_to_fp32(b.d) * a.d), acc[r]);
      macc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_set1_ps(fp16_to_fp32(b.dmin) * a.d), macc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(_mm512_sub_ps(acc[r], macc[r]));
}

void gemv_q4_k(int64_t cols, int64_t n_rows, const void* w, size_t w_rs, const void* x, float* y) {
  const int64_t nsb = cols / kQKK;
  thread_local std::vector<ActQ4K> act;
  if ((int64_t)act.size() < nsb) act.resize(nsb);
  prepare_q4_k((const BlockQ8_K*)x, nsb, act.data());
  const uint8_t* wb = (const uint8_t*)w;
  int64_t r = 0;
  for (; r + kRows <= n_rows; r += kRows) gemv_q4_k_rows<kRows>(nsb, wb + r * w_rs, w_rs, act.data(), y + r);
  for (; r < n_rows; ++r) gemv_q4_k_rows<1>(nsb, wb + r * w_rs, w_rs, act.data(), y + r);
}

// ---------------- Q6_K with Q8_K activations ----------------

// Q6_K unpacks in value order: per 128-value half h, 64 low-nibble bytes ql
// give values [0, 64) (low nibbles) and [64, 128) (high nibbles); the top two
// bits come from the same 32 qh bytes at shifts 0, 2 (first 64) and 4, 6. The
// activations need no rearranging; the offset of 32 meets the bsums.
template <int R>
void gemv_q6_k_rows(int64_t nsb, const uint8_t* w, size_t w_rs, const BlockQ8_K* x, float* y) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  // per 16-bit word: the first 32 bytes take qh's bits 0-1 / 4-5, the last 32 bits 2-3 / 6-7
  const __m512i shl_a = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
  const __m512i shr_b = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(0), _mm512_set1_epi16(2));
  __m512i idx[4];  // lane l of dot product k belongs to sub-block 4k + l / 4
  for (int k = 0; k < 4; ++k)
    idx[k] = _mm512_add_epi32(_mm512_set1_epi32(4 * k), _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2));
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const BlockQ8_K& a = x[i];
    __m512i yq[4];
    for (int k = 0; k < 4; ++k) yq[k] = _mm512_loadu_si512(a.qs + 64 * k);
    const __m512i bs = _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i*)a.bsums)), 5);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const BlockQ6_K& b = ((const BlockQ6_K*)(w + r * w_rs))[i];
      prefetch_ahead<sizeof(BlockQ6_K)>((const uint8_t*)&b);
      const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)b.scales));
      __m512i isum = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_mullo_epi32(sc, bs));
      for (int h = 0; h < 2; ++h) {
        const __m512i l = _mm512_loadu_si512(b.ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(b.qh + 32 * h)));
        const __m512i va = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl_a), m30));
        const __m512i vb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                           _mm512_and_si512(_mm512_srlv_epi16(qh, shr_b), m30));
        const __m512i da = _mm512_dpbusd_epi32(_mm512_setzero_si512(), va, yq[2 * h]);
        const __m512i db = _mm512_dpbusd_epi32(_mm512_setzero_si512(), vb, yq[2 * h + 1]);
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(da, _mm512_permutexvar_epi32(idx[2 * h], sc)));
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(db, _mm512_permutexvar_epi32(idx[2 * h + 1], sc)));
      }
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(fp16_to_fp32(b.d) * a.d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(acc[r]);
}

void gemv_q6_k(int64_t cols, int64_t n_rows, const void* w, size_t w_rs, const void* x, float* y) {
  const int64_t nsb = cols / kQKK;
  const uint8_t* wb = (const uint8_t*)w;
  int64_t r = 0;
  for (; r + kRows <= n_rows; r += kRows) gemv_q6_k_rows<kRows>(nsb, wb + r * w_rs, w_rs, (const BlockQ8_K*)x, y + r);
  for (; r < n_rows; ++r) gemv_q6_k_rows<1>(nsb, wb + r * w_rs, w_rs, (const BlockQ8_K*)x, y + r);
}

}  // namespace
}  // namespace avx512

void fill_gemv_avx512(KernelRow* rows) {
  using namespace avx512;
  // the 32-value kernels hand a row's last blocks (fewer than four) to the row's vec_dot
  static VecDotFn q4_0_dot, q5_0_dot;
  q4_0_dot = rows[(size_t)GgmlType::Q4_0].vec_dot;
  q5_0_dot = rows[(size_t)GgmlType::Q5_0].vec_dot;
  rows[(size_t)GgmlType::Q4_0].gemv = [](int64_t c, int64_t n, const void* w, size_t rs, const void* x, float* y) {
    gemv_32<BlockQ4_0, 8>(c, n, w, rs, x, y, q4_0_dot);
  };
  rows[(size_t)GgmlType::Q5_0].gemv = [](int64_t c, int64_t n, const void* w, size_t rs, const void* x, float* y) {
    gemv_32<BlockQ5_0, 16>(c, n, w, rs, x, y, q5_0_dot);
  };
  rows[(size_t)GgmlType::Q4_K].gemv = gemv_q4_k;
  rows[(size_t)GgmlType::Q6_K].gemv = gemv_q6_k;
}

}  // namespace slim
