// Tensor element types as numbered by GGUF/ggml, and the one-row-per-type
// table of traits every kernel and loader consults: block size, bytes per
// block, dequantize, quantize, dot product and the activation type of that dot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace slim {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
  COUNT = 40,
};

// dequantize n values (n a multiple of block_size)
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
// quantize n values (n a multiple of block_size); the reference rounding of ggml
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// dot product of n values: x is a row of this type, y a row of vec_dot_type
using VecDotFn = void (*)(int64_t n, float* out, const void* x, const void* y);

struct TypeTraits {
  const char* name = nullptr;    // "Q4_K", as GGUF tools print it
  int64_t block_size = 0;        // values per block
  size_t type_size = 0;          // bytes per block
  bool is_quantized = false;
  ToFloatFn to_float = nullptr;  // null when slim cannot read the type
  FromFloatFn from_float = nullptr;
  VecDotFn vec_dot = nullptr;
  GgmlType vec_dot_type = GgmlType::F32;  // activations are converted to this before vec_dot
};

// Scalar reference table. Always built, never changed by dispatch.
const TypeTraits& type_traits(GgmlType t);
bool type_known(uint32_t raw);            // a GGUF type id slim knows the layout of
bool type_supported(GgmlType t);          // known and has to_float/vec_dot
const char* type_name(GgmlType t);
std::optional<GgmlType> type_from_name(const std::string& name);  // case-insensitive
size_t row_size(GgmlType t, int64_t n);   // bytes of n values (n multiple of block_size)

}  // namespace slim
