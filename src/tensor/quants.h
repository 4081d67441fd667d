// Scalar reference quantize / dequantize / dot product of every supported type.
// These are the "slow twins" of the SIMD kernels in src/kernels/: the fast
// paths are tested against them, and the type table (types.h) points at them.
// Signatures match ToFloatFn / FromFloatFn / VecDotFn.
#pragma once

#include <cstdint>

namespace slim {

#define SLIM_DECLARE_TYPE_FNS(name)                                        \
  void dequantize_row_##name(const void* src, float* dst, int64_t n);      \
  void quantize_row_##name(const float* src, void* dst, int64_t n);

SLIM_DECLARE_TYPE_FNS(f32)
SLIM_DECLARE_TYPE_FNS(f16)
SLIM_DECLARE_TYPE_FNS(bf16)
SLIM_DECLARE_TYPE_FNS(q4_0)
SLIM_DECLARE_TYPE_FNS(q4_1)
SLIM_DECLARE_TYPE_FNS(q5_0)
SLIM_DECLARE_TYPE_FNS(q5_1)
SLIM_DECLARE_TYPE_FNS(q8_0)
SLIM_DECLARE_TYPE_FNS(q8_1)
SLIM_DECLARE_TYPE_FNS(q2_k)
SLIM_DECLARE_TYPE_FNS(q3_k)
SLIM_DECLARE_TYPE_FNS(q4_k)
SLIM_DECLARE_TYPE_FNS(q5_k)
SLIM_DECLARE_TYPE_FNS(q6_k)
SLIM_DECLARE_TYPE_FNS(q8_k)
SLIM_DECLARE_TYPE_FNS(iq4_nl)
SLIM_DECLARE_TYPE_FNS(iq4_xs)
#undef SLIM_DECLARE_TYPE_FNS

// Dot products: x is a row of the first type, y a row of its vec_dot_type.
void vec_dot_f32(int64_t n, float* out, const void* x, const void* y);
void vec_dot_f16(int64_t n, float* out, const void* x, const void* y);
void vec_dot_bf16(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q4_0_q8_0(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q4_1_q8_1(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q5_0_q8_0(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q5_1_q8_1(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q8_0_q8_0(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q8_1_q8_1(int64_t n, float* out, const void* x, const void* y);
void vec_dot_iq4_nl_q8_0(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q2_k_q8_k(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q3_k_q8_k(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q4_k_q8_k(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q5_k_q8_k(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q6_k_q8_k(int64_t n, float* out, const void* x, const void* y);
void vec_dot_q8_k_q8_k(int64_t n, float* out, const void* x, const void* y);
void vec_dot_iq4_xs_q8_k(int64_t n, float* out, const void* x, const void* y);

// Shared by the IQ4 quantizers: weighted least-squares scale of n values (n <= 256)
// on the IQ4_NL code book, indices written to L; and the nearest code book index.
float iq4_fit_scale(const float* x, const float* w, int n, uint8_t* L);
int iq4_nearest_index(float v);

}  // namespace slim
