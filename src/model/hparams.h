// Hyperparameters of a model, read from `<arch>.*` GGUF metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace slim {

class GgufFile;

enum class RopeType { Normal, Neox };  // pairs (x0,x1),(x2,x3)… or (x_i, x_{i+n_rot/2})

struct HParams {
  std::string arch;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;     // key length per head
  int head_dim_v = 0;   // value length per head
  int n_ff = 0;
  int n_rot = 0;        // rotated dims per head
  float rms_eps = 1e-5f;
  RopeType rope_type = RopeType::Normal;
  float rope_freq_base = 10000.0f;
  float rope_freq_base_swa = 10000.0f;  // local (sliding-window) layers
  float rope_freq_scale = 1.0f;         // 1 / linear scaling factor
  int n_ctx_orig = 0;                   // rope.scaling.original_context_length
  float rope_attn_factor = 1.0f;        // rope.scaling.attn_factor: scales cos/sin (Phi-3 LongRoPE)
  float attn_scale = 0;                 // query scale; 0 means 1/sqrt(head_dim)
  float attn_softcap = 0;               // 0 = off
  float final_softcap = 0;              // 0 = off
  float embd_scale = 1.0f;              // gemma: sqrt(n_embd)
  int sliding_window = 0;               // 0 = none
  std::vector<uint8_t> swa_layer;       // per layer: 1 when the layer uses the sliding window

  int n_embd_q() const { return n_head * head_dim; }
  int n_embd_k() const { return n_head_kv * head_dim; }
  int n_embd_v() const { return n_head_kv * head_dim_v; }
};

// Reads the keys common to every family. Family-specific keys are read by the
// architecture's own hook (see arch.h).
Status read_common_hparams(const GgufFile& f, HParams& hp);

}  // namespace slim
