// The scalar type table: one row per GGUF type id, with sizes for every type
// slim knows the layout of and function pointers for the ones it can compute.
#include "tensor/types.h"

#include <array>
#include <cctype>

#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {
namespace {

using T = GgmlType;

std::array<TypeTraits, (size_t)T::COUNT> build_table() {
  std::array<TypeTraits, (size_t)T::COUNT> t{};
  auto row = [&](T id, const char* name, int64_t bs, size_t ts, bool q, ToFloatFn tf = nullptr,
                 FromFloatFn ff = nullptr, VecDotFn vd = nullptr, T vdt = T::F32) {
    t[(size_t)id] = TypeTraits{name, bs, ts, q, tf, ff, vd, vdt};
  };
  row(T::F32, "F32", 1, 4, false, dequantize_row_f32, quantize_row_f32, vec_dot_f32, T::F32);
  row(T::F16, "F16", 1, 2, false, dequantize_row_f16, quantize_row_f16, vec_dot_f16, T::F16);
  row(T::BF16, "BF16", 1, 2, false, dequantize_row_bf16, quantize_row_bf16, vec_dot_bf16, T::BF16);
  row(T::Q4_0, "Q4_0", kQK, sizeof(BlockQ4_0), true, dequantize_row_q4_0, quantize_row_q4_0,
      vec_dot_q4_0_q8_0, T::Q8_0);
  row(T::Q4_1, "Q4_1", kQK, sizeof(BlockQ4_1), true, dequantize_row_q4_1, quantize_row_q4_1,
      vec_dot_q4_1_q8_1, T::Q8_1);
  row(T::Q5_0, "Q5_0", kQK, sizeof(BlockQ5_0), true, dequantize_row_q5_0, quantize_row_q5_0,
      vec_dot_q5_0_q8_0, T::Q8_0);
  row(T::Q5_1, "Q5_1", kQK, sizeof(BlockQ5_1), true, dequantize_row_q5_1, quantize_row_q5_1,
      vec_dot_q5_1_q8_1, T::Q8_1);
  row(T::Q8_0, "Q8_0", kQK, sizeof(BlockQ8_0), true, dequantize_row_q8_0, quantize_row_q8_0,
      vec_dot_q8_0_q8_0, T::Q8_0);
  row(T::Q8_1, "Q8_1", kQK, sizeof(BlockQ8_1), true, dequantize_row_q8_1, quantize_row_q8_1,
      vec_dot_q8_1_q8_1, T::Q8_1);
  row(T::Q2_K, "Q2_K", kQKK, sizeof(BlockQ2_K), true, dequantize_row_q2_k, quantize_row_q2_k,
      vec_dot_q2_k_q8_k, T::Q8_K);
  row(T::Q3_K, "Q3_K", kQKK, sizeof(BlockQ3_K), true, dequantize_row_q3_k, quantize_row_q3_k,
      vec_dot_q3_k_q8_k, T::Q8_K);
  row(T::Q4_K, "Q4_K", kQKK, sizeof(BlockQ4_K), true, dequantize_row_q4_k, quantize_row_q4_k,
      vec_dot_q4_k_q8_k, T::Q8_K);
  row(T::Q5_K, "Q5_K", kQKK, sizeof(BlockQ5_K), true, dequantize_row_q5_k, quantize_row_q5_k,
      vec_dot_q5_k_q8_k, T::Q8_K);
  row(T::Q6_K, "Q6_K", kQKK, sizeof(BlockQ6_K), true, dequantize_row_q6_k, quantize_row_q6_k,
      vec_dot_q6_k_q8_k, T::Q8_K);
  row(T::Q8_K, "Q8_K", kQKK, sizeof(BlockQ8_K), true, dequantize_row_q8_k, quantize_row_q8_k,
      vec_dot_q8_k_q8_k, T::Q8_K);
  row(T::IQ4_NL, "IQ4_NL", kQK, sizeof(BlockIQ4_NL), true, dequantize_row_iq4_nl,
      quantize_row_iq4_nl, vec_dot_iq4_nl_q8_0, T::Q8_0);
  row(T::IQ4_XS, "IQ4_XS", kQKK, sizeof(BlockIQ4_XS), true, dequantize_row_iq4_xs,
      quantize_row_iq4_xs, vec_dot_iq4_xs_q8_k, T::Q8_K);

  // Known layouts slim cannot compute yet: sizes only, so a reader can still
  // validate a file that contains them and report the type by name.
  row(T::IQ2_XXS, "IQ2_XXS", kQKK, 2 + 64, true);
  row(T::IQ2_XS, "IQ2_XS", kQKK, 2 + 64 + 8, true);
  row(T::IQ2_S, "IQ2_S", kQKK, 2 + 64 + 8 + 8, true);
  row(T::IQ3_XXS, "IQ3_XXS", kQKK, 2 + 96, true);
  row(T::IQ3_S, "IQ3_S", kQKK, 2 + 64 + 8 + 32 + 4, true);
  row(T::IQ1_S, "IQ1_S", kQKK, 2 + 32 + 16, true);
  row(T::IQ1_M, "IQ1_M", kQKK, 32 + 16 + 8, true);
  row(T::TQ1_0, "TQ1_0", kQKK, 48 + 4 + 2, true);
  row(T::TQ2_0, "TQ2_0", kQKK, 64 + 2, true);
  row(T::MXFP4, "MXFP4", kQK, 1 + 16, true);
  row(T::I8, "I8", 1, 1, false);
  row(T::I16, "I16", 1, 2, false);
  row(T::I32, "I32", 1, 4, false);
  row(T::I64, "I64", 1, 8, false);
  row(T::F64, "F64", 1, 8, false);
  return t;
}

const std::array<TypeTraits, (size_t)T::COUNT>& table() {
  static const auto t = build_table();
  return t;
}

const TypeTraits kUnknown{};

}  // namespace

const TypeTraits& type_traits(GgmlType t) {
  if ((uint32_t)t >= (uint32_t)T::COUNT) return kUnknown;
  return table()[(size_t)t];
}

bool type_known(uint32_t raw) {
  return raw < (uint32_t)T::COUNT && table()[raw].block_size > 0;
}

bool type_supported(GgmlType t) {
  const TypeTraits& tr = type_traits(t);
  return tr.block_size > 0 && tr.to_float != nullptr && tr.vec_dot != nullptr;
}

const char* type_name(GgmlType t) {
  const TypeTraits& tr = type_traits(t);
  return tr.name ? tr.name : "unknown";
}

std::optional<GgmlType> type_from_name(const std::string& name) {
  for (uint32_t i = 0; i < (uint32_t)T::COUNT; ++i) {
    const char* n = table()[i].name;
    if (!n) continue;
    size_t k = 0;
    for (; n[k] && k < name.size(); ++k)
      if (std::toupper((unsigned char)name[k]) != n[k]) break;
    if (!n[k] && k == name.size()) return (GgmlType)i;
  }
  return std::nullopt;
}

size_t row_size(GgmlType t, int64_t n) {
  const TypeTraits& tr = type_traits(t);
  if (tr.block_size <= 0) return 0;
  return (size_t)(n / tr.block_size) * tr.type_size;
}

}  // namespace slim
