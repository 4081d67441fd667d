// The trainable model's shape and layout against real GGUF files (stories260K,
// the gguf-py synthetic families), GGUF initialisation against the files'
// values, random initialisation, and the export read back through slim's
// loader and engine.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "test_util.h"
#include "train_test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/params.h"

namespace slim::train {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) { return test_util::fresh_dir("params-" + name); }
using test_util::files_in;

ExportOptions export_to(std::string path, std::string type = "F32", std::string name = "") {
  ExportOptions o;
  o.path = std::move(path);
  o.type = std::move(type);
  o.name = std::move(name);
  o.n_threads = 1;
  return o;
}

std::shared_ptr<GgufFile> open_gguf(const std::string& path) {
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.error();
  return f.ok() ? *f : nullptr;
}

// ---- parse_shape ----

TEST(ParseShape, LlamaDefaults) {
  auto s = parse_shape("dim=64,layers=5,heads=8,kv_heads=4,ffn=172", 512);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->arch, "llama");
  EXPECT_EQ(s->n_vocab, 512);
  EXPECT_EQ(s->n_embd, 64);
  EXPECT_EQ(s->n_layer, 5);
  EXPECT_EQ(s->n_head, 8);
  EXPECT_EQ(s->n_head_kv, 4);
  EXPECT_EQ(s->head_dim, 8);
  EXPECT_EQ(s->n_rot, 8);
  EXPECT_EQ(s->n_ff, 172);
  EXPECT_EQ(s->n_ctx_train, 2048);
  EXPECT_EQ(s->rope_type, RopeType::Normal);
  EXPECT_FLOAT_EQ(s->rope_freq_base, 10000.0f);
  EXPECT_FLOAT_EQ(s->rms_eps, 1e-5f);
  EXPECT_TRUE(s->tied);
  EXPECT_FALSE(s->qkv_bias);
  EXPECT_FALSE(s->qk_norm);
  EXPECT_EQ(s->n_embd_q(), 64);
  EXPECT_EQ(s->n_embd_kv(), 32);
}

TEST(ParseShape, FamilyDefaultsAndOverrides) {
  auto q2 = parse_shape("arch=qwen2,dim=64,layers=2,heads=4,kv_heads=2,ffn=128", 300);
  ASSERT_TRUE(q2.ok()) << q2.error();
  EXPECT_EQ(q2->rope_type, RopeType::Neox);
  EXPECT_TRUE(q2->qkv_bias);
  EXPECT_FALSE(q2->qk_norm);
  EXPECT_FLOAT_EQ(q2->rope_freq_base, 1e6f);

  auto q3 = parse_shape("dim=64, layers=2, heads=4, kv_heads=2, ffn=128, arch=qwen3, head_dim=32", 300);
  ASSERT_TRUE(q3.ok()) << q3.error();
  EXPECT_EQ(q3->rope_type, RopeType::Neox);
  EXPECT_FALSE(q3->qkv_bias);
  EXPECT_TRUE(q3->qk_norm);
  EXPECT_FLOAT_EQ(q3->rope_freq_base, 1e6f);
  EXPECT_EQ(q3->head_dim, 32);  // not dim / heads: allowed when given
  EXPECT_EQ(q3->n_embd_q(), 128);
  EXPECT_EQ(q3->n_embd_kv(), 64);

  // the arch's defaults do not override explicit keys, whatever their order
  auto o = parse_shape("rope_theta=5e5,eps=1e-6,dim=48,layers=1,heads=6,ffn=96,tied=0,ctx=512,arch=qwen2", 300);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_FLOAT_EQ(o->rope_freq_base, 5e5f);
  EXPECT_FLOAT_EQ(o->rms_eps, 1e-6f);
  EXPECT_FALSE(o->tied);
  EXPECT_EQ(o->n_ctx_train, 512);
  EXPECT_EQ(o->n_head_kv, 6);  // kv_heads defaults to heads
  EXPECT_EQ(o->head_dim, 8);
}

TEST(ParseShape, Errors) {
  auto err = [](const std::string& spec, int n_vocab = 512) {
    auto s = parse_shape(spec, n_vocab);
    EXPECT_FALSE(s.ok()) << spec;
    return s.ok() ? std::string() : s.error();
  };
  const std::string base = "dim=64,layers=2,heads=8,kv_heads=4,ffn=128";
  EXPECT_NE(err(base + ",widht=3").find("unknown key 'widht'"), std::string::npos);
  EXPECT_NE(err("dim=6x4,layers=2,heads=8,ffn=128").find("'dim'"), std::string::npos);
  EXPECT_NE(err("dim=64,layers=-2,heads=8,ffn=128").find("'layers'"), std::string::npos);
  EXPECT_NE(err(base + ",eps=abc").find("'eps'"), std::string::npos);
  EXPECT_NE(err(base + ",rope_theta=0").find("'rope_theta'"), std::string::npos);
  EXPECT_NE(err(base + ",tied=maybe").find("'tied'"), std::string::npos);
  EXPECT_NE(err("dim=60,layers=2,heads=8,ffn=128").find("not a multiple of heads"), std::string::npos);
  EXPECT_NE(err("dim=64,layers=2,heads=8,kv_heads=3,ffn=128").find("not a multiple of kv_heads"), std::string::npos);
  EXPECT_NE(err("dim=72,layers=2,heads=8,ffn=128").find("odd"), std::string::npos);  // head_dim 9
  EXPECT_NE(err("dim=64,layers=2,ffn=128").find("missing key 'heads'"), std::string::npos);
  EXPECT_NE(err(base + ",arch=gemma2").find("unknown arch 'gemma2'"), std::string::npos);
  EXPECT_NE(err(base + ",dim=32").find("twice"), std::string::npos);
  EXPECT_NE(err(base + ",layers").find("KEY=VALUE"), std::string::npos);
  EXPECT_NE(err(base, 0).find("vocabulary"), std::string::npos);
}

TEST(CheckShape, FamilyRules) {
  Shape s = *parse_shape("dim=64,layers=2,heads=8,kv_heads=4,ffn=128", 512);
  EXPECT_TRUE(check_shape(s).ok());
  Shape b = s;
  b.qk_norm = true;
  EXPECT_FALSE(check_shape(b).ok());  // llama.cpp's llama loads no q/k norms
  b = s;
  b.arch = "qwen2";
  b.rope_type = RopeType::Neox;
  EXPECT_FALSE(check_shape(b).ok());  // qwen2 without its biases
  b = s;
  b.n_rot = 10;
  EXPECT_FALSE(check_shape(b).ok());  // more rotated dims than the head has
  b = s;
  b.n_layer = 0;
  EXPECT_FALSE(check_shape(b).ok());
  EXPECT_FALSE(init_from_shape(b, 1).ok());
}

// ---- layout ----

// Element sum of a file's tensors, rope_freqs (a constant) aside.
size_t trained_elements(const GgufFile& f) {
  size_t n = 0;
  for (const auto& t : f.tensors())
    if (t.name != "rope_freqs.weight") n += (size_t)t.n_elements();
  return n;
}

TEST(Layout, Stories260KCounts) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto f = open_gguf(path);
  ASSERT_TRUE(f);
  auto m = init_from_gguf(path);
  ASSERT_TRUE(m.ok()) << m.error();
  // The file stores output.weight (a copy of token_embd), so its shape is untied.
  EXPECT_FALSE(m->shape.tied);
  EXPECT_EQ(m->n_params(), trained_elements(*f));
  EXPECT_EQ(m->n_params(), 292800u);
  EXPECT_EQ(m->params.size(), f->tensors().size());

  // The same shape tied, as the model was trained: the 260K of its name.
  Shape tied = *parse_shape("dim=64,layers=5,heads=8,kv_heads=4,ffn=172", 512);
  TrainModel t = layout(tied);
  EXPECT_EQ(t.n_params(), trained_elements(*f) - (size_t)f->find_tensor("output.weight")->n_elements());
  EXPECT_EQ(t.n_params(), 260032u);
  EXPECT_EQ(t.output, kNone);
  EXPECT_EQ(t.find("output.weight"), nullptr);

  // Parameters tile the vector in order; matrices decay, vectors do not.
  size_t off = 0;
  for (const Param& p : t.params) {
    EXPECT_EQ(p.offset, off) << p.name;
    off += p.n;
    EXPECT_EQ(p.decay, p.ne.size() == 2) << p.name;
  }
  EXPECT_EQ(off, t.w.size());
  ASSERT_EQ(t.layers.size(), 5u);
  EXPECT_EQ(t.find("blk.3.ffn_down.weight")->offset, t.layers[3].ffn_down);
  EXPECT_EQ(t.find("blk.3.ffn_down.weight")->ne, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(t.find("blk.0.attn_output.weight")->ne, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(t.find("blk.0.attn_k.weight")->ne, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(t.layers[0].bq, kNone);
  EXPECT_EQ(t.layers[0].q_norm, kNone);
  EXPECT_EQ(t.tok_embd, 0u);
}

// The synthetic files were written by gguf-py in llama.cpp's converter order:
// the layout has the same tensors, shapes and order (rope_freqs aside).
TEST(Layout, MatchesSyntheticFiles) {
  for (const char* v : {"qwen2", "qwen3", "llama3rope", "llama"}) {
    SCOPED_TRACE(v);
    SLIM_SHARED_FILE(path, std::string("models/synthetic/") + v + "-F32.gguf");
    auto f = open_gguf(path);
    ASSERT_TRUE(f);
    auto m = init_from_gguf(path);
    ASSERT_TRUE(m.ok()) << m.error();
    TrainModel t = layout(m->shape);
    std::vector<const TensorInfo*> file_order;
    for (const auto& ti : f->tensors())
      if (ti.name != "rope_freqs.weight") file_order.push_back(&ti);
    ASSERT_EQ(t.params.size(), file_order.size());
    for (size_t i = 0; i < t.params.size(); ++i) {
      EXPECT_EQ(t.params[i].name, file_order[i]->name);
      EXPECT_EQ(t.params[i].ne, std::vector<int64_t>(file_order[i]->ne, file_order[i]->ne + file_order[i]->n_dims))
          << t.params[i].name;
    }
    EXPECT_EQ(t.n_params(), trained_elements(*f));
  }
}

// ---- init_from_gguf ----

// Every parameter equals the file's F32 tensor bit for bit.
void expect_equals_file(const TrainModel& m, const GgufFile& f) {
  for (const Param& p : m.params) {
    const TensorInfo* t = f.find_tensor(p.name);
    ASSERT_NE(t, nullptr) << p.name;
    ASSERT_EQ(t->type, GgmlType::F32) << p.name;
    ASSERT_EQ((size_t)t->n_elements(), p.n) << p.name;
    EXPECT_EQ(std::memcmp(t->data, m.w.data() + p.offset, p.n * sizeof(float)), 0) << p.name;
  }
}

TEST(InitFromGguf, Stories260KEqualsFile) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto f = open_gguf(path);
  ASSERT_TRUE(f);
  auto m = init_from_gguf(path);
  ASSERT_TRUE(m.ok()) << m.error();
  const Shape& s = m->shape;
  EXPECT_EQ(s.arch, "llama");
  EXPECT_EQ(s.n_vocab, 512);
  EXPECT_EQ(s.n_embd, 64);
  EXPECT_EQ(s.n_layer, 5);
  EXPECT_EQ(s.n_head, 8);
  EXPECT_EQ(s.n_head_kv, 4);
  EXPECT_EQ(s.head_dim, 8);
  EXPECT_EQ(s.n_ff, 172);
  EXPECT_EQ(s.n_rot, 8);
  EXPECT_EQ(s.n_ctx_train, 2048);
  EXPECT_EQ(s.rope_type, RopeType::Normal);
  EXPECT_FLOAT_EQ(s.rope_freq_base, 10000.0f);
  EXPECT_FLOAT_EQ(s.rms_eps, 1e-5f);
  EXPECT_TRUE(m->rope_freqs.empty());
  expect_equals_file(*m, *f);
}

TEST(InitFromGguf, SyntheticFamiliesEqualFiles) {
  struct Case { const char* v; bool bias, qk_norm, rope_freqs; RopeType rope; float theta; };
  for (const Case& c : {Case{"qwen2", true, false, false, RopeType::Neox, 1e6f},
                        Case{"qwen3", false, true, false, RopeType::Neox, 1e6f},
                        Case{"llama3rope", false, false, true, RopeType::Normal, 5e5f}}) {
    SCOPED_TRACE(c.v);
    SLIM_SHARED_FILE(path, std::string("models/synthetic/") + c.v + "-F32.gguf");
    auto f = open_gguf(path);
    ASSERT_TRUE(f);
    auto m = init_from_gguf(path);
    ASSERT_TRUE(m.ok()) << m.error();
    EXPECT_EQ(m->shape.qkv_bias, c.bias);
    EXPECT_EQ(m->shape.qk_norm, c.qk_norm);
    EXPECT_TRUE(m->shape.tied);
    EXPECT_EQ(m->shape.rope_type, c.rope);
    EXPECT_FLOAT_EQ(m->shape.rope_freq_base, c.theta);
    EXPECT_EQ(m->shape.head_dim, 64);
    expect_equals_file(*m, *f);
    if (c.rope_freqs) {
      const TensorInfo* rf = f->find_tensor("rope_freqs.weight");
      ASSERT_NE(rf, nullptr);
      ASSERT_EQ(m->rope_freqs.size(), 32u);
      EXPECT_EQ(std::memcmp(rf->data, m->rope_freqs.data(), 32 * sizeof(float)), 0);
      EXPECT_EQ(m->find("rope_freqs.weight"), nullptr);  // a constant, not trained
    } else {
      EXPECT_TRUE(m->rope_freqs.empty());
    }
  }
}

// llama-quantize made the Q8_0 files from the F32 ones: the dequantized
// weights are within Q8_0's rounding (half a step of amax / 127 a block,
// plus the fp16 scale's rounding) of the F32 values.
TEST(InitFromGguf, QuantizedCloseToF32) {
  for (const char* v : {"qwen2", "llama"}) {
    SCOPED_TRACE(v);
    SLIM_SHARED_FILE(qpath, std::string("models/synthetic/") + v + "-Q8_0.gguf");
    SLIM_SHARED_FILE(fpath, std::string("models/synthetic/") + v + "-F32.gguf");
    auto q = init_from_gguf(qpath);
    ASSERT_TRUE(q.ok()) << q.error();
    auto f = init_from_gguf(fpath);
    ASSERT_TRUE(f.ok()) << f.error();
    ASSERT_EQ(q->n_params(), f->n_params());
    auto qf = open_gguf(qpath);
    int quantized = 0;
    for (const Param& p : f->params) {
      const float* a = q->w.data() + p.offset;
      const float* b = f->w.data() + p.offset;
      const bool is_q8 = qf->find_tensor(p.name)->type == GgmlType::Q8_0;
      quantized += is_q8;
      if (!is_q8) {
        EXPECT_EQ(std::memcmp(a, b, p.n * sizeof(float)), 0) << p.name;
        continue;
      }
      size_t bad = 0;
      double err2 = 0, sig2 = 0;
      for (size_t blk = 0; blk < p.n; blk += 32) {
        float amax = 0;
        for (size_t i = blk; i < blk + 32; ++i) amax = std::max(amax, std::fabs(b[i]));
        const float tol = amax / 127.0f * 0.5f + amax * 2e-3f + 1e-9f;
        for (size_t i = blk; i < blk + 32; ++i) {
          bad += std::fabs(a[i] - b[i]) > tol;
          err2 += (double)(a[i] - b[i]) * (a[i] - b[i]);
          sig2 += (double)b[i] * b[i];
        }
      }
      EXPECT_EQ(bad, 0u) << p.name;
      EXPECT_LT(std::sqrt(err2 / sig2), 0.01) << p.name;
      EXPECT_GT(err2, 0.0) << p.name;  // really quantized, not a copy
    }
    EXPECT_GT(quantized, 0);
  }
}

TEST(InitFromGguf, RefusesUnsupportedFamilies) {
  for (const char* v : {"phi3", "gemma2", "gemma3"}) {
    SLIM_SHARED_FILE(path, std::string("models/synthetic/") + v + "-F32.gguf");
    auto m = init_from_gguf(path);
    ASSERT_FALSE(m.ok()) << v;
    EXPECT_NE(m.error().find(v), std::string::npos) << m.error();
    EXPECT_EQ(m.error().find('\n'), std::string::npos) << m.error();
  }
  auto missing = init_from_gguf("/nonexistent/model.gguf");
  EXPECT_FALSE(missing.ok());
}

// ---- init_random ----

TEST(InitRandom, DeterministicAndScaled) {
  Shape s = *parse_shape("arch=qwen2,dim=64,layers=4,heads=4,kv_heads=2,ffn=128,tied=0", 300);
  TrainModel a = layout(s), b = layout(s), c = layout(s);
  init_random(a, 42);
  init_random(b, 42);
  init_random(c, 43);
  ASSERT_EQ(a.w.size(), b.w.size());
  EXPECT_EQ(std::memcmp(a.w.data(), b.w.data(), a.w.size() * sizeof(float)), 0);
  size_t same = 0;
  for (size_t i = 0; i < a.w.size(); ++i) same += a.w[i] == c.w[i];
  // only the ones and zeros of norms and biases agree
  size_t constant = 0;
  for (const Param& p : a.params)
    if (p.ne.size() == 1) constant += p.n;
  EXPECT_EQ(same, constant);

  auto moments = [&](const Param& p, double& mean, double& sd) {
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < p.n; ++i) s1 += a.w[p.offset + i], s2 += (double)a.w[p.offset + i] * a.w[p.offset + i];
    mean = s1 / p.n;
    sd = std::sqrt(s2 / p.n - mean * mean);
  };
  for (const Param& p : a.params) {
    SCOPED_TRACE(p.name);
    const float* w = a.w.data() + p.offset;
    if (p.name.find("norm.weight") != std::string::npos) {
      for (size_t i = 0; i < p.n; ++i) ASSERT_EQ(w[i], 1.0f);
    } else if (p.name.find(".bias") != std::string::npos) {
      for (size_t i = 0; i < p.n; ++i) ASSERT_EQ(w[i], 0.0f);
    } else {
      ASSERT_EQ(p.ne.size(), 2u);
      double mean, sd;
      moments(p, mean, sd);
      const bool resid = p.name.find("attn_output") != std::string::npos || p.name.find("ffn_down") != std::string::npos;
      const double want = resid ? 0.02 / std::sqrt(8.0) : 0.02;
      EXPECT_NEAR(sd, want, want * 0.05);
      EXPECT_NEAR(mean, 0.0, want * 0.05);
    }
  }
  // Different tensors are different streams.
  const Param* q0 = a.find("blk.0.attn_q.weight");
  const Param* q1 = a.find("blk.1.attn_q.weight");
  EXPECT_NE(std::memcmp(a.w.data() + q0->offset, a.w.data() + q1->offset, q0->n * sizeof(float)), 0);
}

// ---- export_gguf ----

// Logits of every position of `prompt` (F32 cache, one thread).
std::vector<float> all_logits(const std::string& path, const std::vector<int32_t>& prompt) {
  EngineParams ep;
  ep.n_ctx = 64;
  ep.n_threads = 1;
  ep.cache_type = CacheType::F32;
  auto e = Engine::load(path, ep);
  EXPECT_TRUE(e.ok()) << e.error();
  if (!e.ok()) return {};
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], (int)i, 0, true);
  std::vector<float> logits;
  auto st = (*e)->decode(b, logits);
  EXPECT_TRUE(st.ok()) << st.message();
  return logits;
}

std::vector<int32_t> prompt_tokens(const std::string& model_path) {
  auto tok = Tokenizer::from_file(model_path);
  EXPECT_TRUE(tok.ok()) << tok.error();
  return tok.ok() ? (*tok)->tokenize("Once upon a time, there was a little dog", true, false) : std::vector<int32_t>{};
}

TEST(ExportGguf, Stories260KRoundTripIsExact) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto src = open_gguf(path);
  ASSERT_TRUE(src);
  auto m = init_from_gguf(path);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string dir = fresh_dir("roundtrip");
  const std::string out = dir + "/out.gguf";
  auto st = export_gguf(*m, *src, export_to(out, "F32", "stories260K retrained"));
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"out.gguf"});  // no temporary left

  auto loaded = load_model(out);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ((*loaded)->hp.n_vocab, 512);
  EXPECT_EQ((*loaded)->hp.head_dim, 8);

  auto f = open_gguf(out);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get_string("general.architecture").value_or(""), "llama");
  EXPECT_EQ(f->get_int("general.file_type").value_or(-1), 0);
  EXPECT_EQ(f->get_string("general.name").value_or(""), "stories260K retrained");
  for (const char* k : {"context_length", "embedding_length", "block_count", "feed_forward_length",
                        "attention.head_count", "attention.head_count_kv", "attention.key_length",
                        "attention.value_length", "attention.layer_norm_rms_epsilon", "rope.dimension_count",
                        "rope.freq_base"})
    EXPECT_NE(f->find(std::string("llama.") + k), nullptr) << k;
  EXPECT_EQ(f->get_int("llama.attention.key_length").value_or(0), 8);
  EXPECT_EQ(f->get_int("llama.rope.dimension_count").value_or(0), 8);
  EXPECT_FLOAT_EQ((float)f->get_float("llama.attention.layer_norm_rms_epsilon").value_or(0), 1e-5f);
  // the vocabulary and every other non-hyperparameter key come along unchanged
  for (const auto& [k, v] : src->metadata()) {
    if (k.rfind("llama.", 0) == 0 || k == "general.name") continue;
    const GgufValue* got = f->find(k);
    ASSERT_NE(got, nullptr) << k;
    EXPECT_TRUE(*got == v) << k;
  }
  // the weights are the source's, byte for byte, in the source's shapes
  for (const auto& t : src->tensors()) {
    const TensorInfo* g = f->find_tensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    ASSERT_EQ(g->type, GgmlType::F32);
    ASSERT_EQ(g->nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(g->data, t.data, t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(f->tensors().size(), src->tensors().size());

  const std::vector<int32_t> prompt = prompt_tokens(path);
  ASSERT_GT(prompt.size(), 5u);
  const std::vector<float> want = all_logits(path, prompt), got = all_logits(out, prompt);
  ASSERT_EQ(want.size(), prompt.size() * 512);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << i;
}

// qwen3 (q/k norms, NeoX) and llama3rope (rope_freqs) come back exact too.
TEST(ExportGguf, SyntheticRoundTrip) {
  for (const char* v : {"qwen3", "llama3rope", "qwen2"}) {
    SCOPED_TRACE(v);
    SLIM_SHARED_FILE(path, std::string("models/synthetic/") + v + "-F32.gguf");
    auto src = open_gguf(path);
    ASSERT_TRUE(src);
    auto m = init_from_gguf(path);
    ASSERT_TRUE(m.ok()) << m.error();
    const std::string out = fresh_dir(std::string("synth-") + v) + "/out.gguf";
    auto st = export_gguf(*m, *src, export_to(out));
    ASSERT_TRUE(st.ok()) << st.message();
    auto f = open_gguf(out);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->get_string("general.name").value_or(""), src->get_string("general.name").value_or("?"));
    EXPECT_EQ(f->tensors().size(), src->tensors().size());
    const std::vector<int32_t> prompt = prompt_tokens(path);
    const std::vector<float> want = all_logits(path, prompt), got = all_logits(out, prompt);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_FALSE(want.empty());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << i;
  }
}

// A model from a shape with another family's vocabulary source: the source's
// <arch>.* keys are dropped, the new family's written, and it loads.
TEST(ExportGguf, FromShapeWithForeignVocabulary) {
  SLIM_SHARED_FILE(vocab, "models/synthetic/qwen2-F32.gguf");
  auto src = open_gguf(vocab);
  ASSERT_TRUE(src);
  Shape s = *parse_shape("arch=qwen3,dim=64,layers=2,heads=4,kv_heads=2,ffn=128,head_dim=32,ctx=256", 512);
  auto m = init_from_shape(s, 5);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string out = fresh_dir("foreign") + "/q3.gguf";
  ASSERT_TRUE(export_gguf(*m, *src, export_to(out, "F32", "tiny qwen3")).ok());
  auto f = open_gguf(out);
  ASSERT_TRUE(f);
  for (const auto& [k, v] : f->metadata()) EXPECT_NE(k.rfind("qwen2.", 0), 0u) << k;
  EXPECT_EQ(f->get_int("qwen3.attention.key_length").value_or(0), 32);
  EXPECT_EQ(f->get_int("qwen3.context_length").value_or(0), 256);
  auto loaded = load_model(out);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ((*loaded)->hp.n_embd_q(), 128);
  EXPECT_EQ((*loaded)->hp.rope_type, RopeType::Neox);
  EXPECT_TRUE((*loaded)->layers[0].q_norm);
  EXPECT_FALSE(all_logits(out, prompt_tokens(vocab)).empty());
}

TEST(ExportGguf, Q8_0LoadsAndRuns) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto src = open_gguf(path);
  ASSERT_TRUE(src);
  auto m = init_from_gguf(path);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string dir = fresh_dir("q8");
  const std::string out = dir + "/q8.gguf";
  auto st = export_gguf(*m, *src, export_to(out, "Q8_0"));
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"q8.gguf"});  // the F32 temporary is gone
  auto f = open_gguf(out);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get_int("general.file_type").value_or(-1), 7);  // llama.cpp's MOSTLY_Q8_0
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type, GgmlType::Q8_0);

  const std::vector<int32_t> prompt = prompt_tokens(path);
  const std::vector<float> want = all_logits(path, prompt), got = all_logits(out, prompt);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  // close to the F32 model, not equal to it
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i]));
    diff = std::max(diff, (double)std::fabs(got[i] - want[i]));
    scale = std::max(scale, (double)std::fabs(want[i]));
  }
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.05 * scale);

  auto bad = export_gguf(*m, *src, export_to(dir + "/x.gguf", "Q9_9"));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("Q9_9"), std::string::npos);
}

TEST(ExportGguf, RefusesVocabularyMismatch) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto src = open_gguf(path);
  ASSERT_TRUE(src);
  auto m = init_from_shape(*parse_shape("dim=32,layers=1,heads=4,ffn=64", 300), 1);
  ASSERT_TRUE(m.ok());
  const std::string dir = fresh_dir("mismatch");
  auto st = export_gguf(*m, *src, export_to(dir + "/out.gguf"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("512 tokens"), std::string::npos) << st.message();
  EXPECT_TRUE(files_in(dir).empty());
}

}  // namespace
}  // namespace slim::train
