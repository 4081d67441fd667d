// Several independent sequences in one batch give the same logits as each
// sequence decoded alone; positions that do not continue a sequence, bad
// token ids and a full context are errors, not crashes.
#include <cmath>

#include "model/model.h"
#include "test_util.h"

namespace slim {
namespace {

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

void check_model(const std::string& rel) {
  SLIM_SHARED_FILE(path, rel);
  auto mr = load_model(path);
  ASSERT_TRUE(mr.ok()) << mr.error();
  const Model& m = **mr;
  const int nv = m.hp.n_vocab;
  std::vector<int32_t> a = {1, 403, 407, 261, 378, 432, 383};
  std::vector<int32_t> b = {1, 300, 301, 302};

  // Each alone: prompt, then 3 single-token steps.
  auto alone = [&](const std::vector<int32_t>& p, std::vector<float>& out) {
    ForwardState st;
    st.kv = make_kv_cache(m.hp, 64, 1, CacheType::F16);
    Batch bt;
    for (size_t i = 0; i < p.size(); ++i) bt.add(p[i], (int)i, 0, i + 1 == p.size());
    ASSERT_TRUE(forward(m, st, bt, out).ok());
    for (int s = 0; s < 3; ++s) {
      Batch one;
      one.add(10 + s, (int)p.size() + s, 0, true);
      ASSERT_TRUE(forward(m, st, one, out).ok());
    }
  };
  std::vector<float> la, lb;
  alone(a, la);
  alone(b, lb);

  // Together: both prompts in one batch (interleaved), then both steps in one batch.
  ForwardState st;
  st.kv = make_kv_cache(m.hp, 64, 3, CacheType::F16);
  Batch bt;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (i < b.size()) bt.add(b[i], (int)i, 2, i + 1 == b.size());
    if (i < a.size()) bt.add(a[i], (int)i, 0, i + 1 == a.size());
  }
  std::vector<float> out;
  ASSERT_TRUE(forward(m, st, bt, out).ok());
  // b's last token comes first in the batch, so its row is first.
  std::vector<float> ta(out.begin() + nv, out.begin() + 2 * nv), tb(out.begin(), out.begin() + nv);
  for (int s = 0; s < 3; ++s) {
    Batch two;
    two.add(10 + s, (int)a.size() + s, 0, true);
    two.add(10 + s, (int)b.size() + s, 2, true);
    std::vector<float> o2;
    ASSERT_TRUE(forward(m, st, two, o2).ok());
    ta.insert(ta.end(), o2.begin(), o2.begin() + nv);
    tb.insert(tb.end(), o2.begin() + nv, o2.end());
  }
  ASSERT_EQ(ta.size(), la.size());
  EXPECT_LT(max_diff(ta, la), 1e-4) << rel;
  EXPECT_LT(max_diff(tb, lb), 1e-4) << rel;
}

TEST(Batch, TwoSequencesTogetherEqualAlone) {
  check_model("models/stories260K.gguf");
  check_model("models/synthetic/gemma3-Q8_0.gguf");
  check_model("models/synthetic/qwen2-Q4_K_M.gguf");
}

TEST(Batch, BadBatchesAreErrors) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto mr = load_model(path);
  ASSERT_TRUE(mr.ok());
  ForwardState st;
  st.kv = make_kv_cache((*mr)->hp, 8, 1, CacheType::F16);
  std::vector<float> out;
  Batch gap;
  gap.add(1, 1, 0, true);  // does not start at 0
  EXPECT_NE(forward(**mr, st, gap, out).message().find("does not follow"), std::string::npos);
  Batch bad_tok;
  bad_tok.add(100000, 0, 0, true);
  EXPECT_NE(forward(**mr, st, bad_tok, out).message().find("out of range"), std::string::npos);
  Batch bad_seq;
  bad_seq.add(1, 0, 5, true);
  EXPECT_FALSE(forward(**mr, st, bad_seq, out).ok());
  Batch full;
  for (int i = 0; i < 9; ++i) full.add(1, i, 0, false);
  EXPECT_NE(forward(**mr, st, full, out).message().find("context is full"), std::string::npos);
  EXPECT_EQ(st.kv.seq_len[0], 0);  // nothing was written by the failed calls
}

// Writes phi3-F32 with extra metadata and 1-D tensors of 32 equal values.
std::string phi3_with(const std::string& name, const std::vector<std::pair<std::string, float>>& vectors,
                      int n_ctx_orig) {
  auto f = GgufFile::open(test::shared_path("models/synthetic/phi3-F32.gguf"));
  EXPECT_TRUE(f.ok());
  GgufWriter w;
  w.copy_metadata_from(**f);
  w.set("phi3.rope.scaling.original_context_length", GgufValue::u32(n_ctx_orig));
  EXPECT_TRUE(w.copy_tensors_from(**f).ok());
  for (const auto& [tensor, value] : vectors) {
    std::vector<float> v(32, value);
    EXPECT_TRUE(w.add_tensor(tensor, GgmlType::F32, {32}, v.data(), v.size() * 4).ok());
  }
  std::string out = test::temp_dir() + "/" + name + ".gguf";
  EXPECT_TRUE(w.write(out).ok());
  return out;
}

std::vector<float> last_logits(const std::string& path, int n_ctx) {
  auto m = load_model(path);
  EXPECT_TRUE(m.ok()) << m.error();
  ForwardState st;
  st.kv = make_kv_cache((*m)->hp, n_ctx, 1, CacheType::F32);
  Batch b;
  const std::vector<int32_t> toks = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], (int)i, 0, i + 1 == toks.size());
  std::vector<float> out;
  EXPECT_TRUE(forward(**m, st, b, out).ok());
  return out;
}

// Phi-3 LongRoPE: short factors while the context is within the original
// length, long ones beyond it (the same divisors as rope_freqs).
TEST(Model, LongRopeFactorsFollowTheContextSize) {
  SLIM_SHARED_FILE(base, "models/synthetic/phi3-F32.gguf");
  const std::string longrope = phi3_with("longrope", {{"rope_factors_short.weight", 2.0f}, {"rope_factors_long.weight", 4.0f}}, 256);
  const std::string two = phi3_with("freqs2", {{"rope_freqs.weight", 2.0f}}, 256);
  const std::string four = phi3_with("freqs4", {{"rope_freqs.weight", 4.0f}}, 256);
  auto within = last_logits(longrope, 256), beyond = last_logits(longrope, 1024);
  EXPECT_LT(max_diff(within, last_logits(two, 256)), 1e-5);
  EXPECT_LT(max_diff(beyond, last_logits(four, 1024)), 1e-5);
  EXPECT_GT(max_diff(within, last_logits(base, 256)), 1e-3);  // the factors do change the result
  EXPECT_GT(max_diff(within, beyond), 1e-3);
}

TEST(Model, UnsupportedArchitectureIsNamed) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  GgufWriter w;
  w.copy_metadata_from(**f);
  w.set("general.architecture", GgufValue::str("mamba"));
  ASSERT_TRUE(w.copy_tensors_from(**f).ok());
  std::string out = test::temp_dir() + "/mamba.gguf";
  ASSERT_TRUE(w.write(out).ok());
  auto m = load_model(out);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("unsupported architecture 'mamba'"), std::string::npos) << m.error();
}

TEST(Model, MissingTensorIsNamed) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  GgufWriter w;
  w.copy_metadata_from(**f);
  ASSERT_TRUE(w.copy_tensors_from(**f, {"blk.3.ffn_down.weight"}).ok());
  std::string out = test::temp_dir() + "/missing.gguf";
  ASSERT_TRUE(w.write(out).ok());
  auto m = load_model(out);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("missing tensor blk.3.ffn_down.weight"), std::string::npos) << m.error();
}

}  // namespace
}  // namespace slim
