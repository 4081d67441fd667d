// The KV cache types end to end: a Q8_0 cache against the F32 cache on the
// synthetic models (prefill of the long golden prompt, then decode steps), on
// every ISA; a control showing that a broken cache is far outside the
// tolerance; head dims a Q8_0 cache cannot hold; the sizes.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "kernels/dispatch.h"
#include "model/model.h"
#include "test_util.h"

namespace slim {
namespace {

// Tolerances. Measured on every ISA (the synthetic F32 files below, 304 prompt
// tokens + 16 decode steps, Q8_0 cache vs F32 cache): mean KL 8e-5 (llama,
// phi3) to 2.6e-3 (qwen3), max |dlogit| 0.09 to 0.55, top-1 agreement >= 94 %;
// an F16 cache is at mean KL <= 4.3e-6, max |dlogit| <= 0.025. The limits are
// ~4x and ~3x above the worst Q8_0 model; a zeroed cache gives mean KL >= 0.44
// and max |dlogit| >= 4.5, and a wrong Q8_0 head offset KL >= 0.6.
constexpr double kMeanKlTol = 1e-2;
constexpr double kMaxLogitTol = 1.5;
constexpr int kDecodeSteps = 16;

struct Dist { double kl; double max_abs; bool top1_same; };

// KL(ref || got) of the softmaxes, max |ref - got| and argmax agreement of one row.
Dist compare_row(const float* ref, const float* got, int n) {
  const float mr = *std::max_element(ref, ref + n), mg = *std::max_element(got, got + n);
  double sr = 0, sg = 0, max_abs = 0;
  for (int i = 0; i < n; ++i) {
    sr += std::exp(ref[i] - mr), sg += std::exp(got[i] - mg);
    max_abs = std::max(max_abs, (double)std::fabs(ref[i] - got[i]));
  }
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double lp = ref[i] - mr - std::log(sr), lq = got[i] - mg - std::log(sg);
    kl += std::exp(lp) * (lp - lq);
  }
  return {kl, max_abs, std::max_element(ref, ref + n) - ref == std::max_element(got, got + n) - got};
}

// Logits of every prompt position, then of kDecodeSteps tokens fed one at a
// time (the given ids, so both runs see the same inputs). `zero_cache_after_prompt`
// wipes K and V once the prompt is in: the control for a broken cache.
std::vector<float> run(const Model& m, CacheType ct, const std::vector<int32_t>& prompt, const std::vector<int32_t>& next,
                       bool zero_cache_after_prompt = false) {
  ForwardState st;
  st.kv = make_kv_cache(m.hp, 512, 1, ct);
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], (int)i, 0, true);
  std::vector<float> logits;
  Status s = forward(m, st, b, logits);
  EXPECT_TRUE(s.ok()) << s.message();
  if (zero_cache_after_prompt)
    for (int il = 0; il < m.hp.n_layer; ++il)
      std::fill(st.kv.k[il].begin(), st.kv.k[il].end(), 0), std::fill(st.kv.v[il].begin(), st.kv.v[il].end(), 0);
  for (size_t i = 0; i < next.size(); ++i) {
    b.clear();
    b.add(next[i], (int)(prompt.size() + i), 0, true);
    s = forward(m, st, b, logits);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return logits;
}

struct Case {
  std::string model;  // golden name, e.g. "llama-F32"
  Isa isa;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " on " << isa_name(c.isa); }

std::vector<Case> cases() {
  std::vector<Case> v;
  for (int i = 0; i < kIsaCount; ++i)
    if (isa_available((Isa)i))
      for (const char* name : {"llama-F32", "qwen2-F32", "phi3-F32", "gemma2-F32", "qwen3-F32", "gemma3-F32"})
        v.push_back({name, (Isa)i});
  return v;
}

class KvCacheQ8_0 : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { set_active_isa(GetParam().isa); }
  void TearDown() override { set_active_isa(best_isa()); }
};

TEST_P(KvCacheQ8_0, StaysCloseToTheF32Cache) {
  const std::string name = GetParam().model;
  SLIM_SHARED_FILE(json_path, "golden/" + name + ".json");
  const nlohmann::json g = nlohmann::json::parse(test::read_file(json_path));
  SLIM_SHARED_FILE(model_path, g["model"].get<std::string>());
  auto mr = load_model(model_path);
  ASSERT_TRUE(mr.ok()) << mr.error();
  const Model& m = **mr;
  ASSERT_TRUE(check_cache_type(m.hp, CacheType::Q8_0).ok());
  // The long prompt (304 tokens), then the reference's greedy ids as decode inputs.
  const nlohmann::json& c = g["cases"][3];
  const std::vector<int32_t> prompt = c["tokens"].get<std::vector<int32_t>>();
  std::vector<int32_t> next = c["greedy"].get<std::vector<int32_t>>();
  next.resize(std::min<size_t>(next.size(), kDecodeSteps));
  const int n_vocab = m.hp.n_vocab;

  const std::vector<float> ref = run(m, CacheType::F32, prompt, next);
  const std::vector<float> got = run(m, CacheType::Q8_0, prompt, next);
  ASSERT_EQ(got.size(), ref.size());
  const size_t rows = ref.size() / n_vocab;
  double kl_sum = 0, kl_max = 0, max_abs = 0;
  size_t top1 = 0;
  for (size_t r = 0; r < rows; ++r) {
    const Dist d = compare_row(&ref[r * n_vocab], &got[r * n_vocab], n_vocab);
    kl_sum += d.kl, kl_max = std::max(kl_max, d.kl), max_abs = std::max(max_abs, d.max_abs), top1 += d.top1_same;
  }
  const double mean_kl = kl_sum / rows;
  std::printf("[kv q8_0 %s] %-11s %zu rows: mean KL %.2e, max KL %.2e, max |dlogit| %.4f, top-1 %zu/%zu\n",
              isa_name(GetParam().isa), name.c_str(), rows, mean_kl, kl_max, max_abs, top1, rows);
  EXPECT_LT(mean_kl, kMeanKlTol);
  EXPECT_LT(max_abs, kMaxLogitTol);
  EXPECT_GE(top1, rows * 85 / 100);
  RecordProperty("mean_kl", std::to_string(mean_kl));

  // Control: the decode steps over a zeroed cache are far outside the
  // tolerance, so the comparison above would notice a broken cache.
  const std::vector<float> broken = run(m, CacheType::Q8_0, prompt, next, true);
  double broken_kl = 0, broken_abs = 0;
  for (size_t r = prompt.size(); r < rows; ++r) {
    const Dist d = compare_row(&ref[r * n_vocab], &broken[r * n_vocab], n_vocab);
    broken_kl += d.kl / (rows - prompt.size()), broken_abs = std::max(broken_abs, d.max_abs);
  }
  std::printf("[kv q8_0 %s] %-11s zeroed cache: mean KL %.2e, max |dlogit| %.4f\n", isa_name(GetParam().isa),
              name.c_str(), broken_kl, broken_abs);
  EXPECT_GT(broken_kl, 10 * kMeanKlTol);
  EXPECT_GT(broken_abs, kMaxLogitTol);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, KvCacheQ8_0, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n = i.param.model + "_" + isa_name(i.param.isa);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// stories260K has head dim 8: a Q8_0 block would straddle heads. The check
// names the head dim, and forward() refuses such a cache instead of crashing.
TEST(KvCache, Q8_0NeedsHeadDimsOf32) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.error();
  const HParams& hp = (*m)->hp;
  ASSERT_EQ(hp.head_dim, 8);
  Status s = check_cache_type(hp, CacheType::Q8_0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("head dim is 8"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("q8_0"), std::string::npos) << s.message();
  EXPECT_TRUE(check_cache_type(hp, CacheType::F16).ok());
  EXPECT_TRUE(check_cache_type(hp, CacheType::F32).ok());

  ForwardState st;
  st.kv = make_kv_cache(hp, 16, 1, CacheType::Q8_0);
  Batch b;
  b.add(1, 0, 0, true);
  std::vector<float> logits;
  Status f = forward(**m, st, b, logits);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("head dim is 8"), std::string::npos) << f.message();
}

TEST(KvCache, TypesAndSizes) {
  EXPECT_EQ(parse_cache_type("q8_0").value(), CacheType::Q8_0);
  EXPECT_EQ(parse_cache_type("f16").value(), CacheType::F16);
  EXPECT_EQ(parse_cache_type("f32").value(), CacheType::F32);
  auto bad = parse_cache_type("q4");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("f16, f32 or q8_0"), std::string::npos) << bad.error();
  for (CacheType t : {CacheType::F32, CacheType::F16, CacheType::Q8_0})
    EXPECT_EQ(parse_cache_type(cache_type_name(t)).value(), t);
  EXPECT_EQ(cache_row_bytes(CacheType::F32, 128), 512u);
  EXPECT_EQ(cache_row_bytes(CacheType::F16, 128), 256u);
  EXPECT_EQ(cache_row_bytes(CacheType::Q8_0, 128), 4u * 34);  // ggml's block_q8_0

  SLIM_SHARED_FILE(path, "models/synthetic/llama-F32.gguf");
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.error();
  const HParams& hp = (*m)->hp;
  const KvCache kv = make_kv_cache(hp, 100, 2, CacheType::Q8_0);
  size_t held = 0;
  for (int il = 0; il < hp.n_layer; ++il) held += kv.k[il].size() + kv.v[il].size();
  EXPECT_EQ(held, kv_cache_bytes(hp, 100, 2, CacheType::Q8_0));
  // 34 bytes per 32 values against 64 for F16: 53 % of the F16 cache
  EXPECT_EQ(kv_cache_bytes(hp, 100, 2, CacheType::Q8_0) * 64, kv_cache_bytes(hp, 100, 2, CacheType::F16) * 34);
}

}  // namespace
}  // namespace slim
