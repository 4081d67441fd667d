// Gemma 3 (text): Gemma 2's sandwich layer plus per-head Q/K norms, no
// soft-capping, and local/global layers: a layer is local (sliding window,
// RoPE base `rope.freq_base_swa`) when il % pattern < pattern - 1.
#include <cmath>

#include "gguf/gguf.h"
#include "model/blocks.h"

namespace slim {

void sandwich_norm_layer(const Model& m, int il, ForwardState& st, const LayerInput& in);

static Status gemma3_hparams(const GgufFile& f, HParams& hp) {
  hp.rope_type = RopeType::Neox;
  hp.embd_scale = std::sqrt((float)hp.n_embd);
  hp.attn_softcap = 0;
  hp.final_softcap = 0;
  // Released GGUFs carry no pattern key; Gemma 3 has five local layers per global one.
  int pattern = (int)f.get_int("gemma3.attention.sliding_window_pattern").value_or(6);
  if (pattern <= 0) return Status::error(format("bad gemma3.attention.sliding_window_pattern %d", pattern));
  for (int il = 0; il < hp.n_layer; ++il) hp.swa_layer[il] = hp.sliding_window > 0 && il % pattern < pattern - 1;
  // Gemma 3 27B scales queries by 1/sqrt(n_embd / n_head).
  if (hp.n_layer == 62) hp.attn_scale = 1.0f / std::sqrt((float)hp.n_embd / hp.n_head);
  return Status();
}

const ArchSpec kArchGemma3 = {"gemma3", sandwich_norm_layer, FfnAct::GeluTanh, gemma3_hparams};

}  // namespace slim
