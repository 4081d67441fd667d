// Random-weight models with the exact shapes of known ones: `slim synth`.
//
// A synthetic file has the tensor shapes, hyperparameters and full-size
// vocabulary of a real model (SmolLM2-135M, Qwen2.5-0.5B, Llama-3.2-1B,
// Qwen2.5-1.5B, ...) but weights drawn at random, so it runs at exactly the
// real model's speed while saying nothing meaningful — random by design, and
// general.name says so. It is a valid GGUF v3 file (alignment 32, every key
// llama.cpp needs, a SentencePiece-style "llama" vocabulary with byte tokens),
// so other engines can run the same file side by side for speed comparisons.
//
//   SynthShape s = *find_synth_preset("qwen2.5-0.5b");
//   auto plan = plan_synth(s, "Q4_K_M");      // tensors and types, no data (cheap)
//   write_synth(*plan, {.path = "q.gguf", .seed = 1}, pool);
//
// Quantization mixes ("*_K_M" etc.) are those of `slim quantize`, which follow
// llama-quantize's usual recipe: one set of rules, in compress/recipe.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/types.h"

namespace slim {

class ThreadPool;

// The shape of a model family member: everything the generated file's metadata
// and tensor shapes are made of.
struct SynthShape {
  std::string name;          // preset name, e.g. "qwen2.5-0.5b"
  std::string arch;          // "llama" or "qwen2"
  int n_vocab = 0;
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_ff = 0;
  int n_ctx = 2048;          // <arch>.context_length
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied = true;          // no output.weight: the LM head is token_embd
  bool qkv_bias = false;     // attn_{q,k,v}.bias (qwen2)
  bool llama3_rope = false;  // rope_freqs.weight with Llama 3.1 factors (factor 32, low 1, high 4, orig 8192)
  int head_dim() const { return n_embd / n_head; }
};

// Known presets (names as `--like` takes them), and the lookup; null when unknown.
const std::vector<SynthShape>& synth_presets();
const SynthShape* find_synth_preset(const std::string& name);

// What fills a tensor.
enum class SynthFill { Normal, Ones, Bias, RopeFreqs };

struct SynthTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;  // ne[0] = row length
  SynthFill fill;
  size_t nbytes;
};

// A complete description of the file to write: shape, file type, tensors.
struct SynthPlan {
  SynthShape shape;
  std::string ftype;         // "Q4_K_M", upper case
  uint32_t file_type = 0;    // general.file_type (llama.cpp's LLAMA_FTYPE numbering)
  std::vector<SynthTensor> tensors;
  size_t data_bytes() const;
  int64_t n_params() const;
};

// File types `--type` accepts, e.g. "F32", "Q8_0", "Q4_K_M".
std::vector<std::string> synth_file_types();

// Chooses every tensor's type for the file type (case-insensitive) without
// generating anything: the dry run the tests use on the big presets.
Result<SynthPlan> plan_synth(const SynthShape& shape, const std::string& ftype);

struct SynthOptions {
  std::string path;
  uint64_t seed = 1;
  float std = 0.02f;  // standard deviation of the matrix weights (norm weights are 1)
};

// Generates the weights (rows in parallel on the pool, the same bytes for any
// thread count) and writes the GGUF file, streaming one tensor at a time.
Status write_synth(const SynthPlan& plan, const SynthOptions& opt, ThreadPool& pool);

}  // namespace slim
