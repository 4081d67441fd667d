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


// ---- attention loops (dispatch.h AttnKernels) ----
inline __m512 attn_load_out(const float* p) { return _mm512_loadu_ps(p); }
inline void attn_store_out(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
inline __m512 attn_load(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 attn_load(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
inline float attn_scalar(float x) { return x; }
inline float attn_scalar(uint16_t x) { return fp16_to_fp32(x); }

// The sums of 16 vectors in one: lane l of the result is the sum of the
// lanes of v[kSum16Order[l]]. Four rounds of pairwise shuffles and adds (45
// instructions for 16 sums) instead of a horizontal sum a vector (8 each).
constexpr int kSum16Order[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};
inline __m512 sum16(const __m512* v) {
  __m512 t[8], u[4], w[2];
  // halves: 128-bit lanes 0-1 hold v[j]'s partials, 2-3 v[j + 8]'s
  for (int j = 0; j < 8; ++j)
    t[j] = _mm512_add_ps(_mm512_shuffle_f32x4(v[j], v[j + 8], 0x44), _mm512_shuffle_f32x4(v[j], v[j + 8], 0xEE));
  // quarters: 128-bit lane q holds v[j], v[j + 8], v[j + 4], v[j + 12]'s partials
  for (int j = 0; j < 4; ++j)
    u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[j], t[j + 4], 0x88), _mm512_shuffle_f32x4(t[j], t[j + 4], 0xDD));
  for (int j = 0; j < 2; ++j)
    w[j] = _mm512_add_ps(_mm512_shuffle_ps(u[j], u[j + 2], 0x44), _mm512_shuffle_ps(u[j], u[j + 2], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
}

// Decode's query against each cached key. The query stays in registers
// (head dims up to 256), and keys go 16 at a time, each with its own chain of
// FMAs, their sums gathered by sum16 into one store.
template <class E>
void attn_scores(int64_t n_keys, int64_t dim, const void* q, const void* k, size_t stride, float* s) {
  const E* qv = (const E*)q;
  auto key = [&](int64_t j) { return (const E*)((const char*)k + j * stride); };
  int64_t j = 0;
  if (dim % 16 == 0 && dim <= 256) {
    const int nvec = (int)(dim / 16);
    __m512 qr[16];
    for (int c = 0; c < nvec; ++c) qr[c] = attn_load(qv + 16 * c);
    for (; j + 16 <= n_keys; j += 16) {
      __m512 acc[16];
      for (int l = 0; l < 16; ++l) {
        const E* kv = key(j + kSum16Order[l]);
        __m512 a = _mm512_mul_ps(qr[0], attn_load(kv));
        for (int c = 1; c < nvec; ++c) a = _mm512_fmadd_ps(qr[c], attn_load(kv + 16 * c), a);
        acc[l] = a;
      }
      _mm512_storeu_ps(s + j, sum16(acc));
    }
  }
  const int64_t nv = dim / 16 * 16;
  for (; j < n_keys; ++j) {
    const E* kv = key(j);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nv; i += 16) acc = _mm512_fmadd_ps(attn_load(qv + i), attn_load(kv + i), acc);
    float sum = hsum512(acc);
    for (int64_t i = nv; i < dim; ++i) sum += attn_scalar(qv[i]) * attn_scalar(kv[i]);
    s[j] = sum;
  }
}

// out kept in registers over all keys when dim fits (head dims up to 256);
// up to 128, two sets of accumulators (even and odd keys) halve the chain of
// dependent FMAs
template <class E>
void attn_mix(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out) {
  constexpr int kMaxVec = 256 / 16;
  if (dim % 16 != 0 || dim > 256) {
    for (int64_t j = 0; j < n_keys; ++j) {
      const E* vv = (const E*)((const char*)v + j * stride);
      for (int64_t i = 0; i < dim; ++i) out[i] += w[j] * attn_scalar(vv[i]);
    }
    return;
  }
  const int nvec = (int)(dim / 16);
  auto row = [&](int64_t j) { return (const E*)((const char*)v + j * stride); };
  __m512 acc[kMaxVec], odd[kMaxVec / 2];
  for (int c = 0; c < nvec; ++c) acc[c] = attn_load_out(out + c * 16);
  int64_t j = 0;
  if (nvec <= kMaxVec / 2) {
    for (int c = 0; c < nvec; ++c) odd[c] = _mm512_setzero_ps();
    for (; j + 2 <= n_keys; j += 2) {
      const __m512 a0 = _mm512_set1_ps(w[j]), a1 = _mm512_set1_ps(w[j + 1]);
      const E *v0 = row(j), *v1 = row(j + 1);
      for (int c = 0; c < nvec; ++c) {
        acc[c] = _mm512_fmadd_ps(a0, attn_load(v0 + c * 16), acc[c]);
        odd[c] = _mm512_fmadd_ps(a1, attn_load(v1 + c * 16), odd[c]);
      }
    }
    for (int c = 0; c < nvec; ++c) acc[c] = _mm512_add_ps(acc[c], odd[c]);
  }
  for (; j < n_keys; ++j) {
    const __m512 a = _mm512_set1_ps(w[j]);
    const E* vv = row(j);
    for (int c = 0; c < nvec; ++c) acc[c] = _mm512_fmadd_ps(a, attn_load(vv + c * 16), acc[c]);
  }
  for (int c = 0; c < nvec; ++c) attn_store_out(out + c * 16, acc[c]);
}

// ---- prefill GEMM on 16-row panels (dispatch.h) ----

// 32-value block b of a row as unsigned bytes, its group scales and mins.
template <GgmlType T>
inline __m256i panel_block(const uint8_t* row, int64_t b, float* sc, float* mn) {
  if constexpr (T == GgmlType::Q4_0) {
    const BlockQ4_0& x = ((const BlockQ4_0*)row)[b];
    sc[0] = h2f(x.d);
    return unpack_nibbles_16(x.qs);
  } else if constexpr (T == GgmlType::Q5_0) {
    const BlockQ5_0& x = ((const BlockQ5_0*)row)[b];
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    sc[0] = h2f(x.d);
    return _mm256_or_si256(unpack_nibbles_16(x.qs), _mm256_and_si256(expand_bits_32(qh), _mm256_set1_epi8(0x10)));
  } else if constexpr (T == GgmlType::Q8_0) {
    const BlockQ8_0& x = ((const BlockQ8_0*)row)[b];
    sc[0] = h2f(x.d);
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)x.qs), _mm256_set1_epi8((char)0x80));
  } else if constexpr (T == GgmlType::IQ4_NL) {
    const BlockIQ4_NL& x = ((const BlockIQ4_NL*)row)[b];
    sc[0] = h2f(x.d);
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)kIq4nlValues));
    return _mm256_xor_si256(_mm256_shuffle_epi8(lut, unpack_nibbles_16(x.qs)), _mm256_set1_epi8((char)0x80));
  } else if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    const int j = (int)(b % 8);
    const uint8_t *scales, *qs;
    float d, dmin;
    __m256i hb = _mm256_setzero_si256();
    if constexpr (T == GgmlType::Q4_K) {
      const BlockQ4_K& x = ((const BlockQ4_K*)row)[b / 8];
      scales = x.scales, qs = x.qs, d = h2f(x.d), dmin = h2f(x.dmin);
    } else {
      const BlockQ5_K& x = ((const BlockQ5_K*)row)[b / 8];
      scales = x.scales, qs = x.qs, d = h2f(x.d), dmin = h2f(x.dmin);
      hb = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i*)x.qh), j), _mm256_set1_epi8(1));
      hb = _mm256_slli_epi16(hb, 4);
    }
    const __m256i q = _mm256_loadu_si256((const __m256i*)(qs + 32 * (j / 2)));
    const __m256i v = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
    uint8_t s, m;
    unpack_scale_min_k4(j, scales, &s, &m);
    sc[0] = d * s;
    mn[0] = dmin * m;
    return _mm256_or_si256(v, hb);
  } else {  // Q6_K
    const BlockQ6_K& x = ((const BlockQ6_K*)row)[b / 8];
    const int j = (int)(b % 8), h = j / 4, k = j % 4;
    const __m256i l = _mm256_loadu_si256((const __m256i*)(x.ql + 64 * h + 32 * (k % 2)));
    const __m256i lo = _mm256_and_si256(k < 2 ? l : _mm256_srli_epi16(l, 4), _mm256_set1_epi8(0x0F));
    const __m256i hb = _mm256_loadu_si256((const __m256i*)(x.qh + 32 * h));
    const __m256i hi = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hb, 2 * k), 4), _mm256_set1_epi8(0x30));
    const float d = h2f(x.d);
    for (int g = 0; g < 2; ++g) sc[g] = d * x.scales[2 * j + g], mn[g] = 32 * sc[g];
    return _mm256_or_si256(lo, hi);
  }
}

template <GgmlType T>
void pack_panel(const void* w, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel) {
  constexpr PanelFormat f = T == GgmlType::Q6_K ? PanelFormat{16, true, 0}
                            : (T == GgmlType::Q4_K || T == GgmlType::Q5_K) ? PanelFormat{32, true, 0}
                                                                             : PanelFormat{32, false, 0};
  constexpr int sets = 32 / f.group;
  alignas(64) uint8_t tmp[kPanelRows * 32];
  // dword s of every row (row r's block sits at tmp + 32 r)
  const __m512i idx = _mm512_setr_epi32(0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 480);
  for (int64_t b = 0; b < cols / kQK; ++b) {
    uint8_t* p = panel + b * f.block_bytes();
    float* scales = (float*)(p + 512);
    float* mins = scales + 16 * sets;
    for (int r = 0; r < kPanelRows; ++r) {
      float sc[2] = {0, 0}, mn[2] = {0, 0};
      __m256i v = _mm256_setzero_si256();
      if (r < n_rows) v = panel_block<T>((const uint8_t*)w + r * row_bytes, b, sc, mn);
      _mm256_store_si256((__m256i*)(tmp + 32 * r), v);
      for (int g = 0; g < sets; ++g) {
        scales[16 * g + r] = sc[g];
        if (f.mins) mins[16 * g + r] = mn[g];
      }
    }
    for (int s = 0; s < 8; ++s) _mm512_storeu_si512(p + 64 * s, _mm512_i32gather_epi32(idx, tmp + 4 * s, 1));
  }
}

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// 16 rows x C tokens: per 32-value block, 8 VNNI steps of 4 values per token
// with the activation bytes broadcast; per group and token one convert and one
// FMA (and one for the mins). G: values per scale; K: Q8_K activations.
template <int C, int G, bool kMins, int kOffset>
void gemm_panel_c(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                  const int32_t* sy, const float* my, size_t is, float* y, int64_t ldy, int n_rows) {
  constexpr int sets = 32 / G;
  constexpr size_t bb = 512 + sets * 64 * (kMins ? 2 : 1);
  __m512 facc[C];
  for (int c = 0; c < C; ++c) facc[c] = _mm512_setzero_ps();
  const int64_t nb = cols / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = panel + b * bb;
    __m512i w[8];
    for (int s = 0; s < 8; ++s) w[s] = _mm512_loadu_si512(p + 64 * s);
    __m512i acc[C][sets];
    for (int c = 0; c < C; ++c)
      for (int g = 0; g < sets; ++g)
        acc[c][g] = kOffset ? _mm512_set1_epi32(-kOffset * sy[c * is + b]) : _mm512_setzero_si512();
    for (int s = 0; s < 8; ++s)
      for (int c = 0; c < C; ++c) {
        const char* row = (const char*)act + c * stride;
        const int8_t* q = kMins ? ((const BlockQ8_K*)row)[b / 8].qs + 32 * (b % 8) : ((const BlockQ8_0*)row)[b].qs;
        acc[c][s * 4 / G] = _mm512_dpbusd_epi32(acc[c][s * 4 / G], w[s], bcast4(q + 4 * s));
      }
    for (int g = 0; g < sets; ++g) {
      const __m512 sc = _mm512_loadu_ps((const float*)(p + 512) + 16 * g);
      for (int c = 0; c < C; ++c)
        facc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[c][g]),
                                  _mm512_mul_ps(sc, _mm512_set1_ps(dy[c * is + b * sets + g])), facc[c]);
      if constexpr (kMins) {
        const __m512 mn = _mm512_loadu_ps((const float*)(p + 512) + 16 * (sets + g));
        for (int c = 0; c < C; ++c) facc[c] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(my[c * is + b * sets + g]), facc[c]);
      }
    }
  }
  const __mmask16 m = (__mmask16)((1u << n_rows) - 1);
  for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(y + c * ldy, m, facc[c]);
}

template <int G, bool kMins, int kOffset>
void gemm_panel(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                const int32_t* sy, const float* my, size_t is, int nc, float* y, int64_t ldy, int n_rows) {
  // tiles of up to 8 tokens (4 with two groups a block: register budget)
  constexpr int kMax = G == 32 ? 8 : 4;
  for (int c0 = 0; c0 < nc; c0 += kMax) {
    const int n = std::min(kMax, nc - c0);
    const void* a = (const char*)act + c0 * stride;
    const float* d = dy + c0 * is;
    const int32_t* s = sy ? sy + c0 * is : nullptr;
    const float* mm = my ? my + c0 * is : nullptr;
    float* yy = y + c0 * ldy;
    switch (n) {
#define SLIM_C(k)                                                                              \
  case k:                                                                                      \
    if constexpr (k <= kMax) gemm_panel_c<k, G, kMins, kOffset>(cols, panel, a, stride, d, s, mm, is, yy, ldy, n_rows); \
    break;
      SLIM_C(1) SLIM_C(2) SLIM_C(3) SLIM_C(4) SLIM_C(5) SLIM_C(6) SLIM_C(7) SLIM_C(8)
#undef SLIM_C
    }
  }
}

// exp of 16 floats: x = n ln2 + r, |r| <= ln2/2, degree-7 polynomial, 2^n by
// scalef (underflows to 0 smoothly); about 1 ulp from std::exp.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

void attn_softmax(int64_t n, float* s, float scale, float cap) {
  if (cap > 0 || n < 16) {  // soft-capping (tanh) and short rows: the scalar twin
    attn_softmax_ref(n, s, scale, cap);
    return;
  }
  const __m512 sc = _mm512_set1_ps(scale);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 t = _mm512_mul_ps(_mm512_loadu_ps(s + j), sc);
    _mm512_storeu_ps(s + j, t);
    mx = _mm512_max_ps(mx, t);
  }
  float m = _mm512_reduce_max_ps(mx);
  for (int64_t i = j; i < n; ++i) s[i] *= scale, m = std::max(m, s[i]);
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
    _mm512_storeu_ps(s + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (j < n) {
    const __mmask16 k = (__mmask16)((1u << (n - j)) - 1);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), vm));
    _mm512_mask_storeu_ps(s + j, k, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), inv));
  for (; j < n; ++j) s[j] *= _mm512_cvtss_f32(inv);
}

void swiglu(int64_t n, const float* gate, const float* up, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(k, gate + i);
    // e^-x overflows to inf for x < -88: x / inf = -0, silu's limit
    const __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, up + i)));
  }
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
  auto panel = [&](GgmlType t, PackPanelFn pack, GemmPanelFn gemm) {
    rows[(size_t)t].pack_panel = pack;
    rows[(size_t)t].gemm_panel = gemm;
    rows[(size_t)t].panel = panel_format(t);
  };
  panel(GgmlType::Q4_0, pack_panel<GgmlType::Q4_0>, gemm_panel<32, false, 8>);
  panel(GgmlType::Q5_0, pack_panel<GgmlType::Q5_0>, gemm_panel<32, false, 16>);
  panel(GgmlType::Q8_0, pack_panel<GgmlType::Q8_0>, gemm_panel<32, false, 128>);
  panel(GgmlType::IQ4_NL, pack_panel<GgmlType::IQ4_NL>, gemm_panel<32, false, 128>);
  panel(GgmlType::Q4_K, pack_panel<GgmlType::Q4_K>, gemm_panel<32, true, 0>);
  panel(GgmlType::Q5_K, pack_panel<GgmlType::Q5_K>, gemm_panel<32, true, 0>);
  panel(GgmlType::Q6_K, pack_panel<GgmlType::Q6_K>, gemm_panel<16, true, 0>);
}

void fill_float_avx512(KernelTable& t) {
  using namespace avx512;
  t.attn_f32 = {attn_scores<float>, attn_mix<float>, attn_softmax};
  t.attn_f16 = {attn_scores<uint16_t>, attn_mix<uint16_t>, attn_softmax};
  t.swiglu = swiglu;
}

}  // namespace slim
