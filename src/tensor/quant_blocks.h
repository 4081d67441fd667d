// Byte layouts of the GGUF/ggml quantized blocks, bit-compatible with files
// written by llama.cpp. Plain structs so kernels can index fields directly;
// the static_asserts pin every size to the on-disk format.
#pragma once

#include <cstdint>

namespace slim {

constexpr int kQK = 32;    // values per block of the 32-wide formats
constexpr int kQKK = 256;  // values per super-block of the K-quants and IQ4_XS

// x = d * (q - 8), q in 0..15; low nibbles hold values 0..15, high nibbles 16..31.
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
// x = d * q + m, q in 0..15
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[16]; };
// x = d * (q - 16), q 5 bits: nibble in qs, fifth bit of value j is bit j of qh
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[16]; };
// x = d * q
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
// s = d * sum(qs): lets Q4_1/Q5_1 fold their offset m into one multiply
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[32]; };

// 16 sub-blocks of 16; scales[j] = scale (low nibble) | min (high nibble)
struct BlockQ2_K { uint8_t scales[16]; uint8_t qs[64]; uint16_t d; uint16_t dmin; };
// 16 sub-blocks of 16, 6-bit signed scales packed in 12 bytes, 3-bit values
// (2 low bits in qs, high bit in hmask; a clear high bit means "subtract 4")
struct BlockQ3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; };
// 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
// 16 sub-blocks of 16, int8 scales, 6-bit values (4 low bits in ql, 2 high in qh)
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
// activation partner of the K-quants: float scale, bsums = sums of 16 quants
struct BlockQ8_K { float d; int8_t qs[256]; int16_t bsums[16]; };

// non-linear 4-bit: x = d * kIq4nlValues[q]
struct BlockIQ4_NL { uint16_t d; uint8_t qs[16]; };
// 8 sub-blocks of 32 with 6-bit scales (4 low bits in scales_l, 2 high in scales_h)
struct BlockIQ4_XS { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; };

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);

// The IQ4_NL / IQ4_XS code book (part of the file format).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K/Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
inline void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q3_K: signed scale of sub-block j (0..15): 4 low bits from bytes 0..7, 2 high
// bits from bytes 8..11, stored with an offset of 32.
inline int unpack_scale_q3_k(int j, const uint8_t* s) {
  int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
  return (lo | (hi << 4)) - 32;
}

}  // namespace slim
