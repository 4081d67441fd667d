// GGUF tensor names, in one place (the names llama.cpp's converters write).
#pragma once

#include <string>

namespace slim::tn {

inline constexpr const char* kTokEmbd = "token_embd.weight";
inline constexpr const char* kOutputNorm = "output_norm.weight";
inline constexpr const char* kOutput = "output.weight";
inline constexpr const char* kRopeFreqs = "rope_freqs.weight";
// Phi-3 LongRoPE: frequency divisors for contexts within / beyond the original length.
inline constexpr const char* kRopeFactorsShort = "rope_factors_short.weight";
inline constexpr const char* kRopeFactorsLong = "rope_factors_long.weight";

// Per-layer tensors: blk.<il>.<suffix>
inline constexpr const char* kAttnNorm = "attn_norm.weight";
inline constexpr const char* kAttnQ = "attn_q.weight";
inline constexpr const char* kAttnK = "attn_k.weight";
inline constexpr const char* kAttnV = "attn_v.weight";
inline constexpr const char* kAttnQkv = "attn_qkv.weight";
inline constexpr const char* kAttnQBias = "attn_q.bias";
inline constexpr const char* kAttnKBias = "attn_k.bias";
inline constexpr const char* kAttnVBias = "attn_v.bias";
inline constexpr const char* kAttnQkvBias = "attn_qkv.bias";
inline constexpr const char* kAttnOut = "attn_output.weight";
inline constexpr const char* kAttnOutBias = "attn_output.bias";
inline constexpr const char* kAttnQNorm = "attn_q_norm.weight";
inline constexpr const char* kAttnKNorm = "attn_k_norm.weight";
inline constexpr const char* kPostAttnNorm = "post_attention_norm.weight";
inline constexpr const char* kFfnNorm = "ffn_norm.weight";
inline constexpr const char* kFfnGate = "ffn_gate.weight";
inline constexpr const char* kFfnUp = "ffn_up.weight";
inline constexpr const char* kFfnDown = "ffn_down.weight";
inline constexpr const char* kPostFfnNorm = "post_ffw_norm.weight";

inline std::string layer(int il, const char* suffix) { return "blk." + std::to_string(il) + "." + suffix; }

}  // namespace slim::tn
