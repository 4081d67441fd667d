// Gemma 2: "sandwich" blocks with a norm before and after both attention and
// FFN, GeGLU FFN, embeddings scaled by sqrt(n_embd), attention-logit and
// final-logit soft-capping, sliding window on even layers. Gemma 3 reuses
// this layer (see gemma3.cpp).
#include <cmath>

#include "gguf/gguf.h"
#include "model/blocks.h"

namespace slim {

void sandwich_norm_layer(const Model& m, int il, ForwardState& st, const LayerInput& in) {
  const HParams& hp = m.hp;
  const LayerWeights& L = m.layers[il];
  const int nt = in.n_tokens, n = hp.n_embd;
  st.cur.resize((size_t)nt * n);
  st.tmp.resize((size_t)nt * n);
  float* x = st.x.data();
  const bool local = hp.swa_layer[il];

  rms_norm_rows(x, L.attn_norm, st.cur.data(), nt, n, hp.rms_eps);
  trace(st, "attn_norm", il, st.cur.data(), nt, n);
  // Local layers of Gemma 3 use their own RoPE base and no linear scaling.
  AttnParams ap{local ? hp.rope_freq_base_swa : hp.rope_freq_base, local ? 1.0f : hp.rope_freq_scale,
                local ? hp.sliding_window : 0, hp.attn_softcap};
  attention_block(m, il, st, in, st.cur.data(), st.tmp.data(), ap);
  rms_norm_rows(st.tmp.data(), L.post_attn_norm, st.tmp.data(), nt, n, hp.rms_eps);
  for (size_t i = 0; i < (size_t)nt * n; ++i) x[i] += st.tmp[i];
  trace(st, "attn_residual", il, x, nt, n);

  rms_norm_rows(x, L.ffn_norm, st.cur.data(), nt, n, hp.rms_eps);
  ffn_block(m, il, st, nt, st.cur.data(), st.tmp.data());
  rms_norm_rows(st.tmp.data(), L.post_ffn_norm, st.tmp.data(), nt, n, hp.rms_eps);
  for (size_t i = 0; i < (size_t)nt * n; ++i) x[i] += st.tmp[i];
  trace(st, "layer_out", il, x, nt, n);
}

static Status gemma2_hparams(const GgufFile& f, HParams& hp) {
  hp.rope_type = RopeType::Neox;
  hp.embd_scale = std::sqrt((float)hp.n_embd);
  // Defaults of the released checkpoints when a converter left the keys out.
  if (!f.find("gemma2.attn_logit_softcapping")) hp.attn_softcap = 50.0f;
  if (!f.find("gemma2.final_logit_softcapping")) hp.final_softcap = 30.0f;
  if (!f.find("gemma2.attention.sliding_window")) hp.sliding_window = 4096;
  for (int il = 0; il < hp.n_layer; ++il) hp.swa_layer[il] = il % 2 == 0;
  // Gemma 2 27B scales queries by 1/sqrt(n_embd / n_head) instead of 1/sqrt(head_dim).
  if (hp.n_layer == 46) hp.attn_scale = 1.0f / std::sqrt((float)hp.n_embd / hp.n_head);
  return Status();
}

const ArchSpec kArchGemma2 = {"gemma2", sandwich_norm_layer, FfnAct::GeluTanh, gemma2_hparams};

}  // namespace slim
