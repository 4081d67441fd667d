// The architecture registry: one ArchSpec a supported `general.architecture`,
// defined in that family's own file. A spec names its block function (the
// readable per-layer forward) and reads the family's own hyperparameters.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace slim {

struct LayerInput;

// Runs one transformer layer in place on st.x ([n_tokens][n_embd]).
using LayerFn = void (*)(const Model& m, int il, ForwardState& st, const LayerInput& in);

enum class FfnAct { SiLU, GeluTanh };

struct ArchSpec {
  const char* name;
  LayerFn layer;
  FfnAct ffn_act;
  // Family defaults and keys beyond the common ones; may reject the file.
  Status (*read_hparams)(const GgufFile& f, HParams& hp);
};

const ArchSpec* find_arch(const std::string& name);

// Defined in each family's file.
extern const ArchSpec kArchLlama, kArchQwen2, kArchQwen3, kArchPhi3, kArchGemma2, kArchGemma3;

}  // namespace slim
