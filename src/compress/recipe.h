// Quantization recipes: the file types `slim quantize` and `slim synth` make
// ("Q4_K_M" ...), their general.file_type numbers (llama.cpp's LLAMA_FTYPE),
// and the per-tensor type rules of the mixes — which tensors get more bits —
// following llama-quantize's usual recipe, so a name means what users expect.
//
// Header-only on purpose: model/synth.cpp, a layer below compress, plans its
// files with the same rules, and must not link slim_compress (which links the
// engine, which links model). Plain data and inline functions, nothing else.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>

#include "tensor/types.h"

namespace slim {

enum class FileTypeId {
  F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L,
  Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS,
};

struct FileType {
  FileTypeId id;
  const char* name;      // as users type it
  GgmlType base;         // the type of every tensor the recipe does not single out
  uint32_t llama_ftype;  // general.file_type
  const char* recipe;    // one line for --help and the README
};

inline constexpr FileType kFileTypes[] = {
    {FileTypeId::F32, "F32", GgmlType::F32, 0, "every matrix F32"},
    {FileTypeId::F16, "F16", GgmlType::F16, 1, "every matrix F16 (the output tensor too)"},
    {FileTypeId::BF16, "BF16", GgmlType::BF16, 32, "every matrix BF16 (the output tensor too)"},
    {FileTypeId::Q8_0, "Q8_0", GgmlType::Q8_0, 7, "Q8_0 everywhere, the output tensor too"},
    {FileTypeId::Q4_0, "Q4_0", GgmlType::Q4_0, 2,
     "Q4_0; output Q6_K; with --imatrix ffn_down of the first 1/8 of the layers Q4_1"},
    {FileTypeId::Q4_1, "Q4_1", GgmlType::Q4_1, 3, "Q4_1; output Q6_K"},
    {FileTypeId::Q5_0, "Q5_0", GgmlType::Q5_0, 8,
     "Q5_0; output Q6_K; with --imatrix ffn_down of the first 1/8 of the layers Q5_1"},
    {FileTypeId::Q5_1, "Q5_1", GgmlType::Q5_1, 9, "Q5_1; output Q6_K"},
    {FileTypeId::Q2_K, "Q2_K", GgmlType::Q2_K, 10,
     "Q2_K; attn_v Q3_K (Q4_K when >= 4 query heads share a KV head), ffn_down and attn_output Q3_K; output Q6_K"},
    {FileTypeId::Q3_K_S, "Q3_K_S", GgmlType::Q3_K, 11, "Q3_K everywhere; output Q6_K"},
    {FileTypeId::Q3_K_M, "Q3_K_M", GgmlType::Q3_K, 12,
     "Q3_K; attn_v Q5_K in layers 0-1 else Q4_K; ffn_down Q5_K in the first 1/16 of the layers else Q4_K; "
     "attn_output Q4_K; output Q6_K"},
    {FileTypeId::Q3_K_L, "Q3_K_L", GgmlType::Q3_K, 13, "Q3_K; attn_v, ffn_down and attn_output Q5_K; output Q6_K"},
    {FileTypeId::Q4_K_S, "Q4_K_S", GgmlType::Q4_K, 14,
     "Q4_K; attn_v of layers 0-3 and ffn_down of the first 1/8 of the layers Q5_K; output Q6_K"},
    {FileTypeId::Q4_K_M, "Q4_K_M", GgmlType::Q4_K, 15,
     "Q4_K; attn_v and ffn_down Q6_K in the more-bits layers (first and last 1/8, every third between); "
     "output Q6_K"},
    {FileTypeId::Q5_K_S, "Q5_K_S", GgmlType::Q5_K, 16, "Q5_K everywhere; output Q6_K"},
    {FileTypeId::Q5_K_M, "Q5_K_M", GgmlType::Q5_K, 17,
     "Q5_K; attn_v and ffn_down Q6_K in the more-bits layers; output Q6_K"},
    {FileTypeId::Q6_K, "Q6_K", GgmlType::Q6_K, 18, "Q6_K everywhere"},
    {FileTypeId::IQ4_NL, "IQ4_NL", GgmlType::IQ4_NL, 25,
     "IQ4_NL; without --imatrix ffn_down of the first 1/8 of the layers Q5_K; attn_v Q5_K when >= 4 query "
     "heads share a KV head; output Q6_K"},
    {FileTypeId::IQ4_XS, "IQ4_XS", GgmlType::IQ4_XS, 30, "as IQ4_NL, with IQ4_XS as the base type"},
};

inline const FileType* find_file_type(const std::string& name) {
  std::string upper = name;
  for (char& c : upper) c = (char)std::toupper((unsigned char)c);
  for (const FileType& f : kFileTypes)
    if (upper == f.name) return &f;
  return nullptr;
}

inline std::string file_type_names() {
  std::string all;
  for (const FileType& f : kFileTypes) all += std::string(all.empty() ? "" : ", ") + f.name;
  return all;
}

// What the rules look at besides the tensor itself.
struct RecipeModel {
  int n_gqa = 1;        // query heads per KV head
  int n_expert = 0;     // experts per MoE layer (0: dense)
  int n_layer = 0;      // blocks (80: the 70B-class rule of attn_v)
  bool has_output = true;  // an output.weight exists (else token_embd is the LM head)
  bool has_imatrix = false;
};

// One tensor: name, row length, and for layer tensors its layer index and the
// number of layers holding a tensor of the same kind (attn_v, ffn_down).
struct RecipeTensor {
  std::string name;
  int64_t ne0 = 0;
  int il = -1;
  int n = 0;
};

// The layer index of "blk.N.*", else -1.
inline int recipe_layer_of(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit((unsigned char)name[i])) return -1;
  for (; i < name.size() && std::isdigit((unsigned char)name[i]); ++i) v = v * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? v : -1;
}

// Whether a tensor is quantized at all: matrices only; norms, MoE router
// gates, positional/token-type embeddings and a few small special matrices
// stay as they are (they are tiny and sensitive).
inline bool recipe_quantizable(const std::string& name, int n_dims) {
  if (n_dims < 2) return false;
  for (const char* keep : {"_norm.weight", "ffn_gate_inp.weight", "position_embd.weight", "token_types.weight",
                           "ssm_conv1d.weight", "attn_rel_b.weight", "altup", "laurel"})
    if (name.find(keep) != std::string::npos) return false;
  return true;
}

// llama-quantize's "more bits" layers: the first and last eighth, and every
// third layer in between.
inline bool recipe_more_bits(int il, int n) { return il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2; }

// The LM head: output.weight, or token_embd.weight when the embeddings are tied.
inline bool recipe_is_output(const RecipeModel& m, const std::string& name) {
  return name == "output.weight" || (!m.has_output && name == "token_embd.weight");
}

// The type the mix gives a quantizable tensor, before the row-length fallback.
inline GgmlType recipe_type(const FileType& ft, const RecipeModel& m, const RecipeTensor& t) {
  using F = FileTypeId;
  using G = GgmlType;
  const F f = ft.id;
  GgmlType ty = ft.base;
  if (!type_traits(ft.base).is_quantized) return ty;  // F32 / F16 / BF16: every matrix alike
  const std::string& name = t.name;
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (recipe_is_output(m, name)) {
    // rows that cannot hold a super-block: Q8_0; otherwise Q6_K unless the file is Q8_0
    if (t.ne0 % 256 != 0) return G::Q8_0;
    return ft.base == G::Q8_0 ? G::Q8_0 : G::Q6_K;
  }
  if (name == "token_embd.weight") return ty;
  if (has("attn_v.weight")) {
    if (f == F::Q2_K) ty = m.n_gqa >= 4 ? G::Q4_K : G::Q3_K;
    else if (f == F::Q3_K_M) ty = t.il < 2 ? G::Q5_K : G::Q4_K;
    else if (f == F::Q3_K_L) ty = G::Q5_K;
    else if ((f == F::IQ4_NL || f == F::IQ4_XS) && m.n_gqa >= 4) ty = G::Q5_K;
    else if ((f == F::Q4_K_M || f == F::Q5_K_M) && recipe_more_bits(t.il, t.n)) ty = G::Q6_K;
    else if (f == F::Q4_K_S && t.il < 4) ty = G::Q5_K;
    // 70B-class models share one V among 8 heads: the tensor is small, more bits are cheap
    if (m.n_layer == 80 && (ty == G::Q3_K || ty == G::Q4_K)) ty = G::Q5_K;
    if (m.n_expert == 8) ty = G::Q8_0;
  } else if (has("attn_k.weight")) {
    if (m.n_expert == 8) ty = G::Q8_0;
  } else if (has("ffn_down")) {
    if (f == F::Q2_K) ty = G::Q3_K;
    else if (f == F::Q3_K_M) ty = t.il < t.n / 16 ? G::Q5_K : G::Q4_K;
    else if (f == F::Q3_K_L) ty = G::Q5_K;
    else if (f == F::Q4_K_M) { if (recipe_more_bits(t.il, t.n)) ty = G::Q6_K; }
    else if ((f == F::IQ4_NL || f == F::IQ4_XS) && t.il < t.n / 8 && !m.has_imatrix) ty = G::Q5_K;
    else if (f == F::Q5_K_M) { if (recipe_more_bits(t.il, t.n)) ty = G::Q6_K; }
    else if (f == F::Q4_K_S) { if (t.il < t.n / 8) ty = G::Q5_K; }
    // with an imatrix the first ffn_down layers can still go wrong in the symmetric types
    else if ((f == F::Q4_0 || f == F::Q5_0) && m.has_imatrix && t.il < t.n / 8) ty = f == F::Q4_0 ? G::Q4_1 : G::Q5_1;
  } else if (has("attn_output.weight")) {
    if (m.n_expert == 8) {
      if (f == F::Q2_K || f == F::Q3_K_S || f == F::Q3_K_M || f == F::IQ4_NL || f == F::Q4_K_S || f == F::Q4_K_M ||
          f == F::IQ4_XS)
        ty = G::Q5_K;
    } else {
      if (f == F::Q2_K) ty = G::Q3_K;
      else if (f == F::Q3_K_M) ty = G::Q4_K;
      else if (f == F::Q3_K_L) ty = G::Q5_K;
    }
  } else if (has("attn_qkv.weight")) {  // fused QKV (phi3): the V part wants the bits
    if (f == F::Q3_K_M || f == F::Q3_K_L) ty = G::Q4_K;
    else if (f == F::Q4_K_M) ty = G::Q5_K;
    else if (f == F::Q5_K_M) ty = G::Q6_K;
  }
  return ty;
}

// Rows whose length the type's block does not divide: llama-quantize's
// replacements (super-block types fall back to a 32-value type of similar
// size; F16 when not even that fits). Returns t when it fits.
inline GgmlType recipe_fallback(GgmlType t, int64_t ne0) {
  const int64_t bs = type_traits(t).block_size;
  if (bs <= 0 || ne0 % bs == 0) return t;
  GgmlType f = GgmlType::F16;
  switch (t) {
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::IQ4_XS: f = GgmlType::IQ4_NL; break;
    case GgmlType::Q4_K: f = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: f = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: f = GgmlType::Q8_0; break;
    default: break;
  }
  return ne0 % type_traits(f).block_size == 0 ? f : GgmlType::F16;
}

}  // namespace slim
