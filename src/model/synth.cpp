// Random-weight GGUF files with the shapes of known models (see synth.h).
#include "model/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <memory>

#include "compress/recipe.h"
#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "model/tensor_names.h"

namespace slim {

const std::vector<SynthShape>& synth_presets() {
  // Shapes from each model's published config.json (hidden_size, num_hidden_layers,
  // num_attention_heads, num_key_value_heads, intermediate_size, vocab_size,
  // rope_theta, rms_norm_eps, tie_word_embeddings).
  static const std::vector<SynthShape> presets = [] {
    std::vector<SynthShape> v;
    auto add = [&](const char* name, const char* arch, int vocab, int layers, int embd, int heads, int kv, int ff,
                   int ctx, float theta, float eps, bool tied, bool bias, bool llama3) {
      SynthShape s;
      s.name = name, s.arch = arch, s.n_vocab = vocab, s.n_layer = layers, s.n_embd = embd, s.n_head = heads;
      s.n_head_kv = kv, s.n_ff = ff, s.n_ctx = ctx, s.rope_theta = theta, s.rms_eps = eps, s.tied = tied;
      s.qkv_bias = bias, s.llama3_rope = llama3;
      v.push_back(s);
    };
    add("smollm2-135m", "llama", 49152, 30, 576, 9, 3, 1536, 8192, 100000.0f, 1e-5f, true, false, false);
    add("smollm2-360m", "llama", 49152, 32, 960, 15, 5, 2560, 8192, 100000.0f, 1e-5f, true, false, false);
    add("qwen2.5-0.5b", "qwen2", 151936, 24, 896, 14, 2, 4864, 32768, 1000000.0f, 1e-6f, true, true, false);
    add("qwen2.5-1.5b", "qwen2", 151936, 28, 1536, 12, 2, 8960, 32768, 1000000.0f, 1e-6f, true, true, false);
    add("qwen2.5-3b", "qwen2", 151936, 36, 2048, 16, 2, 11008, 32768, 1000000.0f, 1e-6f, true, true, false);
    add("llama-3.2-1b", "llama", 128256, 16, 2048, 32, 8, 8192, 131072, 500000.0f, 1e-5f, true, false, true);
    add("llama-3.2-3b", "llama", 128256, 28, 3072, 24, 8, 8192, 131072, 500000.0f, 1e-5f, true, false, true);
    // A tiny llama for tests and quick experiments (K-quant friendly: rows of 256).
    add("tiny", "llama", 1024, 2, 256, 4, 2, 512, 2048, 10000.0f, 1e-5f, false, false, false);
    return v;
  }();
  return presets;
}

const SynthShape* find_synth_preset(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = (char)std::tolower((unsigned char)c);
  for (const SynthShape& s : synth_presets())
    if (s.name == lower) return &s;
  return nullptr;
}

size_t SynthPlan::data_bytes() const {
  size_t b = 0;
  for (const auto& t : tensors) b += t.nbytes;
  return b;
}

int64_t SynthPlan::n_params() const {
  int64_t n = 0;
  for (const auto& t : tensors) {
    int64_t e = 1;
    for (int64_t d : t.ne) e *= d;
    n += e;
  }
  return n;
}

namespace {

// The per-tensor type of a mix: the quantization recipe of `slim quantize`
// (compress/recipe.h), with the 256-row fallback applied.
GgmlType choose_type(const FileType& ft, const SynthShape& s, const std::string& name, int n_dims, int il,
                     int64_t ne0) {
  if (!recipe_quantizable(name, n_dims)) return GgmlType::F32;
  RecipeModel m;
  m.n_gqa = s.n_head / s.n_head_kv;
  m.n_layer = s.n_layer;
  m.has_output = !s.tied;
  return recipe_fallback(recipe_type(ft, m, {name, ne0, il, il >= 0 ? s.n_layer : 0}), ne0);
}

// ---- random numbers: a counter-based generator, so every row's values depend
// only on (seed, tensor, row) and any thread count gives the same file ----

inline uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Approximately normal values (Irwin-Hall sum of four 16-bit uniforms: mean 0,
// the given standard deviation, tails cut at about 3.5 sd).
void fill_normal(float* out, int64_t n, float sd, uint64_t seed, uint64_t tensor, uint64_t row) {
  uint64_t s = seed * 0xD1B54A32D192ED03ULL ^ (tensor << 40) ^ row;
  splitmix64(s);
  const float scale = sd * std::sqrt(3.0f) / 65536.0f;  // the sum's sd is 65536 / sqrt(3)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = splitmix64(s);
    const int64_t sum = (int64_t)(r & 0xFFFF) + (int64_t)((r >> 16) & 0xFFFF) + (int64_t)((r >> 32) & 0xFFFF) +
                        (int64_t)(r >> 48);
    out[i] = (float)(sum - 131070) * scale;
  }
}

// Llama 3.1 rope scaling as frequency divisors (rope_freqs.weight): factor 32,
// low-frequency factor 1, high-frequency factor 4, original context 8192.
void llama3_rope_factors(float* out, int head_dim, float theta) {
  const float factor = 32, low = 1, high = 4, orig = 8192;
  const float low_wavelen = orig / low, high_wavelen = orig / high;
  for (int i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow((double)theta, -2.0 * i / head_dim);
    const double wavelen = 2 * M_PI / freq;
    double f;
    if (wavelen < high_wavelen) f = 1;
    else if (wavelen > low_wavelen) f = factor;
    else {
      const double smooth = (orig / wavelen - low) / (high - low);
      f = 1 / ((1 - smooth) / factor + smooth);
    }
    out[i] = (float)f;
  }
}

// A SentencePiece-style vocabulary of n tokens: <unk>, <s>, </s>, the 256 byte
// tokens <0x00>..<0xFF>, every printable ASCII character (space as "▁"), then
// made-up pieces ("▁ab", "ac", ...) with falling scores. Meaningless, but a
// real-size, loadable vocabulary.
void make_vocab(int n, GgufArray& tokens, GgufArray& scores, GgufArray& types) {
  tokens.elem_type = GgufType::STRING;
  scores.elem_type = GgufType::FLOAT32;
  types.elem_type = GgufType::INT32;
  tokens.strings.reserve(n);
  auto add = [&](std::string s, float score, int type) {
    tokens.strings.push_back(std::move(s));
    scores.floats.push_back(score);
    types.ints.push_back(type);
  };
  add("<unk>", 0, 2);  // token types: 1 normal, 2 unknown, 3 control, 6 byte
  add("<s>", 0, 3);
  add("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) add(format("<0x%02X>", b), 0, 6);
  for (int c = 32; c < 127; ++c) add(c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, (char)c), -1, 1);
  for (int64_t k = 0; (int)tokens.strings.size() < n; ++k) {
    std::string w;  // k + 26 in base 26: at least two letters, never a single character
    for (int64_t v = k + 26; v > 0; v /= 26) w.insert(w.begin(), (char)('a' + v % 26));
    if (k % 2 == 0) w = "\xe2\x96\x81" + w;
    add(w, -2.0f - (float)k, 1);
  }
  tokens.strings.resize(n);  // tiny vocabularies: cut (the tests keep n >= 259)
  scores.floats.resize(n);
  types.ints.resize(n);
}

}  // namespace

std::vector<std::string> synth_file_types() {
  std::vector<std::string> v;
  for (const FileType& f : kFileTypes) v.push_back(f.name);
  return v;
}

Result<SynthPlan> plan_synth(const SynthShape& s, const std::string& ftype) {
  const FileType* ft = find_file_type(ftype);
  if (!ft) return Status::error("unknown file type '" + ftype + "' (known: " + file_type_names() + ")");
  if (s.arch != "llama" && s.arch != "qwen2") return Status::error("synth: unsupported architecture '" + s.arch + "'");
  if (s.n_vocab < 259 || s.n_layer <= 0 || s.n_embd <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_ff <= 0 ||
      s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0 || s.head_dim() % 2 != 0)
    return Status::error("synth: inconsistent shape for '" + s.name + "'");
  if (s.n_embd % 32 || s.n_ff % 32) return Status::error("synth: n_embd and n_ff must be multiples of 32");

  SynthPlan p;
  p.shape = s;
  p.ftype = ft->name;
  p.file_type = ft->llama_ftype;
  const int n = s.n_embd, hd = s.head_dim(), nq = s.n_head * hd, nk = s.n_head_kv * hd;
  auto add = [&](std::string name, int il, std::vector<int64_t> ne, SynthFill fill) {
    GgmlType t = choose_type(*ft, s, name, (int)ne.size(), il, ne[0]);
    int64_t rows = 1;
    for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
    const size_t nbytes = row_size(t, ne[0]) * (size_t)rows;
    p.tensors.push_back({std::move(name), t, std::move(ne), fill, nbytes});
  };
  add(tn::kTokEmbd, -1, {n, s.n_vocab}, SynthFill::Normal);
  if (s.llama3_rope) add(tn::kRopeFreqs, -1, {hd / 2}, SynthFill::RopeFreqs);
  add(tn::kOutputNorm, -1, {n}, SynthFill::Ones);
  if (!s.tied) add(tn::kOutput, -1, {n, s.n_vocab}, SynthFill::Normal);
  for (int il = 0; il < s.n_layer; ++il) {
    auto L = [&](const char* suffix) { return tn::layer(il, suffix); };
    add(L(tn::kAttnNorm), il, {n}, SynthFill::Ones);
    add(L(tn::kAttnQ), il, {n, nq}, SynthFill::Normal);
    add(L(tn::kAttnK), il, {n, nk}, SynthFill::Normal);
    add(L(tn::kAttnV), il, {n, nk}, SynthFill::Normal);
    if (s.qkv_bias) {
      add(L(tn::kAttnQBias), il, {nq}, SynthFill::Bias);
      add(L(tn::kAttnKBias), il, {nk}, SynthFill::Bias);
      add(L(tn::kAttnVBias), il, {nk}, SynthFill::Bias);
    }
    add(L(tn::kAttnOut), il, {nq, n}, SynthFill::Normal);
    add(L(tn::kFfnNorm), il, {n}, SynthFill::Ones);
    add(L(tn::kFfnGate), il, {n, s.n_ff}, SynthFill::Normal);
    add(L(tn::kFfnUp), il, {n, s.n_ff}, SynthFill::Normal);
    add(L(tn::kFfnDown), il, {s.n_ff, n}, SynthFill::Normal);
  }
  for (const auto& t : p.tensors)
    if (!type_traits(t.type).from_float)
      return Status::error(format("synth: slim cannot quantize to %s (tensor %s)", type_name(t.type), t.name.c_str()));
  return p;
}

Status write_synth(const SynthPlan& p, const SynthOptions& opt, ThreadPool& pool) {
  const SynthShape& s = p.shape;
  GgufWriter w;
  const std::string a = s.arch + ".";
  w.set("general.architecture", GgufValue::str(s.arch));
  w.set("general.type", GgufValue::str("model"));
  w.set("general.name", GgufValue::str(s.name + " random weights (slim synth)"));
  w.set("general.description",
        GgufValue::str("Random weights with the tensor shapes, hyperparameters and vocabulary size of " + s.name +
                       "; its output is meaningless by design. Made for speed measurements."));
  w.set("general.file_type", GgufValue::u32(p.file_type));
  w.set("general.quantization_version", GgufValue::u32(2));
  w.set_alignment(32);
  w.set(a + "vocab_size", GgufValue::u32((uint32_t)s.n_vocab));
  w.set(a + "context_length", GgufValue::u32((uint32_t)s.n_ctx));
  w.set(a + "embedding_length", GgufValue::u32((uint32_t)s.n_embd));
  w.set(a + "block_count", GgufValue::u32((uint32_t)s.n_layer));
  w.set(a + "feed_forward_length", GgufValue::u32((uint32_t)s.n_ff));
  w.set(a + "attention.head_count", GgufValue::u32((uint32_t)s.n_head));
  w.set(a + "attention.head_count_kv", GgufValue::u32((uint32_t)s.n_head_kv));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(s.rms_eps));
  w.set(a + "rope.freq_base", GgufValue::f32(s.rope_theta));
  w.set(a + "rope.dimension_count", GgufValue::u32((uint32_t)s.head_dim()));
  GgufArray tokens, scores, types;
  make_vocab(s.n_vocab, tokens, scores, types);
  w.set("tokenizer.ggml.model", GgufValue::str("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::array_of(std::move(tokens)));
  w.set("tokenizer.ggml.scores", GgufValue::array_of(std::move(scores)));
  w.set("tokenizer.ggml.token_type", GgufValue::array_of(std::move(types)));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  for (const auto& t : p.tensors) SLIM_RETURN_IF_ERROR(w.declare_tensor(t.name, t.type, t.ne));

  const KernelTable& kt = kernels();
  return w.write(opt.path, [&](size_t index, uint8_t* buf, size_t nbytes) -> Status {
    const SynthTensor& t = p.tensors[index];
    const int64_t ne0 = t.ne[0];
    const int64_t rows = (int64_t)(nbytes / row_size(t.type, ne0));
    if (t.fill == SynthFill::Ones || t.fill == SynthFill::RopeFreqs) {  // vectors: F32, one row
      float* f = reinterpret_cast<float*>(buf);
      if (t.fill == SynthFill::Ones) std::fill(f, f + ne0, 1.0f);
      else llama3_rope_factors(f, 2 * (int)ne0, s.rope_theta);
      return Status();
    }
    const FromFloatFn from = kt[t.type].from_float;
    const size_t rs = row_size(t.type, ne0);
    // biases get a small spread too; matrices std opt.std
    pool.parallel_for(rows, std::max<int64_t>(1, 65536 / ne0), [&](int64_t r0, int64_t r1) {
      thread_local std::vector<float> row;
      row.resize(ne0);
      for (int64_t r = r0; r < r1; ++r) {
        if (t.type == GgmlType::F32) {
          fill_normal(reinterpret_cast<float*>(buf + r * rs), ne0, opt.std, opt.seed, index, r);
        } else {
          fill_normal(row.data(), ne0, opt.std, opt.seed, index, r);
          from(row.data(), buf + r * rs, ne0);
        }
      }
    });
    return Status();
  });
}

}  // namespace slim
