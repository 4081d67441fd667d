// The trainable model: F32 master weights of one llama / qwen2 / qwen3 model
// in one flat vector, so the optimizer, gradient clipping and checkpoints are
// single loops over plain arrays, and the forward/backward (train/forward.h)
// index the same offsets into the weights and into the gradients.
//
//   TrainModel m = *init_from_gguf("stories260K.gguf");       // continue training / student
//   TrainModel s = *init_from_shape(*parse_shape("dim=64,layers=3,heads=4,kv_heads=2,ffn=128"),
//                                   vocab_file, seed);         // from scratch
//   export_gguf(m, vocab_file, {.path = "out.gguf", .type = "Q8_0"});
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/hparams.h"

namespace slim {

class GgufFile;

namespace train {

// Everything the training forward needs to know about a model's shape.
struct Shape {
  std::string arch = "llama";     // "llama", "qwen2" or "qwen3"
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;               // may differ from n_embd / n_head (pruned heads, qwen3)
  int n_ff = 0;
  int n_rot = 0;                  // rotated dims per head (== head_dim unless the file says otherwise)
  int n_ctx_train = 2048;         // <arch>.context_length written on export
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  RopeType rope_type = RopeType::Normal;  // llama: Normal; qwen2/qwen3: Neox
  bool tied = true;               // no output.weight: the LM head is token_embd
  bool qkv_bias = false;          // attn_{q,k,v}.bias (qwen2)
  bool qk_norm = false;           // attn_{q,k}_norm.weight, per head (qwen3)
  int n_embd_q() const { return n_head * head_dim; }
  int n_embd_kv() const { return n_head_kv * head_dim; }
};

// "dim=64,layers=5,heads=8,kv_heads=4,ffn=172[,head_dim=8][,arch=qwen2][,tied=0][,ctx=512]
//  [,rope_theta=10000][,eps=1e-5]" with n_vocab (and the defaults of arch) from the vocabulary
// source. Errors name the bad key or a shape that does not divide (dim % heads, heads % kv_heads,
// odd head_dim).
Result<Shape> parse_shape(const std::string& spec, int n_vocab);
// Rejects shapes the forward cannot run; the message says why.
Status check_shape(const Shape& s);

// One tensor inside the flat vectors: GGUF name, shape (ne[0] the row length),
// offset and count in floats. Matrices (2 dims) take weight decay; norms and
// biases do not.
struct Param {
  std::string name;
  std::vector<int64_t> ne;
  size_t offset = 0;
  size_t n = 0;
  bool decay = false;
};

constexpr size_t kNone = (size_t)-1;  // offset of an absent tensor

// Offsets of one layer's tensors (kNone when the family has no such tensor).
struct LayerOffsets {
  size_t attn_norm = kNone, wq = kNone, wk = kNone, wv = kNone, bq = kNone, bk = kNone, bv = kNone;
  size_t q_norm = kNone, k_norm = kNone, wo = kNone;
  size_t ffn_norm = kNone, ffn_gate = kNone, ffn_up = kNone, ffn_down = kNone;
};

struct TrainModel {
  Shape shape;
  std::vector<Param> params;        // in GGUF (export) order
  std::vector<float> w;             // every parameter, params[i] at w[params[i].offset]
  size_t tok_embd = kNone, output_norm = kNone, output = kNone;  // output: kNone when tied
  std::vector<LayerOffsets> layers;
  // Llama 3.1 frequency divisors (rope_freqs.weight): a constant, not trained, exported as read.
  std::vector<float> rope_freqs;

  size_t n_params() const { return w.size(); }
  const Param* find(const std::string& name) const;
};

// Lays out the tensors of `s` (the same names and order llama.cpp's converters
// use) and sizes w, zero-filled.
TrainModel layout(const Shape& s);

// Random initialisation, the same values for a seed on every machine: matrices
// N(0, 0.02) (the two residual projections attn_output / ffn_down scaled by
// 1/sqrt(2 n_layer), as GPT-2), token embeddings N(0, 0.02), norms 1, biases 0.
void init_random(TrainModel& m, uint64_t seed);

// Reads a GGUF model (any tensor type slim can dequantize) into F32 master
// weights. Errors for families or features training does not support (fused
// QKV, soft-capping, GeGLU, sliding windows, ...), naming the feature.
Result<TrainModel> init_from_gguf(const std::string& path);
Result<TrainModel> init_from_shape(const Shape& s, uint64_t seed);

struct ExportOptions {
  std::string path;               // written to PATH.tmp.* and renamed
  std::string type = "F32";       // F32, or any file type `slim quantize` makes (Q8_0, Q4_K_M, ...)
  std::string name;               // general.name; empty: keep the vocabulary source's
  int n_threads = 0;              // for quantizing
};

// Writes the model as a GGUF that `slim run` and llama.cpp load: the
// tokenizer.*, chat template and general.* keys of `vocab_source` (whose
// vocabulary must have shape.n_vocab tokens), the <arch>.* hyperparameters
// of the shape (key_length / value_length / rope.dimension_count written
// explicitly), the weights as F32, then quantized when a type is asked for.
Status export_gguf(const TrainModel& m, const GgufFile& vocab_source, const ExportOptions& opt);

}  // namespace train
}  // namespace slim
