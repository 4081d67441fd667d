// Building blocks shared by the family layer functions: the self-attention
// block (any mix of fused QKV, biases, per-head Q/K norms, sliding window,
// soft-capping) and the gated FFN block.
#pragma once

#include "model/arch.h"
#include "model/ops.h"

namespace slim {

// What a layer function gets besides the model and state.
struct LayerInput {
  const Batch* batch;
  int n_tokens;
};

struct AttnParams {
  float freq_base;
  float freq_scale;
  int window;      // 0: full causal attention; else a query at p sees keys p-window+1 .. p
  float softcap;   // 0: off
};

// out = W_o · attention(in), in and out [n_tokens][n_embd]. Writes this layer's K/V cells.
void attention_block(const Model& m, int il, ForwardState& st, const LayerInput& in, const float* x,
                     float* out, const AttnParams& p);

// out = W_down · (act(W_gate x) * W_up x); phi3's fused gate+up is split here.
void ffn_block(const Model& m, int il, ForwardState& st, int n_tokens, const float* x, float* out);

// y = rms_norm(x) * w for each token row
void rms_norm_rows(const float* x, const Weight& w, float* y, int n_tokens, int n, float eps);

// Trace hook helper.
inline void trace(ForwardState& st, const char* name, int il, const float* d, int n_tokens, int n) {
  if (st.trace) st.trace(st.trace_user, name, il, d, n_tokens, n);
}

}  // namespace slim
