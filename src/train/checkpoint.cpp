// Training checkpoints as GGUF files (layout: checkpoint.h). A checksum of
// all tensor bytes is stored too, so a flipped byte is an error at resume
// rather than a silently different run.
#include "train/checkpoint.h"

#include <cstring>
#include <set>

#include "gguf/gguf.h"
#include "model/tensor_names.h"

namespace slim::train {

namespace {

constexpr uint32_t kVersion = 1;
const std::string kPrefix = "slim.train.";

// A 64-bit multiply-xorshift hash over 8-byte words (fast enough to run over
// gigabytes of weights; this detects corruption, it is not cryptographic).
struct Hash {
  uint64_t h = 0x243F6A8885A308D3ULL;
  void add(const void* data, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      word(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    word(tail ^ ((uint64_t)n << 56));  // the length too: a shorter tensor never hashes the same
  }
  void word(uint64_t w) {
    h ^= w;
    h *= 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
  }
};

// Every tensor of a checkpoint of `m`, in file order, with its place in the
// Checkpoint's vectors.
struct Entry {
  std::string name;
  std::vector<int64_t> ne;
  int which;      // 0 weights, 1 adam_m, 2 adam_v, 3 rope_freqs
  size_t offset;  // floats into that vector
  size_t n;
};

std::vector<Entry> entries(const TrainModel& m, size_t n_rope_freqs) {
  std::vector<Entry> e;
  for (const Param& p : m.params) e.push_back({p.name, p.ne, 0, p.offset, p.n});
  if (n_rope_freqs) e.push_back({tn::kRopeFreqs, {(int64_t)n_rope_freqs}, 3, 0, n_rope_freqs});
  for (const Param& p : m.params) e.push_back({"adam_m." + p.name, p.ne, 1, p.offset, p.n});
  for (const Param& p : m.params) e.push_back({"adam_v." + p.name, p.ne, 2, p.offset, p.n});
  return e;
}

const float* source(const Checkpoint& c, const Entry& e) {
  const std::vector<float>* v[] = {&c.model.w, &c.adam_m, &c.adam_v, &c.model.rope_freqs};
  return v[e.which]->data() + e.offset;
}

float* target(Checkpoint& c, const Entry& e) {
  std::vector<float>* v[] = {&c.model.w, &c.adam_m, &c.adam_v, &c.model.rope_freqs};
  return v[e.which]->data() + e.offset;
}

GgufValue i64(int64_t x) {
  GgufValue v;
  v.type = GgufType::INT64;
  v.i = x;
  return v;
}

}  // namespace

Status save_checkpoint(const std::string& path, const Checkpoint& c) {
  const TrainModel& m = c.model;
  const Shape& s = m.shape;
  SLIM_RETURN_IF_ERROR(check_shape(s));
  const size_t n = m.n_params();
  if (n != layout(s).n_params()) return Status::error("checkpoint: the weights do not match the shape");
  if (c.adam_m.size() != n || c.adam_v.size() != n)
    return Status::error(format("checkpoint: the AdamW moments hold %zu and %zu values, the model %zu",
                                c.adam_m.size(), c.adam_v.size(), n));
  if (c.step < 0) return Status::error("checkpoint: negative step");
  const std::vector<Entry> es = entries(m, m.rope_freqs.size());

  Hash hash;
  for (const Entry& e : es) hash.add(source(c, e), e.n * sizeof(float));

  GgufWriter w;
  w.set("general.type", GgufValue::str("slim-train-checkpoint"));
  w.set(kPrefix + "version", GgufValue::u32(kVersion));
  w.set(kPrefix + "arch", GgufValue::str(s.arch));
  for (auto [key, v] : {std::pair{"n_vocab", s.n_vocab}, {"n_embd", s.n_embd}, {"n_layer", s.n_layer},
                        {"n_head", s.n_head}, {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim},
                        {"n_ff", s.n_ff}, {"n_rot", s.n_rot}, {"n_ctx_train", s.n_ctx_train}})
    w.set(kPrefix + key, GgufValue::u32((uint32_t)v));
  w.set(kPrefix + "rms_eps", GgufValue::f32(s.rms_eps));
  w.set(kPrefix + "rope_freq_base", GgufValue::f32(s.rope_freq_base));
  w.set(kPrefix + "rope_type", GgufValue::str(s.rope_type == RopeType::Neox ? "neox" : "normal"));
  w.set(kPrefix + "tied", GgufValue::boolean(s.tied));
  w.set(kPrefix + "qkv_bias", GgufValue::boolean(s.qkv_bias));
  w.set(kPrefix + "qk_norm", GgufValue::boolean(s.qk_norm));
  w.set(kPrefix + "step", i64(c.step));
  w.set(kPrefix + "config_json", GgufValue::str(c.config_json));
  w.set(kPrefix + "checksum", GgufValue::u64(hash.h));
  for (const Entry& e : es) SLIM_RETURN_IF_ERROR(w.declare_tensor(e.name, GgmlType::F32, e.ne));
  // Streamed straight from the vectors: a checkpoint never doubles the memory.
  return w.write(path, [&](size_t i, uint8_t* buf, size_t nbytes) -> Status {
    if (nbytes != es[i].n * sizeof(float)) return Status::error("checkpoint: tensor size mismatch");
    std::memcpy(buf, source(c, es[i]), nbytes);
    return Status();
  });
}

Result<Checkpoint> load_checkpoint(const std::string& path) {
  auto opened = GgufFile::open(path);
  if (!opened) return Status::error(opened.error());
  const GgufFile& f = **opened;
  auto fail = [&](const std::string& msg) { return Status::error(path + ": " + msg); };
  const auto version = f.get_int(kPrefix + "version");
  if (!version) return fail("not a slim training checkpoint (no " + kPrefix + "version)");
  if (*version != kVersion) return fail(format("checkpoint version %lld, this slim reads %u", (long long)*version, kVersion));

  Shape s;
  auto need_int = [&](const char* key, int& out) -> Status {
    auto v = f.get_int(kPrefix + key);
    if (!v) return Status::error("missing checkpoint key " + kPrefix + key);
    if (*v <= 0 || *v > (1 << 30)) return Status::error(format("bad value %lld for %s%s", (long long)*v, kPrefix.c_str(), key));
    out = (int)*v;
    return Status();
  };
  auto need_bool = [&](const char* key, bool& out) -> Status {
    auto v = f.get_bool(kPrefix + key);
    if (!v) return Status::error("missing checkpoint key " + kPrefix + key);
    out = *v;
    return Status();
  };
  auto need_float = [&](const char* key, float& out) -> Status {
    auto v = f.get_float(kPrefix + key);
    if (!v) return Status::error("missing checkpoint key " + kPrefix + key);
    out = (float)*v;
    return Status();
  };
  auto read_shape = [&]() -> Status {
    auto arch = f.get_string(kPrefix + "arch");
    if (!arch) return Status::error("missing checkpoint key " + kPrefix + "arch");
    s.arch = *arch;
    SLIM_RETURN_IF_ERROR(need_int("n_vocab", s.n_vocab));
    SLIM_RETURN_IF_ERROR(need_int("n_embd", s.n_embd));
    SLIM_RETURN_IF_ERROR(need_int("n_layer", s.n_layer));
    SLIM_RETURN_IF_ERROR(need_int("n_head", s.n_head));
    SLIM_RETURN_IF_ERROR(need_int("n_head_kv", s.n_head_kv));
    SLIM_RETURN_IF_ERROR(need_int("head_dim", s.head_dim));
    SLIM_RETURN_IF_ERROR(need_int("n_ff", s.n_ff));
    SLIM_RETURN_IF_ERROR(need_int("n_rot", s.n_rot));
    SLIM_RETURN_IF_ERROR(need_int("n_ctx_train", s.n_ctx_train));
    SLIM_RETURN_IF_ERROR(need_float("rms_eps", s.rms_eps));
    SLIM_RETURN_IF_ERROR(need_float("rope_freq_base", s.rope_freq_base));
    const std::string rope = f.get_string(kPrefix + "rope_type").value_or("");
    if (rope != "normal" && rope != "neox") return Status::error("bad or missing checkpoint key " + kPrefix + "rope_type");
    s.rope_type = rope == "neox" ? RopeType::Neox : RopeType::Normal;
    SLIM_RETURN_IF_ERROR(need_bool("tied", s.tied));
    SLIM_RETURN_IF_ERROR(need_bool("qkv_bias", s.qkv_bias));
    SLIM_RETURN_IF_ERROR(need_bool("qk_norm", s.qk_norm));
    return check_shape(s);
  };
  if (auto st = read_shape(); !st) return fail(st.message());

  Checkpoint c;
  c.model = layout(s);
  const auto step = f.get_int(kPrefix + "step");
  if (!step || *step < 0) return fail("bad or missing checkpoint key " + kPrefix + "step");
  c.step = *step;
  const auto config = f.get_string(kPrefix + "config_json");
  if (!config) return fail("missing checkpoint key " + kPrefix + "config_json");
  c.config_json = *config;
  const auto checksum = f.find(kPrefix + "checksum");
  if (!checksum || !checksum->is_int()) return fail("missing checkpoint key " + kPrefix + "checksum");

  const TensorInfo* rf = f.find_tensor(tn::kRopeFreqs);
  const size_t n_rope = rf ? (size_t)rf->n_elements() : 0;
  if (rf && (int)n_rope != s.n_rot / 2)
    return fail(format("tensor %s has %zu values, expected %d", tn::kRopeFreqs, n_rope, s.n_rot / 2));
  c.model.rope_freqs.resize(n_rope);
  c.adam_m.resize(c.model.n_params());
  c.adam_v.resize(c.model.n_params());
  const std::vector<Entry> es = entries(c.model, n_rope);
  if (f.tensors().size() != es.size())
    return fail(format("checkpoint holds %zu tensors, its shape has %zu", f.tensors().size(), es.size()));
  Hash hash;
  for (const Entry& e : es) {
    const TensorInfo* t = f.find_tensor(e.name);
    if (!t) return fail("missing tensor " + e.name);
    if (t->type != GgmlType::F32) return fail("tensor " + e.name + " is not F32");
    bool same = t->n_dims == (int)e.ne.size();
    for (size_t d = 0; same && d < e.ne.size(); ++d) same = t->ne[d] == e.ne[d];
    if (!same || t->nbytes != e.n * sizeof(float)) return fail("tensor " + e.name + " does not have the shape's size");
    std::memcpy(target(c, e), t->data, t->nbytes);
    hash.add(t->data, t->nbytes);
  }
  if (hash.h != (uint64_t)checksum->i) return fail("corrupt checkpoint: the tensor data does not match its checksum");
  return c;
}

}  // namespace slim::train
