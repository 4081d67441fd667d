// Qwen3 (dense): the Llama layer with per-head RMS norms of Q and K before
// RoPE (`attn_q_norm`/`attn_k_norm`), no biases, NeoX RoPE.
#include "model/blocks.h"

namespace slim {

void pre_norm_layer(const Model& m, int il, ForwardState& st, const LayerInput& in);

static Status qwen3_hparams(const GgufFile&, HParams& hp) {
  hp.rope_type = RopeType::Neox;
  return Status();
}

const ArchSpec kArchQwen3 = {"qwen3", pre_norm_layer, FfnAct::SiLU, qwen3_hparams};

}  // namespace slim
