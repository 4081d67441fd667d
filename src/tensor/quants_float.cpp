// Scalar reference conversions and dot products of the float types F32, F16, BF16.
// Dots accumulate in double like ggml's scalar path, so the reference is the
// most accurate answer and SIMD twins are judged against it.
#include <cstring>

#include "base/fp16.h"
#include "tensor/quants.h"

namespace slim {

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, (size_t)n * sizeof(float));
}
void quantize_row_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, (size_t)n * sizeof(float));
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const uint16_t* s = (const uint16_t*)src;
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
}
void quantize_row_f16(const float* src, void* dst, int64_t n) {
  uint16_t* d = (uint16_t*)dst;
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const uint16_t* s = (const uint16_t*)src;
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
}
void quantize_row_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* d = (uint16_t*)dst;
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
}

void vec_dot_f32(int64_t n, float* out, const void* x, const void* y) {
  const float* a = (const float*)x;
  const float* b = (const float*)y;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)(a[i] * b[i]);
  *out = (float)s;
}

void vec_dot_f16(int64_t n, float* out, const void* x, const void* y) {
  const uint16_t* a = (const uint16_t*)x;
  const uint16_t* b = (const uint16_t*)y;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)(fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]));
  *out = (float)s;
}

void vec_dot_bf16(int64_t n, float* out, const void* x, const void* y) {
  const uint16_t* a = (const uint16_t*)x;
  const uint16_t* b = (const uint16_t*)y;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)(bf16_to_fp32(a[i]) * bf16_to_fp32(b[i]));
  *out = (float)s;
}

}  // namespace slim
