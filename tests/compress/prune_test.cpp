// `slim prune`: shapes and metadata of pruned stories260K files, that they
// load and generate, that a pruned model computes exactly what the original
// computes with the removed parts switched off (their output columns zeroed,
// built here independently of the pruner), the importance scores against
// their definitions and against the reverse choice, the qwen2/qwen3 and
// quantized paths, and the bad-input cases through the binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "compress/prune.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace slim {
namespace {

using test::run_command;
using test::slim_binary;
namespace fs = std::filesystem;

const char* kStories = "models/stories260K.gguf";

std::string data_file(const std::string& name) { return std::string(SLIM_SOURCE_DIR) + "/tests/compress/data/" + name; }
std::string tmp(const std::string& name) { return test::temp_dir() + "/prune-" + name; }
std::string calibration() { return test::read_file(data_file("story_calibration.txt")); }
std::string heldout() { return test::read_file(data_file("story_heldout.txt")); }

// check, measure, plan: what `slim prune` does before writing.
Result<PrunePlan> make_plan(const std::string& in, const PruneParams& p, PruneImportance* imp_out = nullptr) {
  auto f = GgufFile::open(in);
  if (!f) return f.status();
  auto s = check_prune(**f, p);
  if (!s) return s.status();
  auto imp = p.method == PruneMethod::Activation ? measure_activation_importance(in, calibration(), p)
                                                 : measure_magnitude_importance(**f, *s, 2);
  if (!imp) return imp.status();
  if (imp_out) *imp_out = *imp;
  return plan_prune(**f, *s, *imp);
}

PrunePlan prune_to(const std::string& in, const std::string& out, const PruneParams& p,
                   PruneImportance* imp = nullptr) {
  auto plan = make_plan(in, p, imp);
  EXPECT_TRUE(plan.ok()) << plan.error();
  if (!plan.ok()) return {};
  auto w = write_pruned(in, out, *plan, 2);
  EXPECT_TRUE(w.ok()) << w.error();
  return *plan;
}

std::vector<int64_t> shape(const GgufFile& f, const std::string& name) {
  const TensorInfo* t = f.find_tensor(name);
  if (!t) return {};
  return std::vector<int64_t>(t->ne, t->ne + t->n_dims);
}

int64_t meta_int(const GgufFile& f, const std::string& key) { return f.get_int(key).value_or(-1); }

std::unique_ptr<Engine> load_engine(const std::string& path) {
  EngineParams ep;
  ep.n_ctx = 256;
  ep.n_threads = 2;
  ep.cache_type = CacheType::F32;
  auto e = Engine::load(path, ep);
  EXPECT_TRUE(e.ok()) << path << ": " << e.error();
  return e.ok() ? std::move(*e) : nullptr;
}

// The model loads, and greedily generates n tokens from a story prompt.
void expect_generates(const std::string& path, int n = 12) {
  auto e = load_engine(path);
  ASSERT_TRUE(e);
  GenerateParams gp;
  gp.n_predict = n;
  gp.ignore_eos = true;
  gp.sampling.temperature = 0;
  auto prompt = e->tokenizer().tokenize("Once upon a time, there was a little girl", true, false);
  auto r = generate(*e, 0, prompt, gp);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((int)r->tokens.size(), n) << path;
  for (int32_t t : r->tokens) EXPECT_TRUE(t >= 0 && t < e->model().hp.n_vocab);
}

// Logits of every position of the first `n` tokens of `text` (one sequence).
std::vector<float> logits_of(const std::string& path, const std::string& text, int n = 128) {
  auto e = load_engine(path);
  if (!e) return {};
  auto ids = e->tokenizer().tokenize(text, true, false);
  ids.resize(std::min<size_t>(ids.size(), (size_t)n));
  Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], (int)i, 0, true);
  std::vector<float> lg;
  EXPECT_TRUE(e->decode(b, lg).ok());
  return lg;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

// Mean KL divergence of rows of n_vocab logits b against a.
double mean_kl(const std::vector<float>& a, const std::vector<float>& b, int n_vocab) {
  EXPECT_EQ(a.size(), b.size());
  const size_t rows = std::min(a.size(), b.size()) / n_vocab;
  double total = 0;
  for (size_t r = 0; r < rows; ++r) {
    auto lse = [&](const float* z) {
      double mx = *std::max_element(z, z + n_vocab), s = 0;
      for (int i = 0; i < n_vocab; ++i) s += std::exp(z[i] - mx);
      return mx + std::log(s);
    };
    const float *za = &a[r * n_vocab], *zb = &b[r * n_vocab];
    const double la = lse(za), lb = lse(zb);
    for (int i = 0; i < n_vocab; ++i) {
      const double pa = za[i] - la, pb = zb[i] - lb;
      total += std::exp(pa) * (pa - pb);
    }
  }
  return rows ? total / rows : 0;
}

// The input model with what `plan` removes switched off instead of removed:
// the removed query heads' attn_output columns and the removed neurons'
// ffn_down columns zeroed, and a removed layer's attn_output and ffn_down
// zeroed whole (the layer then passes its input through unchanged). F32 only.
void write_switched_off(const std::string& in, const std::string& out, const PrunePlan& plan) {
  auto f = GgufFile::open(in);
  ASSERT_TRUE(f.ok());
  GgufWriter w;
  w.copy_metadata_from(**f);
  const int hdv = plan.shape.head_dim_v;
  for (const TensorInfo& t : (*f)->tensors()) {
    ASSERT_EQ(t.type, GgmlType::F32) << t.name;
    std::vector<float> x((size_t)t.n_elements());
    std::memcpy(x.data(), t.data, t.nbytes);
    for (const PruneLayer& l : plan.layers) {
      const std::string blk = "blk." + std::to_string(l.layer) + ".";
      const bool wo = t.name == blk + "attn_output.weight", down = t.name == blk + "ffn_down.weight";
      if (!wo && !down) continue;
      const int64_t ne0 = t.ne[0];
      std::vector<int64_t> cols;
      if (l.new_index < 0) {
        for (int64_t c = 0; c < ne0; ++c) cols.push_back(c);
      } else if (wo) {
        for (int h : l.heads_removed)
          for (int i = 0; i < hdv; ++i) cols.push_back((int64_t)h * hdv + i);
      } else {
        for (int n : l.ffn_removed) cols.push_back(n);
      }
      for (int64_t r = 0; r < t.ne[1]; ++r)
        for (int64_t c : cols) x[(size_t)(r * ne0 + c)] = 0;
    }
    ASSERT_TRUE(w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), x.data(), t.nbytes).ok());
  }
  ASSERT_TRUE(w.write(out).ok());
}

// ---- stories260K ----

TEST(PruneStories, FfnShapesMetadataAndGeneration) {
  SLIM_SHARED_FILE(in, kStories);
  const std::string out = tmp("ffn.gguf");
  PruneParams p;
  p.ffn = 0.3;
  PrunePlan plan = prune_to(in, out, p);
  EXPECT_EQ(plan.n_ff_after, 120);  // 172 - round(0.3 * 172)
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.error();
  auto src = GgufFile::open(in);
  ASSERT_TRUE(src.ok());
  EXPECT_EQ(meta_int(**f, "llama.feed_forward_length"), 120);
  EXPECT_EQ(meta_int(**f, "llama.block_count"), 5);
  EXPECT_EQ((*f)->get_string("general.pruned_from").value_or(""), "stories260K.gguf");
  EXPECT_NE((*f)->get_string("general.pruning").value_or("").find("FFN 172 -> 120"), std::string::npos);
  ASSERT_TRUE((*f)->get_array("tokenizer.ggml.tokens"));
  EXPECT_TRUE(*(*f)->get_array("tokenizer.ggml.tokens") == *(*src)->get_array("tokenizer.ggml.tokens"));
  for (int il = 0; il < 5; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    EXPECT_EQ(shape(**f, b + "ffn_gate.weight"), (std::vector<int64_t>{64, 120}));
    EXPECT_EQ(shape(**f, b + "ffn_up.weight"), (std::vector<int64_t>{64, 120}));
    EXPECT_EQ(shape(**f, b + "ffn_down.weight"), (std::vector<int64_t>{120, 64}));
    EXPECT_EQ(shape(**f, b + "attn_q.weight"), (std::vector<int64_t>{64, 64}));
    EXPECT_EQ(plan.layers[il].ffn_removed.size(), 52u);
  }
  // the kept rows are the original rows, byte for byte
  const TensorInfo* g0 = (*src)->find_tensor("blk.0.ffn_gate.weight");
  const TensorInfo* g1 = (*f)->find_tensor("blk.0.ffn_gate.weight");
  int kept = 0;
  for (int n = 0; n < 172; ++n) {
    if (std::binary_search(plan.layers[0].ffn_removed.begin(), plan.layers[0].ffn_removed.end(), n)) continue;
    EXPECT_EQ(std::memcmp(g0->data + (size_t)n * 256, g1->data + (size_t)kept * 256, 256), 0) << n;
    ++kept;
  }
  EXPECT_EQ(plan.params_after, plan.params_before - 5 * 52 * 3 * 64);
  expect_generates(out);
}

TEST(PruneStories, HeadsKeepWholeGqaGroups) {
  SLIM_SHARED_FILE(in, kStories);
  const std::string out = tmp("heads.gguf");
  PruneParams p;
  p.heads = 0.25;  // 1 of 4 KV groups, with its 2 query heads
  PrunePlan plan = prune_to(in, out, p);
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(meta_int(**f, "llama.attention.head_count"), 6);
  EXPECT_EQ(meta_int(**f, "llama.attention.head_count_kv"), 3);
  EXPECT_EQ(meta_int(**f, "llama.attention.key_length"), 8);
  EXPECT_EQ(meta_int(**f, "llama.attention.value_length"), 8);
  EXPECT_EQ(meta_int(**f, "llama.rope.dimension_count"), 8);
  EXPECT_EQ(meta_int(**f, "llama.embedding_length"), 64);
  for (int il = 0; il < 5; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    EXPECT_EQ(shape(**f, b + "attn_q.weight"), (std::vector<int64_t>{64, 48}));
    EXPECT_EQ(shape(**f, b + "attn_k.weight"), (std::vector<int64_t>{64, 24}));
    EXPECT_EQ(shape(**f, b + "attn_v.weight"), (std::vector<int64_t>{64, 24}));
    EXPECT_EQ(shape(**f, b + "attn_output.weight"), (std::vector<int64_t>{48, 64}));
    const PruneLayer& l = plan.layers[il];
    ASSERT_EQ(l.groups_removed.size(), 1u);
    EXPECT_EQ(l.heads_removed, (std::vector<int>{2 * l.groups_removed[0], 2 * l.groups_removed[0] + 1}));
  }
  auto m = load_model(out);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ((*m)->hp.head_dim, 8);
  EXPECT_EQ((*m)->hp.n_head, 6);
  expect_generates(out);
}

TEST(PruneStories, LayersRemovesTheLowestBlockImportance) {
  SLIM_SHARED_FILE(in, kStories);
  const std::string out = tmp("layers.gguf");
  PruneParams p;
  p.layers = 1;
  PruneImportance imp;
  PrunePlan plan = prune_to(in, out, p, &imp);
  ASSERT_EQ(plan.removed_layers.size(), 1u);
  const int gone = plan.removed_layers[0];
  EXPECT_EQ(gone, (int)(std::min_element(imp.layers.begin(), imp.layers.end()) - imp.layers.begin()));
  for (double s : imp.layers) EXPECT_TRUE(s > 0 && s < 2) << s;  // 1 - cosine
  auto f = GgufFile::open(out);
  auto src = GgufFile::open(in);
  ASSERT_TRUE(f.ok() && src.ok());
  EXPECT_EQ(meta_int(**f, "llama.block_count"), 4);
  EXPECT_FALSE((*f)->find_tensor("blk.4.attn_q.weight"));
  // kept layers renumbered densely, their tensors unchanged
  for (int il = 0, j = 0; il < 5; ++il) {
    if (il == gone) continue;
    for (const char* k : {"attn_q.weight", "ffn_down.weight", "attn_norm.weight"}) {
      const TensorInfo* a = (*src)->find_tensor("blk." + std::to_string(il) + "." + k);
      const TensorInfo* b = (*f)->find_tensor("blk." + std::to_string(j) + "." + k);
      ASSERT_TRUE(a && b) << il << " " << k;
      ASSERT_EQ(a->nbytes, b->nbytes);
      EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << il << " -> " << j << " " << k;
    }
    ++j;
  }
  expect_generates(out);
}

// All three at once: the pruned model computes what the original computes
// with the removed neurons, heads and layer switched off.
TEST(PruneStories, CombinedEqualsTheOriginalWithThePartsSwitchedOff) {
  SLIM_SHARED_FILE(in, kStories);
  const std::string out = tmp("all.gguf"), off = tmp("all-off.gguf");
  PruneParams p;
  p.ffn = 0.3;
  p.heads = 0.25;
  p.layers = 1;
  PrunePlan plan = prune_to(in, out, p);
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(meta_int(**f, "llama.block_count"), 4);
  EXPECT_EQ(meta_int(**f, "llama.feed_forward_length"), 120);
  EXPECT_EQ(meta_int(**f, "llama.attention.head_count"), 6);
  EXPECT_EQ(shape(**f, "blk.3.attn_output.weight"), (std::vector<int64_t>{48, 64}));
  EXPECT_LT(plan.params_after, plan.params_before * 7 / 10);
  expect_generates(out);

  write_switched_off(in, off, plan);
  const auto a = logits_of(out, heldout()), b = logits_of(off, heldout()), orig = logits_of(in, heldout());
  ASSERT_FALSE(a.empty());
  EXPECT_LT(max_abs_diff(a, b), 2e-3);      // the same function: float summation order only
  EXPECT_GT(max_abs_diff(a, orig), 1e-1);  // and not the original one
}

TEST(PruneStories, RatioZeroKeepsTheLogits) {
  SLIM_SHARED_FILE(in, kStories);
  const std::string out = tmp("zero.gguf");
  PruneParams p;
  PrunePlan plan = prune_to(in, out, p);
  EXPECT_EQ(plan.params_after, plan.params_before);
  for (const PrunedTensor& t : plan.tensors) EXPECT_TRUE(t.copied()) << t.name;
  const auto a = logits_of(in, heldout()), b = logits_of(out, heldout());
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

// Removing what the scores call least important must hurt less than removing
// what they call most important (same counts, plan_prune with the scores negated).
TEST(PruneStories, LowImportanceCostsLessThanHighImportance) {
  SLIM_SHARED_FILE(in, kStories);
  const auto base = logits_of(in, heldout());
  for (int kind = 0; kind < 3; ++kind) {
    PruneParams p;
    if (kind == 0) p.ffn = 0.3;
    if (kind == 1) p.heads = 0.25;
    if (kind == 2) p.layers = 1;
    auto f = GgufFile::open(in);
    ASSERT_TRUE(f.ok());
    auto s = check_prune(**f, p);
    ASSERT_TRUE(s.ok()) << s.error();
    auto imp = measure_activation_importance(in, calibration(), p);
    ASSERT_TRUE(imp.ok()) << imp.error();
    PruneImportance rev = *imp;
    for (auto& v : rev.ffn) for (double& x : v) x = -x;
    for (auto& v : rev.groups) for (double& x : v) x = -x;
    for (double& x : rev.layers) x = -x;
    double kl[2];
    for (int r = 0; r < 2; ++r) {
      auto plan = plan_prune(**f, *s, r ? rev : *imp);
      ASSERT_TRUE(plan.ok()) << plan.error();
      const std::string out = tmp("order" + std::to_string(kind) + std::to_string(r) + ".gguf");
      ASSERT_TRUE(write_pruned(in, out, *plan, 2).ok());
      kl[r] = mean_kl(base, logits_of(out, heldout()), 512);
    }
    EXPECT_LT(kl[0], kl[1]) << "kind " << kind << ": KL removing the least important " << kl[0]
                            << ", the most important " << kl[1];
  }
}

// Activation scores against their definitions, recomputed from the traced
// activations of one forward pass here.
TEST(PruneStories, ActivationScoresFollowTheirDefinitions) {
  SLIM_SHARED_FILE(in, kStories);
  auto file = GgufFile::open(in);
  ASSERT_TRUE(file.ok());
  auto tok = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tok.ok());
  const std::string text = calibration();
  auto ids = (*tok)->tokenize(text, true, false);
  ASSERT_GE(ids.size(), 64u);
  ids.resize(64);
  PruneParams p;
  p.n_ctx = 64;
  p.n_chunks = 1;
  auto imp = measure_activation_importance(in, text, p);
  ASSERT_TRUE(imp.ok()) << imp.error();
  EXPECT_EQ(imp->n_tokens, 64);

  struct Seen {
    std::vector<std::vector<float>> ffn_act, attn, stream;  // stream[0] = embd, stream[l+1] = layer l's output
  } seen;
  auto model = load_model(*file);
  ASSERT_TRUE(model.ok());
  ForwardState st;
  st.kv = make_kv_cache((*model)->hp, 64, 1, CacheType::F32);
  st.trace_user = &seen;
  st.trace = [](void* u, const char* name, int, const float* d, int nt, int n) {
    auto* s = static_cast<Seen*>(u);
    std::vector<float> v(d, d + (size_t)nt * n);
    if (!std::strcmp(name, "ffn_act")) s->ffn_act.push_back(v);
    if (!std::strcmp(name, "attn")) s->attn.push_back(v);
    if (!std::strcmp(name, "embd") || !std::strcmp(name, "layer_out")) s->stream.push_back(v);
  };
  Batch b;
  for (int i = 0; i < 64; ++i) b.add(ids[i], i, 0, false);
  std::vector<float> lg;
  ASSERT_TRUE(forward(**model, st, b, lg).ok());
  ASSERT_EQ(seen.stream.size(), 6u);
  for (int il : {0, 3}) {
    for (int n : {0, 17, 171}) {
      double s = 0;
      for (int t = 0; t < 64; ++t) s += std::fabs(seen.ffn_act[il][(size_t)t * 172 + n]);
      EXPECT_NEAR(imp->ffn[il][n], s / 64, 1e-6 * (1 + s / 64));
    }
    for (int g = 0; g < 4; ++g) {
      double s = 0;
      for (int h = 2 * g; h < 2 * g + 2; ++h)
        for (int t = 0; t < 64; ++t) {
          double ss = 0;
          for (int i = 0; i < 8; ++i) ss += std::pow(seen.attn[il][(size_t)t * 64 + h * 8 + i], 2);
          s += std::sqrt(ss);
        }
      EXPECT_NEAR(imp->groups[il][g], s / 64, 1e-6 * (1 + s / 64));
    }
    double cs = 0;
    for (int t = 0; t < 64; ++t) {
      double ab = 0, aa = 0, bb = 0;
      for (int i = 0; i < 64; ++i) {
        const double x = seen.stream[il][(size_t)t * 64 + i], y = seen.stream[il + 1][(size_t)t * 64 + i];
        ab += x * y, aa += x * x, bb += y * y;
      }
      cs += ab / std::sqrt(aa * bb);
    }
    EXPECT_NEAR(imp->layers[il], 1 - cs / 64, 1e-9);
  }
}

TEST(PruneStories, MagnitudeScoresFollowTheirDefinitions) {
  SLIM_SHARED_FILE(in, kStories);
  auto f = GgufFile::open(in);
  ASSERT_TRUE(f.ok());
  auto s = check_prune(**f, PruneParams{});
  ASSERT_TRUE(s.ok());
  auto imp = measure_magnitude_importance(**f, *s, 2);
  ASSERT_TRUE(imp.ok()) << imp.error();
  auto mat = [&](const std::string& name) {
    const TensorInfo* t = (*f)->find_tensor(name);
    EXPECT_TRUE(t && t->type == GgmlType::F32) << name;
    return reinterpret_cast<const float*>(t->data);
  };
  const int il = 2;
  const float* gate = mat("blk.2.ffn_gate.weight");  // [172 rows][64]
  const float* up = mat("blk.2.ffn_up.weight");
  const float* down = mat("blk.2.ffn_down.weight");  // [64 rows][172]
  for (int n : {0, 50, 171}) {
    double g = 0, u = 0, d = 0;
    for (int i = 0; i < 64; ++i) g += gate[n * 64 + i] * gate[n * 64 + i], u += up[n * 64 + i] * up[n * 64 + i];
    for (int r = 0; r < 64; ++r) d += down[r * 172 + n] * down[r * 172 + n];
    EXPECT_NEAR(imp->ffn[il][n], std::sqrt(g * u * d), 1e-9 + 1e-6 * imp->ffn[il][n]);
  }
  const float* q = mat("blk.2.attn_q.weight");    // [64 rows][64]
  const float* k = mat("blk.2.attn_k.weight");    // [32 rows][64]
  const float* v = mat("blk.2.attn_v.weight");
  const float* o = mat("blk.2.attn_output.weight");  // [64 rows][64 cols]
  const int g = 1;
  double sum = 0;
  for (int r = 16; r < 32; ++r)  // query heads 2 and 3
    for (int i = 0; i < 64; ++i) sum += q[r * 64 + i] * q[r * 64 + i];
  for (int r = 8; r < 16; ++r)
    for (int i = 0; i < 64; ++i) sum += k[r * 64 + i] * k[r * 64 + i] + v[r * 64 + i] * v[r * 64 + i];
  for (int r = 0; r < 64; ++r)
    for (int c = 16; c < 32; ++c) sum += o[r * 64 + c] * o[r * 64 + c];
  EXPECT_NEAR(imp->groups[il][g], std::sqrt(sum), 1e-6 * std::sqrt(sum));
  EXPECT_GT(imp->layers[il], 0);
}

// ---- other families and types ----

TEST(PruneSynthetic, Qwen2BiasesAndQwen3NormsPruneAndLoad) {
  for (const char* name : {"qwen2-F32", "qwen3-F32"}) {
    SLIM_SHARED_FILE(in, std::string("models/synthetic/") + name + ".gguf");
    const std::string arch = std::string(name).substr(0, 5);
    const std::string out = tmp(std::string(name) + ".gguf"), off = tmp(std::string(name) + "-off.gguf");
    PruneParams p;
    p.ffn = 0.25;
    p.heads = 0.5;  // 1 of 2 KV groups: 2 of 4 heads
    p.layers = 1;
    PrunePlan plan = prune_to(in, out, p);
    auto f = GgufFile::open(out);
    ASSERT_TRUE(f.ok()) << f.error();
    EXPECT_EQ(meta_int(**f, arch + ".block_count"), 1);
    EXPECT_EQ(meta_int(**f, arch + ".feed_forward_length"), 384);
    EXPECT_EQ(meta_int(**f, arch + ".attention.head_count"), 2);
    EXPECT_EQ(meta_int(**f, arch + ".attention.head_count_kv"), 1);
    EXPECT_EQ(meta_int(**f, arch + ".attention.key_length"), 64);
    EXPECT_EQ(shape(**f, "blk.0.attn_q.weight"), (std::vector<int64_t>{256, 128}));
    EXPECT_EQ(shape(**f, "blk.0.attn_output.weight"), (std::vector<int64_t>{128, 256}));
    if (arch == "qwen2") {
      EXPECT_EQ(shape(**f, "blk.0.attn_q.bias"), (std::vector<int64_t>{128}));
      EXPECT_EQ(shape(**f, "blk.0.attn_k.bias"), (std::vector<int64_t>{64}));
      EXPECT_EQ(shape(**f, "blk.0.attn_v.bias"), (std::vector<int64_t>{64}));
    } else {
      EXPECT_EQ(shape(**f, "blk.0.attn_q_norm.weight"), (std::vector<int64_t>{64}));
      EXPECT_EQ(shape(**f, "blk.0.attn_k_norm.weight"), (std::vector<int64_t>{64}));
    }
    expect_generates(out);
    write_switched_off(in, off, plan);
    const auto a = logits_of(out, heldout(), 64), b = logits_of(off, heldout(), 64);
    ASSERT_FALSE(a.empty());
    double scale = 0;
    for (float x : b) scale = std::max(scale, (double)std::fabs(x));
    EXPECT_LT(max_abs_diff(a, b), 1e-4 * (1 + scale)) << name;
  }
}

TEST(PruneSynthetic, QuantizedColumnsAreRequantizedOrWidened) {
  {
    SLIM_SHARED_FILE(in, "models/synthetic/llama-Q8_0.gguf");
    const std::string out = tmp("q8.gguf");
    PruneParams p;
    p.ffn = 0.25;   // 384 columns: a multiple of Q8_0's 32
    p.heads = 0.5;  // 128 columns
    PrunePlan plan = prune_to(in, out, p);
    auto f = GgufFile::open(out);
    auto src = GgufFile::open(in);
    ASSERT_TRUE(f.ok() && src.ok());
    for (const char* name : {"blk.1.ffn_down.weight", "blk.1.attn_output.weight"}) {
      const TensorInfo* a = (*src)->find_tensor(name);
      const TensorInfo* b = (*f)->find_tensor(name);
      ASSERT_TRUE(a && b);
      ASSERT_EQ(b->type, GgmlType::Q8_0) << name;
      const PrunedTensor* pt = nullptr;
      for (const auto& t : plan.tensors)
        if (t.name == name) pt = &t;
      ASSERT_TRUE(pt && pt->note.empty());
      // each kept column's values within Q8_0's rounding of the originals
      std::vector<float> x(a->ne[0]), y(b->ne[0]);
      for (int64_t r = 0; r < a->ne[1]; ++r) {
        type_traits(a->type).to_float(a->data + r * row_size(a->type, a->ne[0]), x.data(), a->ne[0]);
        type_traits(b->type).to_float(b->data + r * row_size(b->type, b->ne[0]), y.data(), b->ne[0]);
        float amax = 0;
        for (float v : x) amax = std::max(amax, std::fabs(v));
        for (int64_t j = 0; j < b->ne[0]; ++j)
          ASSERT_NEAR(y[j], x[pt->keep_cols[j]], amax / 127 + 1e-6) << name << " row " << r << " col " << j;
      }
    }
    expect_generates(out);
  }
  {
    SLIM_SHARED_FILE(in, "models/synthetic/llama-Q4_K_M.gguf");
    const std::string out = tmp("q4km.gguf");
    PruneParams p;
    p.ffn = 0.3;  // 358 columns: not a multiple of 256
    PrunePlan plan = prune_to(in, out, p);
    auto f = GgufFile::open(out);
    ASSERT_TRUE(f.ok());
    const TensorInfo* down = (*f)->find_tensor("blk.0.ffn_down.weight");
    ASSERT_TRUE(down);
    EXPECT_EQ(down->type, GgmlType::F16);
    EXPECT_EQ(down->ne[0], 358);
    bool noted = false;
    for (const auto& t : plan.tensors)
      if (t.name == "blk.0.ffn_down.weight") noted = t.note.find("F16") != std::string::npos;
    EXPECT_TRUE(noted);
    const TensorInfo* gate = (*f)->find_tensor("blk.0.ffn_gate.weight");
    auto src = GgufFile::open(in);
    ASSERT_TRUE(gate && src.ok());
    EXPECT_EQ(gate->type, (*src)->find_tensor("blk.0.ffn_gate.weight")->type);  // rows keep their type
    expect_generates(out);
  }
}

TEST(PruneSynthetic, Gemma3FfnOnly) {
  SLIM_SHARED_FILE(in, "models/synthetic/gemma3-F32.gguf");
  const std::string out = tmp("gemma3.gguf");
  PruneParams p;
  p.ffn = 0.5;
  prune_to(in, out, p);
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(meta_int(**f, "gemma3.feed_forward_length"), 128);
  expect_generates(out);
  p.ffn = 0;
  p.layers = 1;
  auto s = check_prune(**f, p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("--layers"), std::string::npos);
}

// ---- the command ----

struct Cli {
  int status;
  std::string out, err;
};

Cli run_prune(const std::string& args) {
  const std::string err_path = tmp("stderr.txt");
  auto r = run_command(slim_binary() + " prune " + args + " 2>" + err_path);
  return {r.status, r.out, test::read_file(err_path)};
}

TEST(PruneCli, DryRunAndJson) {
  SLIM_SHARED_FILE(in, kStories);
  const std::string out = tmp("cli-dry.gguf");
  fs::remove(out);
  auto r = run_prune(in + " " + out + " --ffn 0.3 --heads 0.25 -f " + data_file("story_calibration.txt") + " --dry-run");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(r.out.find("6 heads / 3 KV, FFN 120"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dry run, nothing written"), std::string::npos);
  EXPECT_EQ(r.err, "");  // no progress when piped

  r = run_prune(in + " " + out + " --layers 2 --method magnitude --json -t 2");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["method"], "magnitude");
  EXPECT_EQ(j["after"]["layers"], 3);
  EXPECT_EQ(j["removed_layers"].size(), 2u);
  EXPECT_EQ(j["written"], out);
  EXPECT_LT(j["after"]["params"].get<int64_t>(), j["before"]["params"].get<int64_t>());
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(meta_int(**f, "llama.block_count"), 3);
  EXPECT_EQ((int64_t)f.value()->tensors().size(), 3 + 3 * 9);
}

TEST(PruneCli, BadInputIsOneLineAndNoFile) {
  SLIM_SHARED_FILE(in, kStories);
  SLIM_SHARED_FILE(phi3, "models/synthetic/phi3-F32.gguf");
  const std::string out = tmp("cli-bad.gguf"), calib = " -f " + data_file("story_calibration.txt");
  struct Case {
    std::string args, expect;
  } cases[] = {
      {in + " " + out + " --ffn 1.0" + calib, "--ffn 1"},
      {in + " " + out + " --ffn -0.1" + calib, "--ffn"},
      {in + " " + out + " --heads 0.9" + calib, "possible fractions: 0.25, 0.5, 0.75"},
      {in + " " + out + " --heads 0.1" + calib, "would remove 0 of the 4 KV groups"},
      {in + " " + out + " --layers 5" + calib, "the model has 5 layers"},
      {in + " " + out + " --ffn 0.3", "needs calibration text"},
      {in + " " + out + " --ffn 0.3 -f /nonexistent/calib.txt", "/nonexistent/calib.txt"},
      {"/nonexistent/model.gguf " + out + " --ffn 0.3" + calib, "model.gguf"},
      {in + " --ffn 0.3" + calib, "no output file"},
      {in + " " + out + " --ffn 0.3 --method taylor" + calib, "unknown importance method"},
      {phi3 + " " + out + " --ffn 0.3" + calib, "fused gate+up"},
      {phi3 + " " + out + " --heads 0.5" + calib, "fused attn_qkv"},
      {in + " " + in + " --ffn 0.3" + calib, "is the input file"},
  };
  for (const Case& c : cases) {
    fs::remove(out);
    auto r = run_prune(c.args);
    EXPECT_EQ(r.status, 1) << c.args;
    EXPECT_EQ(r.err.rfind("slim: error: ", 0), 0u) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
}

}  // namespace
}  // namespace slim
