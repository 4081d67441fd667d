// Llama family: Llama 2/3, Mistral, SmolLM, TinyLlama. Pre-norm blocks:
// x += attn(rms_norm(x)); x += ffn(rms_norm(x)), SiLU-gated FFN, RoPE on
// adjacent pairs. Qwen2, Qwen3 and Phi-3 use this same layer (see their files).
#include "model/blocks.h"

namespace slim {

void pre_norm_layer(const Model& m, int il, ForwardState& st, const LayerInput& in) {
  const HParams& hp = m.hp;
  const LayerWeights& L = m.layers[il];
  const int nt = in.n_tokens, n = hp.n_embd;
  st.cur.resize((size_t)nt * n);
  st.tmp.resize((size_t)nt * n);
  float* x = st.x.data();

  rms_norm_rows(x, L.attn_norm, st.cur.data(), nt, n, hp.rms_eps);
  trace(st, "attn_norm", il, st.cur.data(), nt, n);
  const int window = hp.swa_layer[il] ? hp.sliding_window : 0;
  attention_block(m, il, st, in, st.cur.data(), st.tmp.data(), {hp.rope_freq_base, hp.rope_freq_scale, window, 0});
  for (size_t i = 0; i < (size_t)nt * n; ++i) x[i] += st.tmp[i];
  trace(st, "attn_residual", il, x, nt, n);

  rms_norm_rows(x, L.ffn_norm, st.cur.data(), nt, n, hp.rms_eps);
  trace(st, "ffn_norm", il, st.cur.data(), nt, n);
  ffn_block(m, il, st, nt, st.cur.data(), st.tmp.data());
  for (size_t i = 0; i < (size_t)nt * n; ++i) x[i] += st.tmp[i];
  trace(st, "layer_out", il, x, nt, n);
}

static Status llama_hparams(const GgufFile&, HParams& hp) {
  hp.rope_type = RopeType::Normal;
  return Status();
}

const ArchSpec kArchLlama = {"llama", pre_norm_layer, FfnAct::SiLU, llama_hparams};

}  // namespace slim
