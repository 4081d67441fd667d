// `slim quantize`: the block search against the tensor/ reference rounding on
// fixed random data, the recipe against llama-quantize's own files, KL
// divergence of quantized synthetic llamas against their F32 source (and
// against llama.cpp's files of the same types), the importance matrix, the
// metadata, and the bad-input cases through the binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "compress/block_quant.h"
#include "compress/quantize.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "model/synth.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace slim {
namespace {

using test::run_command;
using test::slim_binary;

namespace fs = std::filesystem;

std::string data_file(const std::string& name) { return std::string(SLIM_SOURCE_DIR) + "/tests/compress/data/" + name; }
std::string tmp(const std::string& name) { return test::temp_dir() + "/" + name; }

// Every file type slim quantize offers (F32 aside).
const std::vector<std::string> kTypes = {"F16",    "BF16",   "Q8_0",   "Q4_0",   "Q4_1",   "Q5_0",
                                         "Q5_1",   "Q2_K",   "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
                                         "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",   "IQ4_NL", "IQ4_XS"};
// The tensor types behind them.
const std::vector<GgmlType> kTensorTypes = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,  GgmlType::Q4_0,
                                            GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,  GgmlType::Q2_K,
                                            GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,  GgmlType::Q6_K,
                                            GgmlType::IQ4_NL, GgmlType::IQ4_XS};

// ---- fixed pseudo-random weights: normal rows, and heavy-tailed rows (a
// normal times an occasional outlier), as trained matrices have ----

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
double uniform01(uint64_t& s) { return ((splitmix(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
float normal(uint64_t& s) { return (float)(std::sqrt(-2 * std::log(uniform01(s))) * std::cos(6.283185307179586 * uniform01(s))); }

std::vector<float> random_weights(int64_t rows, int64_t cols, uint64_t seed) {
  std::vector<float> x((size_t)(rows * cols));
  uint64_t s = seed;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float v = 0.02f * normal(s);
      if (r % 2 && uniform01(s) < 0.01) v *= 6;  // odd rows: 1 % outliers
      x[(size_t)(r * cols + c)] = v;
    }
  return x;
}

struct Errors {
  double weighted = 0, plain = 0, energy = 0;  // sum w e^2, sum e^2, sum x^2
};

Errors errors_of(GgmlType t, const std::vector<uint8_t>& q, const std::vector<float>& x, int64_t cols) {
  Errors e;
  const int64_t rows = (int64_t)x.size() / cols;
  std::vector<float> w((size_t)cols);
  const size_t rs = row_size(t, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * cols;
    row_weights(xr, cols, nullptr, w.data());
    e.weighted += weighted_sq_error(t, q.data() + r * rs, xr, w.data(), cols);
    e.plain += weighted_sq_error(t, q.data() + r * rs, xr, nullptr, cols);
    for (int64_t j = 0; j < cols; ++j) e.energy += (double)xr[j] * xr[j];
  }
  return e;
}

std::vector<uint8_t> search_quantize(GgmlType t, const std::vector<float>& x, int64_t cols,
                                     const std::vector<float>* importance = nullptr) {
  const int64_t rows = (int64_t)x.size() / cols;
  std::vector<uint8_t> q(row_size(t, cols) * (size_t)rows);
  std::vector<float> w((size_t)cols);
  for (int64_t r = 0; r < rows; ++r) {
    row_weights(x.data() + r * cols, cols, importance ? importance->data() : nullptr, w.data());
    quantize_row_search(t, x.data() + r * cols, w.data(), q.data() + r * row_size(t, cols), cols);
  }
  return q;
}

std::vector<uint8_t> reference_quantize(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_size(t, (int64_t)x.size()));
  type_traits(t).from_float(x.data(), q.data(), (int64_t)x.size());
  return q;
}

// Relative squared error (sum e^2 / sum x^2) each type must stay under on the
// fixed data: about 15 % above what the search gives, far below a broken
// block (which lands near 1).
const std::map<GgmlType, double> kErrorBound = {
    {GgmlType::F16, 6e-8},    {GgmlType::BF16, 3.3e-6}, {GgmlType::Q8_0, 4.8e-5}, {GgmlType::Q4_0, 1.2e-2},
    {GgmlType::Q4_1, 6.7e-3}, {GgmlType::Q5_0, 2.95e-3}, {GgmlType::Q5_1, 1.55e-3}, {GgmlType::Q2_K, 8.9e-2},
    {GgmlType::Q3_K, 3.05e-2}, {GgmlType::Q4_K, 6.85e-3}, {GgmlType::Q5_K, 1.65e-3}, {GgmlType::Q6_K, 4.5e-4},
    {GgmlType::IQ4_NL, 8.3e-3}, {GgmlType::IQ4_XS, 8.5e-3},
};

TEST(QuantizeSearch, ErrorBoundsAndNeverWorseThanReference) {
  const int64_t rows = 64, cols = 1024;
  const std::vector<float> x = random_weights(rows, cols, 7);
  for (GgmlType t : kTensorTypes) {
    SCOPED_TRACE(type_name(t));
    const auto q = search_quantize(t, x, cols);
    const auto r = reference_quantize(t, x);
    const Errors es = errors_of(t, q, x, cols), er = errors_of(t, r, x, cols);
    std::printf("%-7s relative error: search %.4e (weighted %.4e), reference %.4e (weighted %.4e)\n", type_name(t),
                es.plain / es.energy, es.weighted, er.plain / er.energy, er.weighted);
    EXPECT_LT(es.plain / es.energy, kErrorBound.at(t));
    // the objective (weighted) and the plain squared error both
    EXPECT_LE(es.weighted, er.weighted * (1 + 1e-9));
    EXPECT_LE(es.plain, er.plain * (1 + 1e-9));
    if (!type_traits(t).is_quantized) {
      EXPECT_EQ(q, r);  // float types: the exact rounding
    }
    if (t == GgmlType::Q4_0 || t == GgmlType::Q5_0 || t == GgmlType::Q8_0) {
      // where the reference takes the scale from the largest value, the search wins clearly
      EXPECT_LT(es.weighted, 0.97 * er.weighted);
      EXPECT_LT(es.plain, 0.98 * er.plain);
    }
  }
}

TEST(QuantizeSearch, EdgeBlocks) {
  // zeros, a constant, a single spike, five distinct small and huge values:
  // finite, and reconstructed within the type's usual error (Q2_K has four
  // levels a sub-block, so five distinct values cost it more)
  for (GgmlType t : kTensorTypes) {
    SCOPED_TRACE(type_name(t));
    std::vector<float> x(512, 0.0f);
    auto q = search_quantize(t, x, 512);
    std::vector<float> y(512);
    type_traits(t).to_float(q.data(), y.data(), 512);
    for (float v : y) EXPECT_EQ(v, 0.0f);
    for (int k = 0; k < 4; ++k) {
      for (int j = 0; j < 512; ++j)
        x[j] = k == 0 ? 0.5f : k == 1 ? (j == 77 ? 3.0f : 0.0f) : k == 2 ? 1e-3f * (j % 7 - 3) : 300.0f * (j % 5 - 2);
      q = search_quantize(t, x, 512);
      type_traits(t).to_float(q.data(), y.data(), 512);
      double e = 0, s = 0;
      for (int j = 0; j < 512; ++j) {
        ASSERT_TRUE(std::isfinite(y[j]));
        e += (x[j] - y[j]) * (x[j] - y[j]);
        s += x[j] * x[j];
      }
      EXPECT_LT(e, (t == GgmlType::Q2_K ? 0.15 : 0.05) * s) << "case " << k;
    }
  }
}

// ---- the recipe: llama-quantize's files are the reference ----

class QuantizeFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    f32 = test::shared_path("models/synthetic/llama-F32.gguf");
    ASSERT_TRUE(fs::exists(f32)) << "missing shared test data file: " << f32;
  }
  std::string f32;
};

TEST_F(QuantizeFiles, RecipeMatchesLlamaQuantize) {
  auto f = GgufFile::open(f32);
  ASSERT_TRUE(f.ok()) << f.error();
  int compared = 0;
  for (const std::string& type : kTypes) {
    const std::string ref = test::shared_path("models/synthetic/llama-" + type + ".gguf");
    if (!fs::exists(ref)) continue;  // the shared folder has most, not all, of the types
    SCOPED_TRACE(type);
    QuantizeParams p;
    p.ftype = type;
    auto plan = plan_quantize(**f, p);
    ASSERT_TRUE(plan.ok()) << plan.error();
    auto g = GgufFile::open(ref);
    ASSERT_TRUE(g.ok());
    for (const TensorPlan& t : plan->tensors) {
      const TensorInfo* o = (*g)->find_tensor(t.name);
      ASSERT_NE(o, nullptr) << t.name;
      EXPECT_EQ(type_name(t.to), std::string(type_name(o->type))) << t.name;
    }
    EXPECT_EQ((size_t)plan->tensors.size(), (*g)->tensors().size());
    EXPECT_EQ(find_file_type(type)->llama_ftype, (uint32_t)(*g)->get_int("general.file_type").value_or(-1));
    ++compared;
  }
  EXPECT_GE(compared, 14);  // F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_S Q4_K_M Q5_K_M Q6_K IQ4_NL IQ4_XS
}

TEST_F(QuantizeFiles, RecipeRulesAndOverrides) {
  // the mixes on a 16-layer, 4-query-heads-a-KV-head shape (llama-3.2-1b)
  const SynthShape* s = find_synth_preset("llama-3.2-1b");
  ASSERT_NE(s, nullptr);
  auto type_of = [&](const char* ftype, const std::string& name) {
    auto plan = plan_synth(*s, ftype);
    EXPECT_TRUE(plan.ok());
    for (const auto& t : plan->tensors)
      if (t.name == name) return t.type;
    ADD_FAILURE() << name;
    return GgmlType::COUNT;
  };
  EXPECT_EQ(type_of("Q2_K", "blk.3.attn_v.weight"), GgmlType::Q4_K);  // n_gqa >= 4
  EXPECT_EQ(type_of("Q2_K", "blk.3.ffn_down.weight"), GgmlType::Q3_K);
  EXPECT_EQ(type_of("Q2_K", "blk.3.attn_output.weight"), GgmlType::Q3_K);
  EXPECT_EQ(type_of("Q3_K_S", "blk.3.attn_v.weight"), GgmlType::Q3_K);
  EXPECT_EQ(type_of("Q3_K_M", "blk.1.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("Q3_K_M", "blk.2.attn_v.weight"), GgmlType::Q4_K);
  EXPECT_EQ(type_of("Q3_K_M", "blk.0.ffn_down.weight"), GgmlType::Q5_K);  // first 1/16
  EXPECT_EQ(type_of("Q3_K_M", "blk.5.ffn_down.weight"), GgmlType::Q4_K);
  EXPECT_EQ(type_of("Q3_K_L", "blk.5.ffn_down.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("Q3_K_L", "blk.5.attn_output.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("Q4_K_S", "blk.3.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("Q4_K_S", "blk.4.attn_v.weight"), GgmlType::Q4_K);
  EXPECT_EQ(type_of("Q4_K_S", "blk.1.ffn_down.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("Q4_K_S", "blk.2.ffn_down.weight"), GgmlType::Q4_K);
  EXPECT_EQ(type_of("Q5_K_S", "blk.0.ffn_down.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("Q5_K_M", "blk.7.ffn_down.weight"), GgmlType::Q6_K);  // (7 - 2) % 3 == 2
  EXPECT_EQ(type_of("IQ4_NL", "blk.0.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("IQ4_XS", "blk.1.ffn_down.weight"), GgmlType::Q5_K);
  EXPECT_EQ(type_of("IQ4_XS", "blk.2.ffn_down.weight"), GgmlType::IQ4_XS);
  EXPECT_EQ(type_of("Q6_K", "token_embd.weight"), GgmlType::Q6_K);  // tied: the LM head
  EXPECT_EQ(type_of("Q8_0", "token_embd.weight"), GgmlType::Q8_0);
  EXPECT_EQ(type_of("F16", "token_embd.weight"), GgmlType::F16);
  EXPECT_EQ(type_of("Q4_0", "rope_freqs.weight"), GgmlType::F32);

  auto f = GgufFile::open(f32);
  ASSERT_TRUE(f.ok());
  auto plan_with = [&](QuantizeParams p) {
    auto plan = plan_quantize(**f, p);
    EXPECT_TRUE(plan.ok()) << plan.error();
    std::map<std::string, GgmlType> m;
    for (const auto& t : plan->tensors) m[t.name] = t.to;
    return m;
  };
  QuantizeParams p;
  p.ftype = "Q4_K_M";
  p.pure = true;
  auto m = plan_with(p);
  EXPECT_EQ(m["output.weight"], GgmlType::Q4_K);
  EXPECT_EQ(m["blk.1.attn_v.weight"], GgmlType::Q4_K);
  EXPECT_EQ(m["blk.1.attn_norm.weight"], GgmlType::F32);
  p.pure = false;
  p.output_type = GgmlType::Q8_0;
  p.token_embd_type = GgmlType::Q2_K;
  p.overrides = {*parse_tensor_type_override("attn_(q|k)=q5_0"), *parse_tensor_type_override("blk\\.0\\.=f16"),
                 *parse_tensor_type_override("attn_q=q8_0")};
  m = plan_with(p);
  EXPECT_EQ(m["output.weight"], GgmlType::Q8_0);
  EXPECT_EQ(m["token_embd.weight"], GgmlType::Q2_K);
  EXPECT_EQ(m["blk.0.attn_q.weight"], GgmlType::Q5_0);  // first match wins
  EXPECT_EQ(m["blk.1.attn_k.weight"], GgmlType::Q5_0);
  EXPECT_EQ(m["blk.0.ffn_up.weight"], GgmlType::F16);
  EXPECT_EQ(m["blk.1.ffn_up.weight"], GgmlType::Q4_K);
  EXPECT_EQ(m["blk.0.attn_norm.weight"], GgmlType::F32);  // never a 1-D tensor
  EXPECT_FALSE(parse_tensor_type_override("attn_q").ok());
  EXPECT_FALSE(parse_tensor_type_override("attn_q=Q9_9").ok());
  EXPECT_FALSE(parse_tensor_type_override("(=q4_0").ok());
  EXPECT_FALSE(parse_quant_type("IQ2_XXS").ok());  // a type slim reads but does not write
}

TEST(QuantizeRecipe, RowFallbacksOnStories) {
  // stories260K: rows of 64 (no super-block fits) and ffn_down rows of 172 (no block at all)
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  QuantizeParams p;
  p.ftype = "Q4_K_M";
  auto plan = plan_quantize(**f, p);
  ASSERT_TRUE(plan.ok()) << plan.error();
  std::map<std::string, const TensorPlan*> m;
  for (const auto& t : plan->tensors) m[t.name] = &t;
  EXPECT_EQ(m["blk.0.attn_q.weight"]->to, GgmlType::Q5_0);
  EXPECT_NE(m["blk.0.attn_q.weight"]->note.find("cannot hold Q4_K"), std::string::npos);
  EXPECT_EQ(m["blk.0.ffn_down.weight"]->to, GgmlType::F16);
  EXPECT_EQ(m["output.weight"]->to, GgmlType::Q8_0);  // LM head rows not a multiple of 256
  EXPECT_TRUE(m["output.weight"]->note.empty());
  EXPECT_EQ(m["blk.0.attn_norm.weight"]->to, GgmlType::F32);
  p.ftype = "IQ4_XS";
  plan = plan_quantize(**f, p);
  for (const auto& t : plan->tensors)
    if (t.name == "blk.3.ffn_up.weight") {
      EXPECT_EQ(t.to, GgmlType::IQ4_NL);
    }
}

// ---- whole files ----

// Logits of every position of the held-out text, in chunks of 128 tokens each
// starting from BOS, computed in this process.
std::vector<std::vector<float>> text_logits(const std::string& model, const std::vector<int32_t>& ids) {
  EngineParams ep;
  ep.n_ctx = 128;
  ep.n_threads = 2;
  ep.cache_type = CacheType::F32;
  auto e = Engine::load(model, ep);
  EXPECT_TRUE(e.ok()) << model << ": " << e.error();
  if (!e.ok()) return {};
  const int nv = (*e)->model().hp.n_vocab;
  std::vector<std::vector<float>> out;
  for (size_t c = 0; c + 128 <= ids.size(); c += 128) {
    (*e)->clear(0);
    Batch b;
    for (int i = 0; i < 128; ++i) b.add(i == 0 ? ids[0] : ids[c + i], i, 0, true);
    std::vector<float> lg;
    EXPECT_TRUE((*e)->decode(b, lg).ok());
    for (int i = 0; i < 128; ++i) {
      std::vector<float> row(lg.begin() + (size_t)i * nv, lg.begin() + (size_t)(i + 1) * nv);
      double mx = -1e300, sum = 0;
      for (float v : row) mx = std::max(mx, (double)v);
      for (float v : row) sum += std::exp(v - mx);
      const double lse = mx + std::log(sum);
      for (float& v : row) v = (float)(v - lse);  // log-probabilities
      out.push_back(std::move(row));
    }
  }
  return out;
}

double mean_kl(const std::vector<std::vector<float>>& base, const std::vector<std::vector<float>>& q) {
  EXPECT_EQ(base.size(), q.size());
  double total = 0;
  for (size_t p = 0; p < base.size() && p < q.size(); ++p) {
    double kl = 0;
    for (size_t i = 0; i < base[p].size(); ++i) kl += std::exp((double)base[p][i]) * (base[p][i] - q[p][i]);
    total += kl;
  }
  return base.empty() ? 0 : total / (double)base.size();
}

// KL each slim-quantized synthetic llama must stay under: about 1.5 times
// what slim's files give (one-bit-off scales or a wrong recipe go far above).
const std::map<std::string, double> kKlBound = {
    {"F16", 2e-6},     {"BF16", 1.4e-4},  {"Q8_0", 1.5e-3},  {"Q4_0", 0.17},    {"Q4_1", 0.12},
    {"Q5_0", 0.042},   {"Q5_1", 0.031},   {"Q2_K", 1.35},    {"Q3_K_S", 0.52},  {"Q3_K_M", 0.44},
    {"Q3_K_L", 0.43},  {"Q4_K_S", 0.12},  {"Q4_K_M", 0.12},  {"Q5_K_S", 0.033}, {"Q5_K_M", 0.032},
    {"Q6_K", 0.0096},  {"IQ4_NL", 0.135}, {"IQ4_XS", 0.138},
};

TEST_F(QuantizeFiles, KlAgainstF32AndLlamaCpp) {
  const std::string text_path = data_file("quantize_heldout.txt");
  ASSERT_TRUE(fs::exists(text_path)) << "missing test data file: " << text_path;
  std::vector<int32_t> ids;
  {
    EngineParams ep;
    ep.n_ctx = 128;
    auto e = Engine::load(f32, ep);
    ASSERT_TRUE(e.ok()) << e.error();
    ids = (*e)->tokenizer().tokenize(test::read_file(text_path), true, false);
  }
  ASSERT_GE(ids.size(), 1024u);
  const auto base = text_logits(f32, ids);
  for (const std::string& type : kTypes) {
    SCOPED_TRACE(type);
    const std::string out = tmp("kl-" + type + ".gguf");
    QuantizeParams p;
    p.ftype = type;
    p.n_threads = 2;
    auto r = quantize_file(f32, out, p);
    ASSERT_TRUE(r.ok()) << r.error();
    const double kl = mean_kl(base, text_logits(out, ids));
    const std::string ref = test::shared_path("models/synthetic/llama-" + type + ".gguf");
    double kl_ref = -1;
    if (fs::exists(ref)) kl_ref = mean_kl(base, text_logits(ref, ids));
    std::printf("%-7s KL slim %.6f  llama.cpp %s\n", type.c_str(), kl, kl_ref < 0 ? "-" : format("%.6f", kl_ref).c_str());
    EXPECT_LT(kl, kKlBound.at(type));
    // as good as llama-quantize's file of the same type, within measurement noise
    if (kl_ref >= 0) {
      EXPECT_LE(kl, kl_ref * 1.05 + 1e-6);
    }
    if (type == "Q4_0" || type == "Q5_0") {
      EXPECT_LT(kl, kl_ref * 0.97);  // where the search clearly wins
    }
    fs::remove(out);
  }
}

TEST_F(QuantizeFiles, EveryTypeRunsInSlimAndKeepsMetadata) {
  auto src = GgufFile::open(f32);
  ASSERT_TRUE(src.ok());
  for (const std::string& type : kTypes) {
    SCOPED_TRACE(type);
    const std::string out = tmp("run-" + type + ".gguf");
    auto r = run_command(slim_binary() + " quantize " + f32 + " " + out + " " + type + " -t 2", true);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("bits per weight"), std::string::npos) << r.out;
    auto g = GgufFile::open(out);
    ASSERT_TRUE(g.ok()) << g.error();
    EXPECT_EQ((*g)->get_int("general.file_type"), (int64_t)find_file_type(type)->llama_ftype);
    EXPECT_EQ((*g)->get_int("general.quantization_version"), 2);
    EXPECT_EQ((*g)->get_string("general.architecture"), (*src)->get_string("general.architecture"));
    const GgufArray* a = (*g)->get_array("tokenizer.ggml.tokens");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(*a, *(*src)->get_array("tokenizer.ggml.tokens"));
    auto run = run_command(slim_binary() + " run -m " + out + " -p 'Once upon a time' -n 8 --temp 0", true);
    EXPECT_EQ(run.status, 0) << run.out;
    EXPECT_GT(run.out.size(), 0u);
    fs::remove(out);
  }
}

TEST_F(QuantizeFiles, SameBytesForAnyThreadCount) {
  QuantizeParams p;
  p.ftype = "Q4_K_M";
  p.n_threads = 1;
  ASSERT_TRUE(quantize_file(f32, tmp("t1.gguf"), p).ok());
  p.n_threads = 2;
  ASSERT_TRUE(quantize_file(f32, tmp("t2.gguf"), p).ok());
  EXPECT_EQ(test::read_file(tmp("t1.gguf")), test::read_file(tmp("t2.gguf")));
  fs::remove(tmp("t1.gguf"));
  fs::remove(tmp("t2.gguf"));
}

// ---- the importance matrix ----

// A one-matrix GGUF, the weights of `x` (rows of `cols`) as F32.
std::string write_matrix(const std::string& path, const std::vector<float>& x, int64_t cols) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  w.set_alignment(32);
  const int64_t rows = (int64_t)x.size() / cols;
  EXPECT_TRUE(w.add_tensor("blk.0.ffn_up.weight", GgmlType::F32, {cols, rows}, x.data(), x.size() * 4).ok());
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

TEST(QuantizeImatrix, LowersTheOutputErrorOnItsData) {
  // activations with uneven columns (a log-normal spread of scales, as real
  // ones have); the imatrix is their mean square per column; the error that
  // matters is that of W x on those same activations
  const int64_t rows = 96, cols = 512, n_act = 256;
  const std::vector<float> wts = random_weights(rows, cols, 11);
  uint64_t s = 99;
  std::vector<float> col_scale(cols);
  for (auto& c : col_scale) c = std::exp(1.2f * normal(s));
  std::vector<float> act((size_t)(n_act * cols));
  for (int64_t t = 0; t < n_act; ++t)
    for (int64_t j = 0; j < cols; ++j) act[(size_t)(t * cols + j)] = col_scale[j] * normal(s);
  Imatrix im;
  ImatrixTensor& it = im.tensors["blk.0.ffn_up.weight"];
  it.sums.assign(cols, 0);
  it.counts = {n_act};
  for (int64_t t = 0; t < n_act; ++t)
    for (int64_t j = 0; j < cols; ++j) it.sums[j] += act[(size_t)(t * cols + j)] * act[(size_t)(t * cols + j)];
  im.chunks = 1;
  const std::string in = write_matrix(tmp("matrix.gguf"), wts, cols);

  auto output_error = [&](const std::string& path) {
    auto g = GgufFile::open(path);
    EXPECT_TRUE(g.ok());
    const TensorInfo* t = (*g)->find_tensor("blk.0.ffn_up.weight");
    std::vector<float> wq((size_t)(rows * cols));
    type_traits(t->type).to_float(t->data, wq.data(), rows * cols);
    double e = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t a = 0; a < n_act; ++a) {
        double d = 0;
        for (int64_t j = 0; j < cols; ++j)
          d += (double)(wts[(size_t)(r * cols + j)] - wq[(size_t)(r * cols + j)]) * act[(size_t)(a * cols + j)];
        e += d * d;
      }
    return e;
  };
  for (const char* type : {"Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K", "IQ4_NL",
                           "IQ4_XS"}) {
    SCOPED_TRACE(type);
    QuantizeParams p;
    p.ftype = type;
    p.pure = true;
    ASSERT_TRUE(quantize_file(in, tmp("plain.gguf"), p).ok());
    p.imatrix = &im;
    p.imatrix_path = "in-memory";
    auto r = quantize_file(in, tmp("imat.gguf"), p);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_TRUE(r->plan.tensors[0].importance);
    const double plain = output_error(tmp("plain.gguf")), with = output_error(tmp("imat.gguf"));
    std::printf("%-7s output error without imatrix %.4e, with %.4e (%.2f)\n", type, plain, with, with / plain);
    EXPECT_LT(with, 0.9 * plain);
    auto g = GgufFile::open(tmp("imat.gguf"));
    EXPECT_EQ((*g)->get_string("quantize.imatrix.file"), "in-memory");
  }
  // an entry of the wrong size is refused
  im.tensors["blk.0.ffn_up.weight"].sums.resize(cols / 2);
  QuantizeParams p;
  p.ftype = "Q4_0";
  p.imatrix = &im;
  auto r = quantize_file(in, tmp("bad.gguf"), p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("imatrix"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp("bad.gguf")));
  for (const char* f : {"matrix.gguf", "plain.gguf", "imat.gguf"}) fs::remove(tmp(f));
}

// ---- bad input, through the binary: one line on stderr, exit 1, nothing left behind ----

struct Outcome {
  int status;
  std::string err;
};

Outcome quantize_cmd(const std::string& args, const std::string& prefix = "") {
  const std::string err_path = tmp("stderr.txt");
  auto r = run_command(prefix + slim_binary() + " quantize " + args + " 2>" + err_path + " >/dev/null");
  return {r.status, test::read_file(err_path)};
}

// Exactly one line, "slim: error: ..." (notes may come before it).
void expect_one_error_line(const Outcome& o, const std::string& needle) {
  EXPECT_EQ(o.status, 1) << o.err;
  size_t n_errors = 0, pos = 0;
  while ((pos = o.err.find("slim: error:", pos)) != std::string::npos) ++n_errors, ++pos;
  EXPECT_EQ(n_errors, 1u) << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << o.err;
  EXPECT_EQ(o.err.back(), '\n');
}

// No file other than the expected ones in a directory (no temporaries left).
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(QuantizeFiles, BadInput) {
  const std::string dir = tmp("bad");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = dir + "/out.gguf";

  expect_one_error_line(quantize_cmd(f32 + " " + out + " Q9_K"), "unknown type 'Q9_K'");
  expect_one_error_line(quantize_cmd(f32 + " " + out + " Q4_0 --output-tensor-type IQ2_XXS"), "unknown tensor type");
  expect_one_error_line(quantize_cmd(f32 + " " + out + " Q4_0 --tensor-type attn"), "PATTERN=TYPE");
  expect_one_error_line(quantize_cmd(dir + "/missing.gguf " + out + " Q4_0"), "missing.gguf");
  expect_one_error_line(quantize_cmd(f32 + " " + out + " Q4_0 --imatrix " + dir + "/missing.imatrix"), "missing.imatrix");
  expect_one_error_line(quantize_cmd(f32 + " " + dir + "/no/such/dir/out.gguf Q4_0"), "no directory");
  EXPECT_TRUE(files_in(dir).empty());

  // the output is the input (also through another name)
  const std::string copy = dir + "/in.gguf", link = dir + "/link.gguf";
  fs::copy_file(f32, copy);
  fs::create_symlink(copy, link);
  const std::string before = test::read_file(copy);
  expect_one_error_line(quantize_cmd(copy + " " + copy + " Q4_0"), "the output file is the input");
  expect_one_error_line(quantize_cmd(copy + " " + link + " Q4_0"), "the output file is the input");
  EXPECT_EQ(test::read_file(copy), before);
  fs::remove(link);

  // a quantized input: refused without --allow-requantize, converted with it
  const std::string q8 = dir + "/q8.gguf";
  ASSERT_EQ(quantize_cmd(copy + " " + q8 + " Q8_0").status, 0);
  expect_one_error_line(quantize_cmd(q8 + " " + out + " Q4_0"), "--allow-requantize");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(quantize_cmd(q8 + " " + out + " Q4_0 --allow-requantize").status, 0);
  fs::remove(out);

  // a source type slim cannot read (IQ2_XXS blocks)
  {
    GgufWriter w;
    w.set("general.architecture", GgufValue::str("llama"));
    std::vector<uint8_t> blocks(row_size(GgmlType::IQ2_XXS, 256) * 4, 0);
    ASSERT_TRUE(w.add_tensor("blk.0.ffn_up.weight", GgmlType::IQ2_XXS, {256, 4}, blocks.data(), blocks.size()).ok());
    ASSERT_TRUE(w.write(dir + "/iq2.gguf").ok());
    expect_one_error_line(quantize_cmd(dir + "/iq2.gguf " + out + " Q4_0 --allow-requantize"),
                          "cannot read its type IQ2_XXS");
  }
  // NaN weights
  {
    std::vector<float> x(256 * 4, 0.01f);
    x[300] = std::nanf("");
    write_matrix(dir + "/nan.gguf", x, 256);
    expect_one_error_line(quantize_cmd(dir + "/nan.gguf " + out + " Q4_K_M"), "NaN");
  }
  // rows no type fits: a note per tensor, and the file is written
  {
    SLIM_SHARED_FILE(stories, "models/stories260K.gguf");
    auto o = quantize_cmd(stories + " " + out + " Q4_K_M");
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_NE(o.err.find("slim: note: blk.0.ffn_down.weight: rows of 172 values cannot hold Q4_K: using F16"),
              std::string::npos)
        << o.err;
    EXPECT_NE(o.err.find("slim: note: blk.4.attn_q.weight: rows of 64 values cannot hold Q4_K: using Q5_0"),
              std::string::npos);
    fs::remove(out);
  }
  // disk full (a file size limit makes the writes fail the same way; the
  // signal it raises is ignored so that write() reports EFBIG instead)
  expect_one_error_line(quantize_cmd(copy + " " + out + " Q8_0", "trap '' XFSZ; ulimit -f 256; "), "cannot write");
  for (const auto& name : files_in(dir)) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  EXPECT_FALSE(fs::exists(out));
  fs::remove_all(dir);
}

TEST(QuantizeInterrupt, CtrlCLeavesNothingBehind) {
  // a 2048 x 4096 matrix: long enough to interrupt once its temporary exists
  const std::string dir = tmp("interrupt");
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_matrix(dir + "/big.gguf", random_weights(4096, 2048, 3), 2048);
  const std::string cmd = slim_binary() + " quantize " + dir + "/big.gguf " + dir + "/out.gguf Q5_K_M -t 1 2>" + dir +
                          "/err.txt & pid=$!; for i in $(seq 200); do ls " + dir +
                          "/out.gguf.tmp.* >/dev/null 2>&1 && break; sleep 0.02; done; kill -INT $pid; wait $pid";
  auto r = run_command("sh -c '" + cmd + "'");
  EXPECT_EQ(r.status, 128 + SIGINT);
  EXPECT_NE(test::read_file(dir + "/err.txt").find("slim: error: interrupted"), std::string::npos);
  std::vector<std::string> names = files_in(dir);
  EXPECT_EQ(names, (std::vector<std::string>{"big.gguf", "err.txt"}));
  fs::remove_all(dir);
}

TEST_F(QuantizeFiles, DryRunAndHelp) {
  auto r = run_command(slim_binary() + " quantize " + f32 + " " + tmp("dry.gguf") + " Q4_K_M --dry-run", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("blk.1.attn_v.weight"), std::string::npos);
  EXPECT_NE(r.out.find("Q6_K"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp("dry.gguf")));
  fs::remove(tmp("stderr.txt"));
  r = run_command(slim_binary() + " quantize --help", true);
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"Q4_K_M", "Q3_K_L", "IQ4_XS", "--imatrix", "--tensor-type", "--pure", "more-bits"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace slim
