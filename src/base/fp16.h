// Half-precision conversions (IEEE binary16 and bfloat16), round to nearest even
// like the hardware conversions (F16C, AVX512-BF16) that GGUF producers use.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace slim {

inline float fp32_from_bits(uint32_t w) { float f; std::memcpy(&f, &w, 4); return f; }
inline uint32_t fp32_to_bits(float f) { uint32_t w; std::memcpy(&w, &f, 4); return w; }

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24 is exact in float
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return fp32_from_bits(sign | 0x7f800000u | (mant << 13));
  return fp32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = fp32_to_bits(f);
  const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
  uint32_t u = bits & 0x7fffffffu;
  if (u > 0x7f800000u) return sign | 0x7e00u;             // NaN
  if (u >= 0x477ff000u) return sign | 0x7c00u;            // rounds to >= 65520: inf
  if (u < 0x38800000u) {                                  // below 2^-14: subnormal half
    float a = fp32_from_bits(u);
    return sign | (uint16_t)std::nearbyint(a * 16777216.0f);  // RNE in the default mode
  }
  u += 0x0fffu + ((u >> 13) & 1u);                        // round mantissa to 10 bits, ties to even
  return sign | (uint16_t)((u >> 13) - (112u << 10));
}

inline float bf16_to_fp32(uint16_t h) { return fp32_from_bits((uint32_t)h << 16); }

inline uint16_t fp32_to_bf16(float f) {
  uint32_t u = fp32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace slim
