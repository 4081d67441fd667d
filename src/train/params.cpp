// The trainable model's shape, its flat parameter layout, random and GGUF
// initialisation, and the export back to a GGUF llama.cpp and slim load.
#include "train/params.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <unistd.h>

#include "compress/quantize.h"
#include "compress/recipe.h"
#include "gguf/gguf.h"
#include "model/tensor_names.h"
#include "tensor/types.h"

namespace slim::train {

namespace {

// Family defaults (the values of the families' published configs).
void apply_arch_defaults(Shape& s) {
  if (s.arch == "qwen2") {
    s.rope_type = RopeType::Neox;
    s.qkv_bias = true;
    s.qk_norm = false;
    s.rope_freq_base = 1e6f;
    s.rms_eps = 1e-6f;
  } else if (s.arch == "qwen3") {
    s.rope_type = RopeType::Neox;
    s.qkv_bias = false;
    s.qk_norm = true;
    s.rope_freq_base = 1e6f;
    s.rms_eps = 1e-6f;
  } else {
    s.rope_type = RopeType::Normal;
    s.qkv_bias = false;
    s.qk_norm = false;
    s.rope_freq_base = 10000.0f;
    s.rms_eps = 1e-5f;
  }
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && std::isspace((unsigned char)v.front())) v.remove_prefix(1);
  while (!v.empty() && std::isspace((unsigned char)v.back())) v.remove_suffix(1);
  return v;
}

Status parse_int(const std::string& key, std::string_view v, int& out) {
  long long x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty())
    return Status::error("shape: '" + key + "' needs an integer, got '" + std::string(v) + "'");
  if (x <= 0 || x > (1 << 24))
    return Status::error("shape: '" + key + "' must be between 1 and 16777216, got " + std::string(v));
  out = (int)x;
  return Status();
}

// from_chars, not strtod: a locale with a decimal comma must not change what "1e-5" means.
Status parse_float(const std::string& key, std::string_view v, float& out) {
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || !std::isfinite(x) || x <= 0)
    return Status::error("shape: '" + key + "' needs a positive number, got '" + std::string(v) + "'");
  out = (float)x;
  return Status();
}

Status parse_bool(const std::string& key, std::string_view v, bool& out) {
  if (v == "1" || v == "true" || v == "yes") out = true;
  else if (v == "0" || v == "false" || v == "no") out = false;
  else return Status::error("shape: '" + key + "' needs 0 or 1, got '" + std::string(v) + "'");
  return Status();
}

// ---- deterministic random numbers: splitmix64 and Box-Muller in double, so a
// seed gives the same floats with any standard library (std::normal_distribution
// is implementation-defined) ----

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in (0, 1): never 0, so the log below is finite.
double uniform01(uint64_t& s) { return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

// n values N(0, sd); each tensor has its own stream (seed, tensor index), so
// adding a tensor to a family does not shift the values of the others.
void fill_normal(float* out, size_t n, double sd, uint64_t seed, uint64_t tensor) {
  uint64_t s = seed ^ (0xD1B54A32D192ED03ULL * (tensor + 1));
  splitmix64(s);
  for (size_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform01(s))), a = 6.283185307179586 * uniform01(s);
    out[i] = (float)(sd * r * std::cos(a));
    if (i + 1 < n) out[i + 1] = (float)(sd * r * std::sin(a));
  }
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::string_view x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

}  // namespace

Result<Shape> parse_shape(const std::string& spec, int n_vocab) {
  if (n_vocab <= 0) return Status::error(format("shape: bad vocabulary size %d", n_vocab));
  std::map<std::string, std::string> kv;
  std::string_view rest(spec);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return Status::error("shape: '" + std::string(item) + "' is not KEY=VALUE");
    std::string key(trim(item.substr(0, eq)));
    std::string value(trim(item.substr(eq + 1)));
    static const std::set<std::string> known = {"dim", "layers", "heads", "kv_heads", "ffn", "head_dim",
                                                "arch", "tied", "ctx", "rope_theta", "eps"};
    if (!known.count(key))
      return Status::error("shape: unknown key '" + key +
                           "' (known: dim, layers, heads, kv_heads, ffn, head_dim, arch, tied, ctx, rope_theta, eps)");
    if (kv.count(key)) return Status::error("shape: key '" + key + "' given twice");
    kv[key] = value;
  }
  for (const char* k : {"dim", "layers", "heads", "ffn"})
    if (!kv.count(k)) return Status::error(std::string("shape: missing key '") + k + "'");

  Shape s;
  s.n_vocab = n_vocab;
  if (kv.count("arch")) s.arch = kv["arch"];
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
    return Status::error("shape: unknown arch '" + s.arch + "' (llama, qwen2 or qwen3)");
  // The family's defaults first, so the keys below override them.
  apply_arch_defaults(s);
  SLIM_RETURN_IF_ERROR(parse_int("dim", kv["dim"], s.n_embd));
  SLIM_RETURN_IF_ERROR(parse_int("layers", kv["layers"], s.n_layer));
  SLIM_RETURN_IF_ERROR(parse_int("heads", kv["heads"], s.n_head));
  SLIM_RETURN_IF_ERROR(parse_int("ffn", kv["ffn"], s.n_ff));
  s.n_head_kv = s.n_head;  // multi-head attention unless told otherwise
  if (kv.count("kv_heads")) SLIM_RETURN_IF_ERROR(parse_int("kv_heads", kv["kv_heads"], s.n_head_kv));
  if (kv.count("head_dim")) {
    SLIM_RETURN_IF_ERROR(parse_int("head_dim", kv["head_dim"], s.head_dim));
  } else {
    if (s.n_embd % s.n_head != 0)
      return Status::error(format("shape: dim %d is not a multiple of heads %d (or give head_dim)", s.n_embd, s.n_head));
    s.head_dim = s.n_embd / s.n_head;
  }
  if (s.n_head % s.n_head_kv != 0)
    return Status::error(format("shape: heads %d is not a multiple of kv_heads %d", s.n_head, s.n_head_kv));
  if (s.head_dim % 2 != 0) return Status::error(format("shape: head_dim %d is odd (RoPE rotates pairs)", s.head_dim));
  s.n_rot = s.head_dim;
  if (kv.count("tied")) SLIM_RETURN_IF_ERROR(parse_bool("tied", kv["tied"], s.tied));
  if (kv.count("ctx")) SLIM_RETURN_IF_ERROR(parse_int("ctx", kv["ctx"], s.n_ctx_train));
  if (kv.count("rope_theta")) SLIM_RETURN_IF_ERROR(parse_float("rope_theta", kv["rope_theta"], s.rope_freq_base));
  if (kv.count("eps")) SLIM_RETURN_IF_ERROR(parse_float("eps", kv["eps"], s.rms_eps));
  SLIM_RETURN_IF_ERROR(check_shape(s));
  return s;
}

Status check_shape(const Shape& s) {
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
    return Status::error("shape: unsupported arch '" + s.arch + "' (training runs llama, qwen2 and qwen3)");
  const int lim = 1 << 24;
  for (auto [name, v] : {std::pair{"n_vocab", s.n_vocab}, {"n_embd", s.n_embd}, {"n_layer", s.n_layer},
                         {"n_head", s.n_head}, {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim},
                         {"n_ff", s.n_ff}, {"n_rot", s.n_rot}, {"n_ctx_train", s.n_ctx_train}})
    if (v <= 0 || v > lim) return Status::error(format("shape: %s is %d, must be between 1 and %d", name, v, lim));
  if (s.n_head % s.n_head_kv != 0)
    return Status::error(format("shape: n_head %d is not a multiple of n_head_kv %d", s.n_head, s.n_head_kv));
  if (s.head_dim % 2 != 0) return Status::error(format("shape: head_dim %d is odd (RoPE rotates pairs)", s.head_dim));
  if (s.n_rot % 2 != 0 || s.n_rot > s.head_dim)
    return Status::error(format("shape: %d rotated dims do not fit head_dim %d in pairs", s.n_rot, s.head_dim));
  if (!(s.rms_eps > 0) || !std::isfinite(s.rms_eps)) return Status::error("shape: rms_eps must be positive");
  if (!(s.rope_freq_base > 0) || !std::isfinite(s.rope_freq_base))
    return Status::error("shape: rope_freq_base must be positive");
  // What llama.cpp's loader of each family accepts: it requires qwen2's
  // biases, knows no q/k norms outside qwen3, and loads no biases in qwen3.
  if (s.arch == "qwen2" && (!s.qkv_bias || s.qk_norm)) return Status::error("shape: qwen2 has q/k/v biases and no q/k norms");
  if (s.arch == "qwen3" && (s.qkv_bias || !s.qk_norm)) return Status::error("shape: qwen3 has q/k norms and no biases");
  if (s.arch == "llama" && s.qk_norm) return Status::error("shape: llama has no q/k norms (use arch=qwen3)");
  if (s.arch == "llama" && s.rope_type != RopeType::Normal) return Status::error("shape: llama uses normal RoPE");
  if (s.arch != "llama" && s.rope_type != RopeType::Neox) return Status::error("shape: " + s.arch + " uses NeoX RoPE");
  // The flat vector and int offsets of the forward: keep the total sane.
  const double n = (double)s.n_vocab * s.n_embd * (s.tied ? 1 : 2) +
                   (double)s.n_layer * s.n_embd * (2.0 * s.n_embd_q() + 2.0 * s.n_embd_kv() + 3.0 * s.n_ff);
  if (n > 4e10) return Status::error(format("shape: %.3g parameters is more than training can hold", n));
  return Status();
}

TrainModel layout(const Shape& s) {
  TrainModel m;
  m.shape = s;
  size_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> ne) {
    Param p;
    p.name = std::move(name);
    p.n = 1;
    for (int64_t d : ne) p.n *= (size_t)d;
    p.ne = std::move(ne);
    p.offset = off;
    p.decay = p.ne.size() == 2;
    off += p.n;
    m.params.push_back(std::move(p));
    return m.params.back().offset;
  };
  const int64_t n = s.n_embd, nq = s.n_embd_q(), nkv = s.n_embd_kv(), ff = s.n_ff;
  // The order of llama.cpp's converters: embeddings, the blocks, the final norm, the head.
  m.tok_embd = add(tn::kTokEmbd, {n, s.n_vocab});
  m.layers.resize(s.n_layer);
  for (int il = 0; il < s.n_layer; ++il) {
    LayerOffsets& L = m.layers[il];
    auto name = [&](const char* suffix) { return tn::layer(il, suffix); };
    L.attn_norm = add(name(tn::kAttnNorm), {n});
    L.wq = add(name(tn::kAttnQ), {n, nq});
    L.wk = add(name(tn::kAttnK), {n, nkv});
    L.wv = add(name(tn::kAttnV), {n, nkv});
    if (s.qkv_bias) {
      L.bq = add(name(tn::kAttnQBias), {nq});
      L.bk = add(name(tn::kAttnKBias), {nkv});
      L.bv = add(name(tn::kAttnVBias), {nkv});
    }
    if (s.qk_norm) {
      L.q_norm = add(name(tn::kAttnQNorm), {s.head_dim});
      L.k_norm = add(name(tn::kAttnKNorm), {s.head_dim});
    }
    L.wo = add(name(tn::kAttnOut), {nq, n});
    L.ffn_norm = add(name(tn::kFfnNorm), {n});
    L.ffn_gate = add(name(tn::kFfnGate), {n, ff});
    L.ffn_up = add(name(tn::kFfnUp), {n, ff});
    L.ffn_down = add(name(tn::kFfnDown), {ff, n});
  }
  m.output_norm = add(tn::kOutputNorm, {n});
  if (!s.tied) m.output = add(tn::kOutput, {n, s.n_vocab});
  m.w.assign(off, 0.0f);
  return m;
}

const Param* TrainModel::find(const std::string& name) const {
  for (const Param& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

void init_random(TrainModel& m, uint64_t seed) {
  const double sd = 0.02, sd_resid = 0.02 / std::sqrt(2.0 * std::max(1, m.shape.n_layer));
  for (size_t i = 0; i < m.params.size(); ++i) {
    const Param& p = m.params[i];
    float* w = m.w.data() + p.offset;
    if (p.ne.size() == 2) {
      // The two projections that write into the residual stream are scaled
      // down so its variance does not grow with depth (GPT-2).
      const bool resid = ends_with(p.name, tn::kAttnOut) || ends_with(p.name, tn::kFfnDown);
      fill_normal(w, p.n, resid ? sd_resid : sd, seed, i);
    } else if (ends_with(p.name, "norm.weight")) {
      std::fill(w, w + p.n, 1.0f);
    } else {  // biases
      std::fill(w, w + p.n, 0.0f);
    }
  }
}

Result<TrainModel> init_from_shape(const Shape& s, uint64_t seed) {
  SLIM_RETURN_IF_ERROR(check_shape(s));
  TrainModel m = layout(s);
  init_random(m, seed);
  return m;
}

Result<TrainModel> init_from_gguf(const std::string& path) {
  auto opened = GgufFile::open(path);
  if (!opened) return Status::error(opened.error());
  const GgufFile& f = **opened;
  auto fail = [&](const std::string& m) { return Status::error(path + ": " + m); };

  const std::string arch = f.get_string("general.architecture").value_or("");
  if (arch.empty()) return fail("missing metadata key general.architecture");
  if (arch == "phi3") return fail("training does not support phi3 (fused attn_qkv and gate+up tensors)");
  if (arch.rfind("gemma", 0) == 0)
    return fail("training does not support " + arch + " (GeGLU, extra norms, embedding scaling, soft-capping)");
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3")
    return fail("training does not support architecture '" + arch + "' (llama, qwen2 or qwen3)");

  HParams hp;
  hp.arch = arch;
  if (auto st = read_common_hparams(f, hp); !st) return fail(st.message());
  const std::string a = arch + ".";
  if (hp.attn_softcap > 0 || hp.final_softcap > 0) return fail("training does not support logit soft-capping");
  if (hp.sliding_window > 0 || f.find(a + "attention.sliding_window_pattern"))
    return fail("training does not support sliding-window attention");
  if (hp.rope_freq_scale != 1.0f) return fail("training does not support linear RoPE scaling");
  if (hp.rope_attn_factor != 1.0f) return fail("training does not support RoPE attention factors (LongRoPE)");
  if (hp.head_dim_v != hp.head_dim)
    return fail(format("training needs equal key and value head dims (file: %d and %d)", hp.head_dim, hp.head_dim_v));
  if (const GgufArray* ff = f.get_array(a + "feed_forward_length"))
    for (int64_t v : ff->ints)
      if (v != hp.n_ff) return fail("training does not support a feed-forward length that varies by layer");
  const std::string scaling = f.get_string(a + "rope.scaling.type").value_or("none");
  if (scaling == "llama3" && !f.find_tensor(tn::kRopeFreqs))
    return fail("llama3 RoPE scaling without rope_freqs.weight is not supported");
  if (f.find_tensor(tn::layer(0, tn::kAttnQkv))) return fail("training does not support fused attn_qkv tensors");
  if (f.find_tensor(tn::kRopeFactorsShort) || f.find_tensor(tn::kRopeFactorsLong))
    return fail("training does not support LongRoPE factors");

  const TensorInfo* te = f.find_tensor(tn::kTokEmbd);
  if (!te) return fail(std::string("missing tensor ") + tn::kTokEmbd);
  Shape s;
  s.arch = arch;
  s.n_vocab = (int)te->ne[1];
  s.n_embd = hp.n_embd;
  s.n_layer = hp.n_layer;
  s.n_head = hp.n_head;
  s.n_head_kv = hp.n_head_kv;
  s.head_dim = hp.head_dim;
  s.n_ff = hp.n_ff;
  s.n_rot = hp.n_rot;
  s.n_ctx_train = hp.n_ctx_train;
  s.rms_eps = hp.rms_eps;
  s.rope_freq_base = hp.rope_freq_base;
  s.rope_type = arch == "llama" ? RopeType::Normal : RopeType::Neox;
  s.tied = f.find_tensor(tn::kOutput) == nullptr;
  s.qkv_bias = f.find_tensor(tn::layer(0, tn::kAttnQBias)) != nullptr;
  s.qk_norm = f.find_tensor(tn::layer(0, tn::kAttnQNorm)) != nullptr;
  if (auto st = check_shape(s); !st) return fail(st.message());

  TrainModel m = layout(s);
  // Every tensor of the file must be one we train or the RoPE constant:
  // anything else (an output bias, extra norms) would be dropped silently.
  std::set<std::string> expected;
  for (const Param& p : m.params) expected.insert(p.name);
  expected.insert(tn::kRopeFreqs);
  for (const TensorInfo& t : f.tensors())
    if (!expected.count(t.name)) return fail("training does not support tensor " + t.name);

  auto read = [&](const std::string& name, const std::vector<int64_t>& ne, float* dst) -> Status {
    const TensorInfo* t = f.find_tensor(name);
    if (!t) return Status::error("missing tensor " + name);
    bool same = t->n_dims == (int)ne.size();
    for (size_t d = 0; same && d < ne.size(); ++d) same = t->ne[d] == ne[d];
    if (!same) {
      std::string want, got;
      for (size_t d = 0; d < ne.size(); ++d) want += (d ? ", " : "") + std::to_string(ne[d]);
      for (int d = 0; d < t->n_dims; ++d) got += (d ? ", " : "") + std::to_string(t->ne[d]);
      return Status::error("tensor " + name + " has shape [" + got + "], expected [" + want + "]");
    }
    const TypeTraits& tr = type_traits(t->type);
    if (!tr.to_float)
      return Status::error(format("tensor %s has type %s, which slim cannot read", name.c_str(), type_name(t->type)));
    tr.to_float(t->data, dst, t->n_elements());
    return Status();
  };
  for (const Param& p : m.params)
    if (auto st = read(p.name, p.ne, m.w.data() + p.offset); !st) return fail(st.message());
  if (f.find_tensor(tn::kRopeFreqs)) {
    m.rope_freqs.resize(s.n_rot / 2);
    if (auto st = read(tn::kRopeFreqs, {s.n_rot / 2}, m.rope_freqs.data()); !st) return fail(st.message());
  }
  return m;
}

Status export_gguf(const TrainModel& m, const GgufFile& vocab_source, const ExportOptions& opt) {
  const Shape& s = m.shape;
  SLIM_RETURN_IF_ERROR(check_shape(s));
  if (m.w.size() != layout(s).w.size()) return Status::error("export: the weights do not match the shape");
  if (opt.path.empty()) return Status::error("export: no output path");
  const FileType* ft = find_file_type(opt.type);
  if (!ft) return Status::error("export: unknown type '" + opt.type + "' (known: " + file_type_names() + ")");
  const GgufArray* tokens = vocab_source.get_array("tokenizer.ggml.tokens");
  if (!tokens) return Status::error(vocab_source.path() + ": no vocabulary (tokenizer.ggml.tokens) to export with");
  if ((int)tokens->size() != s.n_vocab)
    return Status::error(format("export: %s has %zu tokens, the model %d", vocab_source.path().c_str(), tokens->size(),
                                s.n_vocab));
  if (!m.rope_freqs.empty() && (int)m.rope_freqs.size() != s.n_rot / 2)
    return Status::error("export: rope_freqs does not match the rotated dims");

  GgufWriter w;
  // general.architecture first, as llama.cpp's files have it.
  w.set("general.architecture", GgufValue::str(s.arch));
  // The vocabulary source's tokenizer, chat template and general.* keys;
  // not its hyperparameters (the shape's replace them) nor what says how
  // its tensors were stored (ours are F32 until quantize_file sets them).
  const std::string src_arch = vocab_source.get_string("general.architecture").value_or("");
  auto skip = [&](const std::string& k) {
    auto starts = [&](const std::string& p) { return !p.empty() && k.compare(0, p.size(), p) == 0; };
    return (!src_arch.empty() && starts(src_arch + ".")) || starts(s.arch + ".") || k == "general.file_type" ||
           k == "general.quantization_version" || k == "general.alignment" || starts("quantize.");
  };
  for (const auto& [k, v] : vocab_source.metadata())
    if (!skip(k) && k != "general.architecture") w.set(k, v);
  if (!opt.name.empty()) w.set("general.name", GgufValue::str(opt.name));
  else if (!vocab_source.find("general.name")) w.set("general.name", GgufValue::str(s.arch + " (slim train)"));
  w.set("general.file_type", GgufValue::u32(0));
  const std::string a = s.arch + ".";
  w.set(a + "vocab_size", GgufValue::u32((uint32_t)s.n_vocab));
  w.set(a + "context_length", GgufValue::u32((uint32_t)s.n_ctx_train));
  w.set(a + "embedding_length", GgufValue::u32((uint32_t)s.n_embd));
  w.set(a + "block_count", GgufValue::u32((uint32_t)s.n_layer));
  w.set(a + "feed_forward_length", GgufValue::u32((uint32_t)s.n_ff));
  w.set(a + "attention.head_count", GgufValue::u32((uint32_t)s.n_head));
  w.set(a + "attention.head_count_kv", GgufValue::u32((uint32_t)s.n_head_kv));
  w.set(a + "attention.key_length", GgufValue::u32((uint32_t)s.head_dim));
  w.set(a + "attention.value_length", GgufValue::u32((uint32_t)s.head_dim));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(s.rms_eps));
  w.set(a + "rope.dimension_count", GgufValue::u32((uint32_t)s.n_rot));
  w.set(a + "rope.freq_base", GgufValue::f32(s.rope_freq_base));

  // Streamed from m.w: no second copy of the weights.
  struct Src { const float* data; size_t n; };
  std::vector<Src> srcs;
  auto declare = [&](const std::string& name, const std::vector<int64_t>& ne, const float* data, size_t n) -> Status {
    srcs.push_back({data, n});
    return w.declare_tensor(name, GgmlType::F32, ne);
  };
  const Param& te = m.params[0];
  SLIM_RETURN_IF_ERROR(declare(te.name, te.ne, m.w.data() + te.offset, te.n));
  if (!m.rope_freqs.empty())
    SLIM_RETURN_IF_ERROR(declare(tn::kRopeFreqs, {(int64_t)m.rope_freqs.size()}, m.rope_freqs.data(), m.rope_freqs.size()));
  for (size_t i = 1; i < m.params.size(); ++i)
    SLIM_RETURN_IF_ERROR(declare(m.params[i].name, m.params[i].ne, m.w.data() + m.params[i].offset, m.params[i].n));
  auto fill = [&](size_t index, uint8_t* buf, size_t nbytes) -> Status {
    if (nbytes != srcs[index].n * sizeof(float)) return Status::error("export: tensor size mismatch");
    std::memcpy(buf, srcs[index].data, nbytes);
    return Status();
  };

  if (ft->id == FileTypeId::F32) return w.write(opt.path, fill);

  // Quantized: the F32 file next to the output (same file system, so the
  // space is where the user asked for it), quantized by `slim quantize`'s
  // code into the output, then removed whatever happened.
  const std::string f32_path = opt.path + ".f32.tmp." + std::to_string(getpid());
  if (auto st = w.write(f32_path, fill); !st) return st;
  QuantizeParams qp;
  qp.ftype = ft->name;
  qp.n_threads = opt.n_threads;
  auto q = quantize_file(f32_path, opt.path, qp);
  std::remove(f32_path.c_str());
  if (!q) return Status::error(q.error());
  return Status();
}

}  // namespace slim::train
