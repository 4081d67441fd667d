// Phi-3 / Phi-3.5 (mini): the Llama layer with a fused QKV projection
// (`attn_qkv`: rows Q, K, V) and a fused gate+up (`ffn_up`: gate rows first),
// both split in blocks.cpp; NeoX RoPE; sliding window on every layer.
#include "model/blocks.h"

namespace slim {

void pre_norm_layer(const Model& m, int il, ForwardState& st, const LayerInput& in);

static Status phi3_hparams(const GgufFile&, HParams& hp) {
  hp.rope_type = RopeType::Neox;
  if (hp.sliding_window > 0) hp.swa_layer.assign(hp.n_layer, 1);
  return Status();
}

const ArchSpec kArchPhi3 = {"phi3", pre_norm_layer, FfnAct::SiLU, phi3_hparams};

}  // namespace slim
