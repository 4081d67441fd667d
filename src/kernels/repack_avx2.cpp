// Products over row-interleaved panels (repack.h) on plain AVX2, for one
// token (decode) and token tiles (prefill): the AVX-512 kernels' arithmetic
// in 256-bit halves. A 64-byte step vector is two ymm: rows 0-7 and rows
// 8-15, lane l of a half holding its row's four values, so a broadcast
// activation word still meets 8 rows in one maddubs with no horizontal sum.
//
// maddubs adds two u8 x s8 products into a saturating int16, the one hazard
// here. Each type keeps its int16 partial sums below 2^15 before madd widens
// them: nibbles (u <= 15) for all eight steps of a group, Q5_0 (u <= 31) for
// four, Q6_K (u <= 63) for two. Q8_0's u = q + 128 could reach 255 x 127 x 2,
// so it multiplies |q| by the activation carrying q's sign instead (Q8_0
// activations stay within +-127: no -128 for the sign to fail to negate).
// Also the packing of those panels at load time (the twin of repack_panel).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/kernels_isa.h"
#include "kernels/prefetch.h"
#include "kernels/repack.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace avx2 {
namespace {

inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128((const __m128i*)p); }

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// 8 fp16 row scales of half h of a 16-row vector
inline __m256 scales_f32(const uint8_t* p, int h) { return _mm256_cvtph_ps(load128(p + 16 * h)); }

inline __m256i widen_sum(__m256i s16) { return _mm256_madd_epi16(s16, _mm256_set1_epi16(1)); }

// The 8 rows' int8 scales of half h (bytes 8h..8h+7 of sc) as int16 pairs
// (s, s) per lane: madd with a lane's two int16 partial sums then yields
// s * (their sum), scaling and widening in one step.
inline __m256i dup_scales(__m128i sc, int h) {
  const __m128i lo = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m128i idx = h ? _mm_add_epi8(lo, _mm_set1_epi8(8)) : lo;
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, idx));
}

// The 8 rows' scales of two sub-blocks as int16 pairs (a, b) per lane: madd
// with a broadcast pair of activation sums gives a * sum_a + b * sum_b.
inline __m256i pair_scales(__m128i a, __m128i b, int h) {
  return _mm256_cvtepi8_epi16(h ? _mm_unpackhi_epi8(a, b) : _mm_unpacklo_epi8(a, b));
}

inline __m256i bcast_pair(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// half of a nibble vector: step k in the low nibbles, step k + 4 in the high
inline void nibbles(const uint8_t* p, __m256i& lo, __m256i& hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i v = load256(p);
  lo = _mm256_and_si256(v, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
}

// bit field f of kBits-bit fields (repack.h) moved to bit 4: the 16-bit
// shift's spill from the neighbouring byte lands outside the mask
template <int kBits>
inline __m256i high_field(__m256i h, int f) {
  const __m256i mask = _mm256_set1_epi8((char)(((1 << kBits) - 1) << 4));
  const int shift = 4 - kBits * f;
  const __m256i at4 = shift >= 0 ? _mm256_slli_epi16(h, shift) : _mm256_srli_epi16(h, -shift);
  return _mm256_and_si256(at4, mask);
}

inline void store_rows(float* y, __m256 v, int n) {
  if (n >= 8) return _mm256_storeu_ps(y, v);
  if (n <= 0) return;
  const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  _mm256_maskstore_ps(y, live, v);
}

template <class B>
inline const B& act_block(const void* act, size_t stride, int c, int64_t b) {
  return ((const B*)((const char*)act + c * stride))[b];
}

// ---- 32-value blocks with Q8_0 activations: Q8_0, Q4_0, Q5_0 ----
template <GgmlType T>
constexpr size_t kBlock32 = T == GgmlType::Q8_0 ? 544 : T == GgmlType::Q4_0 ? 288 : 352;

// Q8_0, half h of block column p: the integer dots of C tokens
template <int C>
inline void dots_q8_0(const uint8_t* p, int h, const void* act, size_t stride, int64_t b, __m256i* isum) {
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
  for (int s = 0; s < 8; ++s) {
    const __m256i q = _mm256_xor_si256(load256(p + 64 * s + 32 * h), flip);
    const __m256i mag = _mm256_abs_epi8(q);
    for (int c = 0; c < C; ++c) {
      const __m256i a = _mm256_sign_epi8(bcast4(act_block<BlockQ8_0>(act, stride, c, b).qs + 4 * s), q);
      isum[c] = _mm256_add_epi32(isum[c], widen_sum(_mm256_maddubs_epi16(mag, a)));
    }
  }
}

// Q4_0 / Q5_0, half h: the integer dots of the unsigned values u (the offset
// is the caller's); Q5_0's sums are widened every four steps
template <GgmlType T, int C>
inline void dots_nibbles(const uint8_t* p, int h, const void* act, size_t stride, int64_t b, __m256i* isum) {
  constexpr bool kFive = T == GgmlType::Q5_0;
  __m256i s16[C];
  for (int c = 0; c < C; ++c) isum[c] = s16[c] = _mm256_setzero_si256();
  const __m256i top = kFive ? load256(p + 256 + 32 * h) : _mm256_setzero_si256();
  for (int k = 0; k < 4; ++k) {
    __m256i lo, hi;
    nibbles(p + 64 * k + 32 * h, lo, hi);
    if constexpr (kFive) {
      lo = _mm256_or_si256(lo, high_field<1>(top, k));
      hi = _mm256_or_si256(hi, high_field<1>(top, k + 4));
    }
    for (int c = 0; c < C; ++c) {
      const int8_t* q = act_block<BlockQ8_0>(act, stride, c, b).qs;
      s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(lo, bcast4(q + 4 * k)));
      s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(hi, bcast4(q + 16 + 4 * k)));
    }
    if (kFive ? k % 2 == 1 : k == 3)
      for (int c = 0; c < C; ++c) isum[c] = _mm256_add_epi32(isum[c], widen_sum(s16[c])), s16[c] = _mm256_setzero_si256();
  }
}

template <GgmlType T, int C>
void gemm_32(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
             const int32_t* sy, size_t is, float* y, int64_t ldy, int n_rows) {
  constexpr size_t bb = kBlock32<T>;
  constexpr int offset = T == GgmlType::Q8_0 ? 0 : T == GgmlType::Q4_0 ? 8 : 16;  // Q8_0's is undone by the xor
  __m256 acc[2][C];
  for (int c = 0; c < C; ++c) acc[0][c] = acc[1][c] = _mm256_setzero_ps();
  const int64_t nb = cols / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = panel + b * bb;
    if constexpr (C == 1) prefetch_part<bb>(p);
    for (int h = 0; h < 2; ++h) {
      __m256i isum[C];
      if constexpr (T == GgmlType::Q8_0) dots_q8_0<C>(p, h, act, stride, b, isum);
      else dots_nibbles<T, C>(p, h, act, stride, b, isum);
      const __m256 d = scales_f32(p + bb - 32, h);
      for (int c = 0; c < C; ++c) {
        if constexpr (offset != 0) isum[c] = _mm256_add_epi32(isum[c], _mm256_set1_epi32(-offset * sy[c * is + b]));
        acc[h][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(d, _mm256_set1_ps(dy[c * is + b])),
                                    acc[h][c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    store_rows(y + c * ldy, acc[0][c], n_rows);
    store_rows(y + c * ldy + 8, acc[1][c], n_rows - 8);
  }
}

// ---- Q4_K with Q8_K activations: per 32-value sub-block the int16 sums of
// all eight steps meet the 8 rows' 6-bit scales in one madd; the mins meet
// the activation's sub-block sums (bsums, pairs of 16) likewise ----
template <int C>
inline void block_q4_k(const uint8_t* p, int h, const void* act, size_t stride, int64_t b, __m256* acc) {
  constexpr size_t bb = 2368;
  __m256i itot[C], mtot[C];
  for (int c = 0; c < C; ++c) itot[c] = mtot[c] = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    if constexpr (C == 1) prefetch_part<bb, 16>(p, 8 * h + j);
    const __m256i sc = dup_scales(load128(p + 2048 + 16 * j), h);
    const __m256i mn = dup_scales(load128(p + 2176 + 16 * j), h);
    __m256i s16[C];
    for (int c = 0; c < C; ++c) s16[c] = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      __m256i lo, hi;
      nibbles(p + 256 * j + 64 * k + 32 * h, lo, hi);
      for (int c = 0; c < C; ++c) {
        const int8_t* q = act_block<BlockQ8_K>(act, stride, c, b).qs + 32 * j;
        s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(lo, bcast4(q + 4 * k)));
        s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(hi, bcast4(q + 16 + 4 * k)));
      }
    }
    for (int c = 0; c < C; ++c) {
      itot[c] = _mm256_add_epi32(itot[c], _mm256_madd_epi16(s16[c], sc));
      const __m256i bs = bcast_pair(act_block<BlockQ8_K>(act, stride, c, b).bsums + 2 * j);
      mtot[c] = _mm256_add_epi32(mtot[c], _mm256_madd_epi16(mn, bs));
    }
  }
  const __m256 d = scales_f32(p + 2304, h), dmin = scales_f32(p + 2336, h);
  for (int c = 0; c < C; ++c) {
    const __m256 da = _mm256_set1_ps(act_block<BlockQ8_K>(act, stride, c, b).d);
    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(itot[c]), _mm256_mul_ps(d, da), acc[c]);
    acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mtot[c]), _mm256_mul_ps(dmin, da), acc[c]);
  }
}

// ---- Q6_K with Q8_K activations: 16-value sub-blocks with int8 scales, so
// two steps a madd; the offset of 32 meets the activation's sums of 16 ----
template <int C>
inline void block_q6_k(const uint8_t* p, int h, const void* act, size_t stride, int64_t b, __m256* acc) {
  constexpr size_t bb = 3360;
  __m256i itot[C];
  for (int c = 0; c < C; ++c) itot[c] = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    if constexpr (C == 1) prefetch_part<bb, 16>(p, 8 * h + j);
    const uint8_t* g = p + 384 * j;
    const __m128i raw0 = load128(p + 3072 + 32 * j), raw1 = load128(p + 3072 + 32 * j + 16);
    const __m256i sc0 = dup_scales(raw0, h), sc1 = dup_scales(raw1, h);  // steps 0-3, 4-7
    const __m256i top0 = load256(g + 256 + 32 * h), top1 = load256(g + 320 + 32 * h);
    for (int k0 = 0; k0 < 4; k0 += 2) {
      __m256i s0[C], s1[C];
      for (int c = 0; c < C; ++c) s0[c] = s1[c] = _mm256_setzero_si256();
      for (int k = k0; k < k0 + 2; ++k) {
        __m256i lo, hi;
        nibbles(g + 64 * k + 32 * h, lo, hi);
        lo = _mm256_or_si256(lo, high_field<2>(top0, k));
        hi = _mm256_or_si256(hi, high_field<2>(top1, k));
        for (int c = 0; c < C; ++c) {
          const int8_t* q = act_block<BlockQ8_K>(act, stride, c, b).qs + 32 * j;
          s0[c] = _mm256_add_epi16(s0[c], _mm256_maddubs_epi16(lo, bcast4(q + 4 * k)));
          s1[c] = _mm256_add_epi16(s1[c], _mm256_maddubs_epi16(hi, bcast4(q + 16 + 4 * k)));
        }
      }
      for (int c = 0; c < C; ++c)
        itot[c] = _mm256_add_epi32(itot[c], _mm256_add_epi32(_mm256_madd_epi16(s0[c], sc0), _mm256_madd_epi16(s1[c], sc1)));
    }
    const __m256i pair = pair_scales(raw0, raw1, h);
    for (int c = 0; c < C; ++c) {
      const __m256i bs = bcast_pair(act_block<BlockQ8_K>(act, stride, c, b).bsums + 2 * j);
      itot[c] = _mm256_sub_epi32(itot[c], _mm256_slli_epi32(_mm256_madd_epi16(pair, bs), 5));
    }
  }
  const __m256 d = scales_f32(p + 3328, h);
  for (int c = 0; c < C; ++c) {
    const __m256 da = _mm256_set1_ps(act_block<BlockQ8_K>(act, stride, c, b).d);
    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(itot[c]), _mm256_mul_ps(d, da), acc[c]);
  }
}

template <GgmlType T, int C>
void gemm_k(int64_t cols, const uint8_t* panel, const void* act, size_t stride, float* y, int64_t ldy, int n_rows) {
  constexpr size_t bb = T == GgmlType::Q4_K ? 2368 : 3360;
  __m256 acc[2][C];
  for (int c = 0; c < C; ++c) acc[0][c] = acc[1][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < cols / kQKK; ++b)
    for (int h = 0; h < 2; ++h) {
      if constexpr (T == GgmlType::Q4_K) block_q4_k<C>(panel + b * bb, h, act, stride, b, acc[h]);
      else block_q6_k<C>(panel + b * bb, h, act, stride, b, acc[h]);
    }
  for (int c = 0; c < C; ++c) {
    store_rows(y + c * ldy, acc[0][c], n_rows);
    store_rows(y + c * ldy + 8, acc[1][c], n_rows - 8);
  }
}

template <GgmlType T, int C>
void gemm_tile(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
               const int32_t* sy, size_t is, float* y, int64_t ldy, int n_rows) {
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q6_K) gemm_k<T, C>(cols, panel, act, stride, y, ldy, n_rows);
  else gemm_32<T, C>(cols, panel, act, stride, dy, sy, is, y, ldy, n_rows);
}

// nc tokens in tiles of up to 4: two accumulators a token (rows 0-7, 8-15)
// and a running sum each leave room in the 16 ymm registers for the weights
template <GgmlType T>
void gemm_repacked(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                   const int32_t* sy, const float*, size_t is, int nc, float* y, int64_t ldy, int n_rows) {
  constexpr int kMax = 4;
  for (int c0 = 0; c0 < nc; c0 += kMax) {
    const int n = std::min(kMax, nc - c0);
    const void* a = (const char*)act + c0 * stride;
    const float* d = dy ? dy + c0 * is : nullptr;
    const int32_t* s = sy ? sy + c0 * is : nullptr;
    float* yy = y + c0 * ldy;
    switch (n) {
      case 1: gemm_tile<T, 1>(cols, panel, a, stride, d, s, is, yy, ldy, n_rows); break;
      case 2: gemm_tile<T, 2>(cols, panel, a, stride, d, s, is, yy, ldy, n_rows); break;
      case 3: gemm_tile<T, 3>(cols, panel, a, stride, d, s, is, yy, ldy, n_rows); break;
      default: gemm_tile<T, 4>(cols, panel, a, stride, d, s, is, yy, ldy, n_rows); break;
    }
  }
}

// ---- Packing (load time): GGUF rows to panels, byte for byte repack_panel ----
// Half h of a panel vector is dword k of rows 8h..8h+7: a transpose of
// dwords, done on 16-byte runs loaded whole (rows g and g + 4 of the half in
// one register, a 4 x 4 transpose inside each 128-bit lane). The bit work
// then runs on 8 rows at once. Rows past n_rows load the last real row and
// are masked to zero, the bytes the layout gives missing rows. The per-row
// fields (fp16 scales, Q4_K's and Q6_K's sub-block scales) are a few bytes a
// row and block and are copied one by one.

struct PanelRows {
  size_t offset[kRepackRows];  // row l's byte offset from row 0 (the last real row's past n_rows)
  __m256i live[2];             // per half: all ones in the dwords of rows that exist
  int n_rows;
};

PanelRows panel_rows(size_t row_bytes, int n_rows) {
  PanelRows r;
  for (int l = 0; l < kRepackRows; ++l) r.offset[l] = std::min(l, n_rows - 1) * row_bytes;
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int h = 0; h < 2; ++h) r.live[h] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_rows - 8 * h), iota);
  r.n_rows = n_rows;
  return r;
}

// v[k], dword l: dword k of the 16 bytes at p (an address in row 0) in row 8h + l
inline void row_dwords4(const PanelRows& r, const uint8_t* p, int h, __m256i* v) {
  __m256i z[4];
  for (int g = 0; g < 4; ++g)
    z[g] = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(p + r.offset[8 * h + g])),
                                   load128(p + r.offset[8 * h + g + 4]), 1);
  const __m256i t0 = _mm256_unpacklo_epi32(z[0], z[1]), t1 = _mm256_unpackhi_epi32(z[0], z[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(z[2], z[3]), t3 = _mm256_unpackhi_epi32(z[2], z[3]);
  v[0] = _mm256_and_si256(_mm256_unpacklo_epi64(t0, t2), r.live[h]);
  v[1] = _mm256_and_si256(_mm256_unpackhi_epi64(t0, t2), r.live[h]);
  v[2] = _mm256_and_si256(_mm256_unpacklo_epi64(t1, t3), r.live[h]);
  v[3] = _mm256_and_si256(_mm256_unpackhi_epi64(t1, t3), r.live[h]);
}

// the same for the 32 bytes at p: dwords 0..7
inline void row_dwords8(const PanelRows& r, const uint8_t* p, int h, __m256i* v) {
  row_dwords4(r, p, h, v);
  row_dwords4(r, p + 16, h, v + 4);
}

inline void store_half(uint8_t* out, int h, __m256i v) { _mm256_storeu_si256((__m256i*)(out + 32 * h), v); }

// bits of x where mask is set, of y elsewhere
inline __m256i select_bits(__m256i mask, __m256i x, __m256i y) {
  return _mm256_or_si256(_mm256_and_si256(mask, x), _mm256_andnot_si256(mask, y));
}

// The 16 rows' fp16 at byte `at` of their blocks; zeros for missing rows.
void put_fp16(const uint8_t* first, const PanelRows& r, size_t at, uint8_t* out) {
  std::memset(out, 0, 32);
  for (int l = 0; l < r.n_rows; ++l) std::memcpy(out + 2 * l, first + r.offset[l] + at, 2);
}

// 32 bytes of 4-bit quants at p per row, value i of the first group in the
// low nibble of byte i and of the second group in its high nibble (Q4_K's
// qs, Q6_K's ql): both groups' nibble vectors. Byte j of a vector pairs
// value j with value 16 + j, i.e. byte j with byte 16 + j of the run.
void put_nibble_pair(const PanelRows& r, const uint8_t* p, uint8_t* first, uint8_t* second) {
  const __m256i lo = _mm256_set1_epi8(0x0F);
  for (int h = 0; h < 2; ++h) {
    __m256i q[8];
    row_dwords8(r, p, h, q);
    for (int k = 0; k < 4; ++k) {
      store_half(first + 64 * k, h, select_bits(lo, q[k], _mm256_slli_epi16(q[k + 4], 4)));
      store_half(second + 64 * k, h, select_bits(lo, _mm256_srli_epi16(q[k], 4), q[k + 4]));
    }
  }
}

// Q5_0's qh of 8 rows (bit i: the fifth bit of value i) to the half of its
// high vector whose byte j holds bit 4s + j at bit s: the nibble of bits
// 4s..4s+3 times 0x00204081 puts its bit j at bit 8j (the four shifted
// copies do not overlap), the mask keeps those.
__m256i q5_high(__m256i qh) {
  const __m256i spread = _mm256_set1_epi32(0x00204081), ones = _mm256_set1_epi32(0x01010101);
  const __m256i m4 = _mm256_set1_epi32(0xF);
  __m256i out = _mm256_setzero_si256();
  for (int s = 0; s < 8; ++s) {
    const __m256i n = _mm256_and_si256(_mm256_srli_epi32(qh, 4 * s), m4);
    out = _mm256_or_si256(out, _mm256_slli_epi32(_mm256_and_si256(_mm256_mullo_epi32(n, spread), ones), s));
  }
  return out;
}

template <GgmlType T>
void repack_32(const uint8_t* rows, const PanelRows& r, int64_t nb, uint8_t* panel) {
  using Block = std::conditional_t<T == GgmlType::Q8_0, BlockQ8_0,
                                   std::conditional_t<T == GgmlType::Q4_0, BlockQ4_0, BlockQ5_0>>;
  constexpr size_t bb = kBlock32<T>;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = rows + b * sizeof(Block);
    uint8_t* out = panel + b * bb;
    for (int h = 0; h < 2; ++h) {
      __m256i q[8];
      if constexpr (T == GgmlType::Q8_0) {
        row_dwords8(r, x + offsetof(Block, qs), h, q);
        const __m256i plus128 = _mm256_and_si256(_mm256_set1_epi8((char)0x80), r.live[h]);
        for (int s = 0; s < 8; ++s) store_half(out + 64 * s, h, _mm256_xor_si256(q[s], plus128));
      } else {  // a Q4_0 / Q5_0 qs byte already pairs value j with value 16 + j
        row_dwords4(r, x + offsetof(Block, qs), h, q);
        for (int k = 0; k < 4; ++k) store_half(out + 64 * k, h, q[k]);
      }
      if constexpr (T == GgmlType::Q5_0) {
        int32_t qh[8];
        for (int l = 0; l < 8; ++l) std::memcpy(&qh[l], x + r.offset[8 * h + l] + offsetof(BlockQ5_0, qh), 4);
        const __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)qh), r.live[h]);
        store_half(out + 256, h, q5_high(v));
      }
    }
    put_fp16(x, r, 0, out + bb - 32);
  }
}

void repack_q4_k(const uint8_t* rows, const PanelRows& r, int64_t nb, uint8_t* panel) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = rows + b * sizeof(BlockQ4_K);
    uint8_t* out = panel + b * 2368;
    for (int c = 0; c < 4; ++c)  // qs run c: sub-blocks 2c (low nibbles) and 2c + 1
      put_nibble_pair(r, x + offsetof(BlockQ4_K, qs) + 32 * c, out + 512 * c, out + 512 * c + 256);
    uint8_t* sc = out + 2048;
    std::memset(sc, 0, 256);
    for (int l = 0; l < r.n_rows; ++l) {
      const uint8_t* scales = x + r.offset[l] + offsetof(BlockQ4_K, scales);
      for (int j = 0; j < 8; ++j) unpack_scale_min_k4(j, scales, &sc[16 * j + l], &sc[128 + 16 * j + l]);
    }
    put_fp16(x, r, offsetof(BlockQ4_K, d), out + 2304);
    put_fp16(x, r, offsetof(BlockQ4_K, dmin), out + 2336);
  }
}

// Q6_K's top two bits of the 32 values of group 4g + k: qh byte i of half g
// holds value i's at bits 2k, 2k + 1 (q[e]: dword e); high vector v wants
// those of dword 4v + f at bits 2f, 2f + 1. The 16-bit shifts spill bits of
// the neighbouring byte only outside the two kept bits.
void put_q6_high(const __m256i* q, int k, int h, uint8_t* out) {
  for (int v = 0; v < 2; ++v) {
    __m256i acc = _mm256_setzero_si256();
    for (int f = 0; f < 4; ++f) {
      const int shift = 2 * f - 2 * k;
      const __m256i e = q[4 * v + f];
      const __m256i at = shift >= 0 ? _mm256_slli_epi16(e, shift) : _mm256_srli_epi16(e, -shift);
      acc = select_bits(_mm256_set1_epi8((char)(3 << 2 * f)), at, acc);
    }
    store_half(out + 64 * v, h, acc);
  }
}

void repack_q6_k(const uint8_t* rows, const PanelRows& r, int64_t nb, uint8_t* panel) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = rows + b * sizeof(BlockQ6_K);
    uint8_t* out = panel + b * 3360;
    // ql run c (32 bytes) holds groups 4g + c % 2 (low nibbles) and 4g + c % 2 + 2, g = c / 2
    for (int c = 0; c < 4; ++c) {
      const int j = 4 * (c / 2) + c % 2;
      put_nibble_pair(r, x + offsetof(BlockQ6_K, ql) + 32 * c, out + 384 * j, out + 384 * (j + 2));
    }
    for (int g = 0; g < 2; ++g)
      for (int h = 0; h < 2; ++h) {
        __m256i q[8];
        row_dwords8(r, x + offsetof(BlockQ6_K, qh) + 32 * g, h, q);
        for (int k = 0; k < 4; ++k) put_q6_high(q, k, h, out + 384 * (4 * g + k) + 256);
      }
    uint8_t* sc = out + 3072;
    std::memset(sc, 0, 256);
    for (int l = 0; l < r.n_rows; ++l) {
      const uint8_t* scales = x + r.offset[l] + offsetof(BlockQ6_K, scales);
      for (int k = 0; k < 16; ++k) sc[16 * k + l] = scales[k];
    }
    put_fp16(x, r, offsetof(BlockQ6_K, d), out + 3328);
  }
}

template <GgmlType T>
void repack(const void* rows, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel) {
  const PanelRows r = panel_rows(row_bytes, n_rows);
  const uint8_t* first = (const uint8_t*)rows;
  if constexpr (T == GgmlType::Q4_K) repack_q4_k(first, r, cols / kQKK, panel);
  else if constexpr (T == GgmlType::Q6_K) repack_q6_k(first, r, cols / kQKK, panel);
  else repack_32<T>(first, r, cols / kQK, panel);
}

}  // namespace
}  // namespace avx2

void fill_repacked_avx2(KernelRow* rows) {
  using namespace avx2;
  rows[(size_t)GgmlType::Q8_0].gemm_repacked = gemm_repacked<GgmlType::Q8_0>;
  rows[(size_t)GgmlType::Q4_0].gemm_repacked = gemm_repacked<GgmlType::Q4_0>;
  rows[(size_t)GgmlType::Q5_0].gemm_repacked = gemm_repacked<GgmlType::Q5_0>;
  rows[(size_t)GgmlType::Q4_K].gemm_repacked = gemm_repacked<GgmlType::Q4_K>;
  rows[(size_t)GgmlType::Q6_K].gemm_repacked = gemm_repacked<GgmlType::Q6_K>;
  rows[(size_t)GgmlType::Q8_0].repack = repack<GgmlType::Q8_0>;
  rows[(size_t)GgmlType::Q4_0].repack = repack<GgmlType::Q4_0>;
  rows[(size_t)GgmlType::Q5_0].repack = repack<GgmlType::Q5_0>;
  rows[(size_t)GgmlType::Q4_K].repack = repack<GgmlType::Q4_K>;
  rows[(size_t)GgmlType::Q6_K].repack = repack<GgmlType::Q6_K>;
}

}  // namespace slim
