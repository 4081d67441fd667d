// Qwen2 / Qwen2.5: the Llama layer with Q/K/V biases (loaded when present)
// and NeoX RoPE (pairs (x_i, x_{i+n_rot/2})).
#include "model/blocks.h"

namespace slim {

void pre_norm_layer(const Model& m, int il, ForwardState& st, const LayerInput& in);

static Status qwen2_hparams(const GgufFile&, HParams& hp) {
  hp.rope_type = RopeType::Neox;
  return Status();
}

const ArchSpec kArchQwen2 = {"qwen2", pre_norm_layer, FfnAct::SiLU, qwen2_hparams};

}  // namespace slim
