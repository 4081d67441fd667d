// Products over row-interleaved panels (repack.h) on AVX-512 VNNI, for one
// token (decode) and token tiles (prefill) alike: per block column the 16
// rows' quants are unpacked once into eight step vectors, and each token's
// activation words are broadcast against them, so lane l accumulates row l.
// No horizontal sums; the 16 scales are one load; the result is one store.
// Also the packing of those panels at load time (the twin of repack_panel).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
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
namespace avx512 {
namespace {

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
    if constexpr (C == 1) prefetch_part<bb>(p);
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
    __m512i itot[C], mtot[C];
    for (int c = 0; c < C; ++c) itot[c] = mtot[c] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      __m512i w[8];
      if constexpr (C == 1) prefetch_part<bb, 8>(p, j);
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
    __m512i itot[C];
    for (int c = 0; c < C; ++c) itot[c] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      __m512i w[8];
      if constexpr (C == 1) prefetch_part<bb, 8>(p, j);
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


// ---- Packing (load time): GGUF rows to panels, byte for byte repack_panel ----
// Every panel vector holds 4 bytes of row l in lane l: a transpose of dwords
// from the 16 rows' blocks. Runs of 16 or 32 bytes are loaded whole and
// transposed in registers (one gather a vector measured 3 to 6 times slower:
// most blocks are not 4-byte aligned, and a gathered dword that crosses a
// cache line is expensive); only single fields (fp16 d, Q5_0's qh) are
// gathered. The bit work then runs on 16 rows at once. Rows past n_rows load
// the last real row and are masked to zero, the bytes the layout gives
// missing rows; the gathers skip them.

struct PanelRows {
  size_t offset[kRepackRows];  // row l's byte offset from row 0 (the last real row's past n_rows)
  __m512i offset32;            // the same as dwords, for gathers (fits: row_bytes < 2^27)
  __mmask16 live;              // rows that exist
};

PanelRows panel_rows(size_t row_bytes, int n_rows) {
  PanelRows r;
  alignas(64) int32_t o[kRepackRows];
  for (int l = 0; l < kRepackRows; ++l) r.offset[l] = std::min(l, n_rows - 1) * row_bytes, o[l] = (int32_t)r.offset[l];
  r.offset32 = _mm512_load_si512(o);
  r.live = (__mmask16)((1u << n_rows) - 1);
  return r;
}

// dword l: the 4 bytes at p (an address in row 0) in row l; zero for missing rows
inline __m512i gather_rows(const PanelRows& r, const uint8_t* p) {
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), r.live, r.offset32, p, 1);
}

// The coming blocks of every row towards the cache: 16 rows are 16 streams,
// more than the hardware prefetchers follow well (+10 % on matrices that are
// not in the cache). Prefetches past the mapping are dropped, not faults.
inline void prefetch_rows(const PanelRows& r, const uint8_t* next, size_t bytes) {
  for (int l = 0; l < kRepackRows; ++l)
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char*)next + r.offset[l] + o, _MM_HINT_T0);
}

inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128((const __m128i*)p); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256((const __m256i*)p); }

// A 4 x 4 transpose of dwords inside every 128-bit lane: lane q of z[i] holds
// four dwords of row i (of the lane's four rows), lane q of v[k] dword k of
// those rows in order.
inline void transpose_lanes_4x4(const __m512i* z, __m512i* v) {
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  v[0] = _mm512_unpacklo_epi64(t0, t2);
  v[1] = _mm512_unpackhi_epi64(t0, t2);
  v[2] = _mm512_unpacklo_epi64(t1, t3);
  v[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Vector k (k < 4), dword l: dword k of the 16 bytes at p in row l. Rows g,
// g + 4, g + 8, g + 12 share a register, one a 128-bit lane, so a 4 x 4
// transpose inside each lane serves all 16 rows in order.
inline void row_dwords4(const PanelRows& r, const uint8_t* p, __m512i* v) {
  __m512i z[4];
  for (int g = 0; g < 4; ++g) {
    __m512i x = _mm512_castsi128_si512(load128(p + r.offset[g]));
    x = _mm512_inserti32x4(x, load128(p + r.offset[g + 4]), 1);
    x = _mm512_inserti32x4(x, load128(p + r.offset[g + 8]), 2);
    z[g] = _mm512_inserti32x4(x, load128(p + r.offset[g + 12]), 3);
  }
  transpose_lanes_4x4(z, v);
  for (int k = 0; k < 4; ++k) v[k] = _mm512_maskz_mov_epi32(r.live, v[k]);
}

// Vector k (k < 8), dword l: dword k of the 32 bytes at p in row l. Rows l
// and l + 8 share a register, one a 256-bit half; 4 x 4 transposes inside
// the 128-bit lanes of rows 0-3 and 4-7 (and 8-11, 12-15) leave dword k in
// lanes 0 / 2 and dword k + 4 in lanes 1 / 3, which a two-register permute
// puts in row order.
inline void row_dwords8(const PanelRows& r, const uint8_t* p, __m512i* v) {
  __m512i z[8], t[8];
  for (int l = 0; l < 8; ++l)
    z[l] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(p + r.offset[l])), load256(p + r.offset[l + 8]), 1);
  transpose_lanes_4x4(z, t);
  transpose_lanes_4x4(z + 4, t + 4);
  const __m512i even = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i odd = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm512_maskz_mov_epi32(r.live, _mm512_permutex2var_epi64(t[k], even, t[k + 4]));
    v[k + 4] = _mm512_maskz_mov_epi32(r.live, _mm512_permutex2var_epi64(t[k], odd, t[k + 4]));
  }
}

inline void store(uint8_t* out, __m512i v) { _mm512_storeu_si512(out, v); }

// the low halves of the 16 dwords as 16 fp16 scales
inline void store_fp16(uint8_t* out, __m512i v) { _mm256_storeu_si256((__m256i*)out, _mm512_cvtepi32_epi16(v)); }

// bits of x where mask is set, of y elsewhere
inline __m512i select_bits(__m512i mask, __m512i x, __m512i y) { return _mm512_ternarylogic_epi32(mask, x, y, 0xCA); }

// Per-row scale bytes: v holds bytes c = 0..3 of row l at 4l + c, the panel
// wants them at 16c + l. A 4 x 4 transpose of bytes inside each 128-bit lane
// (rows 4q..4q+3) and then of dwords across the lanes.
inline void store_byte_columns(uint8_t* out, __m512i v) {
  const __m512i t4 = _mm512_set4_epi32(0x0F0B0703, 0x0E0A0602, 0x0D090501, 0x0C080400);
  const __m512i by_row = _mm512_shuffle_epi8(v, t4);
  const __m512i t16 = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  store(out, _mm512_permutexvar_epi32(t16, by_row));
}

// 32 bytes of 4-bit quants at p per row, value i of the first group in the
// low nibble of byte i and of the second group in its high nibble (Q4_K's
// qs, Q6_K's ql): both groups' nibble vectors. Byte j of a vector pairs
// value j with value 16 + j, i.e. byte j with byte 16 + j of the run.
void put_nibble_pair(const PanelRows& r, const uint8_t* p, uint8_t* first, uint8_t* second) {
  const __m512i lo = _mm512_set1_epi8(0x0F);
  __m512i q[8];
  row_dwords8(r, p, q);
  for (int k = 0; k < 4; ++k) {
    store(first + 64 * k, select_bits(lo, q[k], _mm512_slli_epi16(q[k + 4], 4)));
    store(second + 64 * k, select_bits(lo, _mm512_srli_epi16(q[k], 4), q[k + 4]));
  }
}

// Q5_0's qh (bit i: the fifth bit of value i) to its high vector, whose byte
// j holds bit 4s + j at bit s: per step s, the nibble of bits 4s..4s+3 picks
// from a table the dword with its bit j moved to byte j.
struct alignas(64) NibbleSpread {
  int32_t dword[16];
};
constexpr NibbleSpread nibble_spread() {
  NibbleSpread t{};
  for (int n = 0; n < 16; ++n)
    for (int j = 0; j < 4; ++j) t.dword[n] |= (n >> j & 1) << 8 * j;
  return t;
}
constexpr NibbleSpread kNibbleSpread = nibble_spread();

__m512i q5_high(__m512i qh) {
  const __m512i table = _mm512_load_si512(kNibbleSpread.dword);
  __m512i h = _mm512_setzero_si512();
  for (int s = 0; s < 8; ++s)  // the permute reads only the low 4 bits of each index
    h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_permutexvar_epi32(_mm512_srli_epi32(qh, 4 * s), table), s));
  return h;
}

template <GgmlType T>
void repack_32(const uint8_t* rows, const PanelRows& r, int64_t nb, uint8_t* panel) {
  using Block = std::conditional_t<T == GgmlType::Q8_0, BlockQ8_0,
                                   std::conditional_t<T == GgmlType::Q4_0, BlockQ4_0, BlockQ5_0>>;
  constexpr size_t bb = T == GgmlType::Q8_0 ? 544 : T == GgmlType::Q4_0 ? 288 : 352;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = rows + b * sizeof(Block);
    uint8_t* out = panel + b * bb;
    if (b % 2 == 0) prefetch_rows(r, x + 2 * sizeof(Block), 2 * sizeof(Block));
    __m512i q[8];
    if constexpr (T == GgmlType::Q8_0) {
      row_dwords8(r, x + offsetof(Block, qs), q);
      const __m512i plus128 = _mm512_set1_epi8((char)0x80);
      for (int s = 0; s < 8; ++s) store(out + 64 * s, _mm512_maskz_xor_epi32(r.live, q[s], plus128));
    } else {  // a Q4_0 / Q5_0 qs byte already pairs value j with value 16 + j
      row_dwords4(r, x + offsetof(Block, qs), q);
      for (int k = 0; k < 4; ++k) store(out + 64 * k, q[k]);
    }
    if constexpr (T == GgmlType::Q5_0) store(out + 256, q5_high(gather_rows(r, x + offsetof(BlockQ5_0, qh))));
    store_fp16(out + bb - 32, gather_rows(r, x));  // d, then 2 bytes of the next field
  }
}

void repack_q4_k(const uint8_t* rows, const PanelRows& r, int64_t nb, uint8_t* panel) {
  const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), top2 = _mm512_set1_epi8(0x30);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = rows + b * sizeof(BlockQ4_K);
    uint8_t* out = panel + b * 2368;
    prefetch_rows(r, x + sizeof(BlockQ4_K), sizeof(BlockQ4_K));
    for (int c = 0; c < 4; ++c)  // qs run c: sub-blocks 2c (low nibbles) and 2c + 1
      put_nibble_pair(r, x + offsetof(BlockQ4_K, qs) + 32 * c, out + 512 * c, out + 512 * c + 256);
    // d and dmin, then the 12 scale bytes as three dwords: unpack_scale_min_k4
    // of sub-blocks c and 4 + c in byte c
    __m512i h[4];
    row_dwords4(r, x, h);
    store_byte_columns(out + 2048, _mm512_and_si512(h[1], m6));
    const __m512i sc_top = _mm512_and_si512(_mm512_srli_epi16(h[1], 2), top2);
    const __m512i mn_top = _mm512_and_si512(_mm512_srli_epi16(h[2], 2), top2);
    store_byte_columns(out + 2112, select_bits(m4, h[3], sc_top));
    store_byte_columns(out + 2176, _mm512_and_si512(h[2], m6));
    store_byte_columns(out + 2240, select_bits(m4, _mm512_srli_epi16(h[3], 4), mn_top));
    store_fp16(out + 2304, h[0]);
    store_fp16(out + 2336, _mm512_srli_epi32(h[0], 16));
  }
}

// Q6_K's top two bits of the 32 values of group 4h + k: qh byte i of half h
// holds value i's at bits 2k, 2k + 1 (qh dword e: q[e]); high vector v wants
// those of dword 4v + f at bits 2f, 2f + 1. The 16-bit shifts spill bits of
// the neighbouring byte only outside the two kept bits.
void put_q6_high(const __m512i* q, int k, uint8_t* out) {
  for (int v = 0; v < 2; ++v) {
    __m512i h = _mm512_setzero_si512();
    for (int f = 0; f < 4; ++f) {
      const int shift = 2 * f - 2 * k;
      const __m512i e = q[4 * v + f];
      const __m512i at = shift >= 0 ? _mm512_slli_epi16(e, shift) : _mm512_srli_epi16(e, -shift);
      h = select_bits(_mm512_set1_epi8((char)(3 << 2 * f)), at, h);
    }
    store(out + 64 * v, h);
  }
}

void repack_q6_k(const uint8_t* rows, const PanelRows& r, int64_t nb, uint8_t* panel) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = rows + b * sizeof(BlockQ6_K);
    uint8_t* out = panel + b * 3360;
    prefetch_rows(r, x + sizeof(BlockQ6_K), sizeof(BlockQ6_K));
    // ql run c (32 bytes) holds groups 4h + c % 2 (low nibbles) and 4h + c % 2 + 2, h = c / 2
    for (int c = 0; c < 4; ++c) {
      const int j = 4 * (c / 2) + c % 2;
      put_nibble_pair(r, x + offsetof(BlockQ6_K, ql) + 32 * c, out + 384 * j, out + 384 * (j + 2));
    }
    for (int h = 0; h < 2; ++h) {
      __m512i q[8];
      row_dwords8(r, x + offsetof(BlockQ6_K, qh) + 32 * h, q);
      for (int k = 0; k < 4; ++k) put_q6_high(q, k, out + 384 * (4 * h + k) + 256);
    }
    __m512i s[4];
    row_dwords4(r, x + offsetof(BlockQ6_K, scales), s);
    for (int a = 0; a < 4; ++a) store_byte_columns(out + 3072 + 64 * a, s[a]);
    // d is the block's last field: gathered as the top half of the dword
    // before it, never past the block
    store_fp16(out + 3328, _mm512_srli_epi32(gather_rows(r, x + offsetof(BlockQ6_K, d) - 2), 16));
  }
}

template <GgmlType T>
void repack(const void* rows, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel) {
  if (row_bytes >= ((size_t)1 << 27))  // beyond the gathers' 32-bit offsets
    return repack_panel(T, rows, row_bytes, n_rows, cols, panel);
  const PanelRows r = panel_rows(row_bytes, n_rows);
  const uint8_t* first = (const uint8_t*)rows;
  if constexpr (T == GgmlType::Q4_K) repack_q4_k(first, r, cols / kQKK, panel);
  else if constexpr (T == GgmlType::Q6_K) repack_q6_k(first, r, cols / kQKK, panel);
  else repack_32<T>(first, r, cols / kQK, panel);
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
  rows[(size_t)GgmlType::Q8_0].repack = repack<GgmlType::Q8_0>;
  rows[(size_t)GgmlType::Q4_0].repack = repack<GgmlType::Q4_0>;
  rows[(size_t)GgmlType::Q5_0].repack = repack<GgmlType::Q5_0>;
  rows[(size_t)GgmlType::Q4_K].repack = repack<GgmlType::Q4_K>;
  rows[(size_t)GgmlType::Q6_K].repack = repack<GgmlType::Q6_K>;
}

}  // namespace slim
