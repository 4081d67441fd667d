// `slim perplexity` against independent computations: token ids from `slim
// tokenize`, logits from `slim logits` per chunk, log-softmax, PPL and KL
// divergence in double here; and the base file's checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace slim {
namespace {

using nlohmann::json;
using test::run_command;
using test::slim_binary;

constexpr int kVocab = 512;  // stories260K and the synthetic llama share this vocabulary
constexpr int kBos = 1;      // which adds BOS (id 1): `slim tokenize` output starts with it

std::string data_file(const std::string& name) { return std::string(SLIM_SOURCE_DIR) + "/tests/compress/data/" + name; }

#define SLIM_DATA_FILE(var, name)                                                                   \
  std::string var = data_file(name);                                                                \
  ASSERT_TRUE(std::filesystem::exists(var)) << "missing test data file: " << var

std::string tmp(const std::string& name) { return test::temp_dir() + "/" + name; }

json run_json(const std::string& args) {
  auto r = run_command(slim_binary() + " " + args);
  EXPECT_EQ(r.status, 0) << args << "\n" << r.out;
  return r.status == 0 ? json::parse(r.out) : json();
}

std::vector<int32_t> tokenize(const std::string& model, const std::string& text) {
  auto r = run_command(slim_binary() + " tokenize -m " + model + " -f " + text);
  EXPECT_EQ(r.status, 0) << r.out;
  return json::parse(r.out).get<std::vector<int32_t>>();
}

// The evaluated chunks as llama.cpp forms them: the whole text's tokens cut
// into n_ctx, the first of each replaced by BOS.
std::vector<std::vector<int32_t>> chunks_of(const std::vector<int32_t>& ids, int n_ctx) {
  EXPECT_EQ(ids.at(0), kBos);
  std::vector<std::vector<int32_t>> out;
  for (size_t c = 0; (c + 1) * n_ctx <= ids.size(); ++c) {
    std::vector<int32_t> ch(ids.begin() + c * n_ctx, ids.begin() + (c + 1) * n_ctx);
    ch[0] = kBos;
    out.push_back(ch);
  }
  return out;
}

// float32 logits [n_ctx][n_vocab] of one chunk, from `slim logits`.
std::vector<float> chunk_logits(const std::string& model, const std::vector<int32_t>& ch) {
  std::string ids;
  for (int32_t t : ch) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(t);
  }
  const std::string out = tmp("chunk.logits");
  auto r = run_command(slim_binary() + " logits -m " + model + " --tokens " + ids + " -c " + std::to_string(ch.size()) +
                           " -t 2 --out " + out,
                       true);
  EXPECT_EQ(r.status, 0) << r.out;
  std::string bytes = test::read_file(out);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  EXPECT_EQ(v.size(), ch.size() * kVocab);
  return v;
}

std::vector<double> log_softmax(const float* z) {
  double mx = z[0];
  for (int i = 1; i < kVocab; ++i) mx = std::max(mx, (double)z[i]);
  double s = 0;
  for (int i = 0; i < kVocab; ++i) s += std::exp(z[i] - mx);
  std::vector<double> lp(kVocab);
  for (int i = 0; i < kVocab; ++i) lp[i] = z[i] - mx - std::log(s);
  return lp;
}

int argmax(const float* z) { return (int)(std::max_element(z, z + kVocab) - z); }

struct Reference {
  std::vector<double> nll, nll_base, kld, dp;
  int64_t same_top = 0;
};

// Scores the second half of each chunk: logits at positions n/2 .. n-2
// predict tokens n/2+1 .. n-1. With a base model, the per-token comparisons too.
Reference reference(const std::string& model, const std::string& base_model, const std::string& text, int n_ctx) {
  Reference ref;
  for (const auto& ch : chunks_of(tokenize(model, text), n_ctx)) {
    const auto z = chunk_logits(model, ch);
    const auto zb = base_model.empty() ? std::vector<float>() : chunk_logits(base_model, ch);
    for (int k = n_ctx / 2; k < n_ctx - 1; ++k) {
      const auto lp = log_softmax(&z[(size_t)k * kVocab]);
      ref.nll.push_back(-lp[ch[k + 1]]);
      if (base_model.empty()) continue;
      const auto lb = log_softmax(&zb[(size_t)k * kVocab]);
      double kl = 0;
      for (int i = 0; i < kVocab; ++i) kl += std::exp(lb[i]) * (lb[i] - lp[i]);
      ref.kld.push_back(kl);
      ref.nll_base.push_back(-lb[ch[k + 1]]);
      ref.dp.push_back(std::exp(lp[ch[k + 1]]) - std::exp(lb[ch[k + 1]]));
      ref.same_top += argmax(&z[(size_t)k * kVocab]) == argmax(&zb[(size_t)k * kVocab]);
    }
  }
  return ref;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / (double)v.size();
}

class PerplexityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model = test::shared_path("models/stories260K.gguf");
    ASSERT_TRUE(std::filesystem::exists(model)) << "missing shared test data file: " << model;
    text = data_file("story_heldout.txt");
    ASSERT_TRUE(std::filesystem::exists(text)) << "missing test data file: " << text;
  }
  std::string model, text;
};

TEST_F(PerplexityTest, MatchesIndependentComputationFromLogits) {
  const int n_ctx = 128;
  json j = run_json("perplexity -m " + model + " -f " + text + " -c 128 -t 2 --json");
  ASSERT_FALSE(j.is_null());
  Reference ref = reference(model, "", text, n_ctx);
  ASSERT_GT(ref.nll.size(), 0u);
  const int n_chunks = (int)ref.nll.size() / (n_ctx - 1 - n_ctx / 2);
  EXPECT_EQ(j["n_chunks"].get<int>(), n_chunks);
  EXPECT_EQ(j["n_tokens_scored"].get<int64_t>(), (int64_t)ref.nll.size());
  const double m = mean(ref.nll);
  double var = 0;
  for (double x : ref.nll) var += (x - m) * (x - m);
  var /= (double)ref.nll.size();
  const double ppl = std::exp(m), err = ppl * std::sqrt(var / (double)(ref.nll.size() - 1));
  EXPECT_NEAR(j["ppl"].get<double>(), ppl, 1e-6 * ppl);
  EXPECT_NEAR(j["nll_mean"].get<double>(), m, 1e-6 * m);
  EXPECT_NEAR(j["ppl_stderr"].get<double>(), err, 1e-5 * err);
  // per chunk: that chunk's own perplexity
  ASSERT_EQ((int)j["chunks"].size(), n_chunks);
  const int per = n_ctx - 1 - n_ctx / 2;
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<double> part(ref.nll.begin() + c * per, ref.nll.begin() + (c + 1) * per);
    EXPECT_NEAR(j["chunks"][c]["nll_mean"].get<double>(), mean(part), 1e-6 * mean(part)) << "chunk " << c;
  }
  // A plausible value for a 260K-parameter story model on a simple story.
  EXPECT_GT(ppl, 1.5);
  EXPECT_LT(ppl, 50.0);
}

TEST_F(PerplexityTest, BatchLayoutDoesNotChangeTheResult) {
  // -b 128: one chunk a forward pass, in two halves; -b 512: four chunks share one
  json a = run_json("perplexity -m " + model + " -f " + text + " -c 128 -b 64 -t 2 --json --chunks 5");
  json b = run_json("perplexity -m " + model + " -f " + text + " -c 128 -b 512 -t 2 --json --chunks 5");
  ASSERT_FALSE(a.is_null() || b.is_null());
  EXPECT_EQ(a["n_chunks"].get<int>(), 5);
  EXPECT_NEAR(a["ppl"].get<double>(), b["ppl"].get<double>(), 1e-6 * b["ppl"].get<double>());
}

TEST_F(PerplexityTest, TextOutputAndErrors) {
  auto r = run_command(slim_binary() + " perplexity -m " + model + " -f " + text + " -c 256 -t 2");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("perplexity: "), std::string::npos) << r.out;  // printed even when piped
  EXPECT_NE(r.out.find("second half"), std::string::npos) << r.out;
  r = run_command(slim_binary() + " perplexity -m " + model + " -f /nonexistent/story.txt", true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent/story.txt"), std::string::npos) << r.out;
  r = run_command(slim_binary() + " perplexity -m " + model + " -f " + text + " -c 2048", true);  // longer than the text
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("less than one chunk"), std::string::npos) << r.out;
  r = run_command(slim_binary() + " perplexity --help");
  EXPECT_NE(r.out.find("second half"), std::string::npos) << r.out;
}

TEST_F(PerplexityTest, KldOfAModelAgainstItsOwnBaseIsZero) {
  const std::string base = tmp("self.kld");
  std::filesystem::remove(base);
  json s = run_json("perplexity -m " + model + " -f " + text + " -c 128 -t 2 --json --save-logits " + base);
  ASSERT_TRUE(std::filesystem::exists(base));
  for (auto& e : std::filesystem::directory_iterator(test::temp_dir()))  // written through a temporary, renamed
    EXPECT_EQ(e.path().string().find("self.kld.tmp"), std::string::npos) << e.path();
  // compact: 16 bytes + 2 a vocabulary entry per scored token, plus the tokens and a header
  const auto size = std::filesystem::file_size(base);
  const int64_t n = s["n_tokens_scored"].get<int64_t>();
  EXPECT_LT(size, (uint64_t)(n * (16 + 2 * kVocab) + s["n_chunks"].get<int>() * 128 * 4 + 256));
  json k = run_json("perplexity -m " + model + " -f " + text + " -t 2 --json --kld-base " + base);  // -c from the base
  ASSERT_FALSE(k.is_null());
  const json& d = k["kld"];
  EXPECT_EQ(d["n_tokens"].get<int64_t>(), n);
  EXPECT_GE(d["kld_mean"].get<double>(), 0.0);
  EXPECT_LT(d["kld_mean"].get<double>(), 1e-6);  // 16-bit log-probs: ~1e-9, not exactly 0
  EXPECT_LT(d["kld_max"].get<double>(), 1e-5);
  EXPECT_EQ(d["same_top"].get<double>(), 1.0);
  EXPECT_LT(std::abs(d["dp_mean"].get<double>()), 1e-6);
  EXPECT_LT(d["dp_rms"].get<double>(), 1e-6);
  EXPECT_NEAR(d["ppl_base"].get<double>(), s["ppl"].get<double>(), 1e-6 * s["ppl"].get<double>());
  EXPECT_NEAR(d["ppl_ratio"].get<double>(), 1.0, 1e-6);
  EXPECT_NEAR(k["ppl"].get<double>(), s["ppl"].get<double>(), 1e-9 * s["ppl"].get<double>());
}

TEST_F(PerplexityTest, KldOfQuantizedModelMatchesIndependentComputation) {
  SLIM_SHARED_FILE(f32, "models/synthetic/llama-F32.gguf");
  SLIM_SHARED_FILE(q4, "models/synthetic/llama-Q4_0.gguf");
  const int n_ctx = 128;
  const std::string base = tmp("llama-f32.kld");
  json s = run_json("perplexity -m " + f32 + " -f " + text + " -c 128 -t 2 --json --save-logits " + base);
  json k = run_json("perplexity -m " + q4 + " -f " + text + " -t 2 --json --kld-base " + base);
  ASSERT_FALSE(k.is_null());
  Reference ref = reference(q4, f32, text, n_ctx);
  const json& d = k["kld"];
  ASSERT_EQ(d["n_tokens"].get<int64_t>(), (int64_t)ref.kld.size());
  const double kl = mean(ref.kld);
  EXPECT_GT(kl, 1e-4);  // Q4_0 loses something
  EXPECT_GT(d["kld_mean"].get<double>(), 0.0);
  // the base's 16-bit log-probs move the divergence at second order only;
  // a single token (max, median) by ~1e-4 relative
  EXPECT_NEAR(d["kld_mean"].get<double>(), kl, 1e-5 * kl);  // measured: 2e-7 relative
  std::vector<double> sorted = ref.kld;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NEAR(d["kld_max"].get<double>(), sorted.back(), 2e-3 * sorted.back() + 1e-6);
  const double med = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                       : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  EXPECT_NEAR(d["kld_median"].get<double>(), med, 2e-3 * med + 1e-6);
  EXPECT_NEAR(d["same_top"].get<double>(), (double)ref.same_top / (double)ref.kld.size(), 1e-12);
  const double dp = mean(ref.dp);
  double dp2 = 0;
  for (double x : ref.dp) dp2 += x * x;
  const double rms = std::sqrt(dp2 / (double)ref.dp.size());
  EXPECT_NEAR(d["dp_mean"].get<double>(), dp, 1e-9);  // the base's exact NLL is kept
  EXPECT_NEAR(d["dp_rms"].get<double>(), rms, 1e-6 * rms);
  const double ppl_q = std::exp(mean(ref.nll)), ppl_b = std::exp(mean(ref.nll_base));
  EXPECT_NEAR(k["ppl"].get<double>(), ppl_q, 1e-6 * ppl_q);
  EXPECT_NEAR(d["ppl_base"].get<double>(), ppl_b, 1e-6 * ppl_b);
  EXPECT_NEAR(d["ppl_base"].get<double>(), s["ppl"].get<double>(), 1e-6 * ppl_b);
  EXPECT_NEAR(d["ppl_ratio"].get<double>(), ppl_q / ppl_b, 1e-6);
  EXPECT_GT(d["ppl_ratio_stderr"].get<double>(), 0.0);
  EXPECT_GT(d["kld_stderr"].get<double>(), 0.0);
}

TEST_F(PerplexityTest, BadBaseFileIsAClearError) {
  const std::string base = tmp("bad.kld");
  json s = run_json("perplexity -m " + model + " -f " + text + " -c 64 -t 2 --json --chunks 3 --save-logits " + base);
  auto expect_error = [&](const std::string& args, const std::string& msg) {
    auto r = run_command(slim_binary() + " perplexity -m " + model + " -t 2 " + args, true);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.out.find(msg), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
  };
  // another context
  expect_error("-f " + text + " -c 128 --kld-base " + base, "chunks of 64 tokens");
  // another text
  SLIM_DATA_FILE(other, "story_calibration.txt");
  expect_error("-f " + other + " --kld-base " + base, "different text");
  // not a base file at all
  const std::string junk = tmp("junk.kld");
  std::ofstream(junk) << "this is not a base file";
  expect_error("-f " + text + " --kld-base " + junk, "not a base log-probability file");
  // cut short
  std::string bytes = test::read_file(base);
  const std::string cut = tmp("cut.kld");
  std::ofstream(cut, std::ios::binary).write(bytes.data(), (std::streamsize)(bytes.size() - 100));
  expect_error("-f " + text + " --kld-base " + cut, "truncated");
  // another vocabulary (same size): the header's vocabulary hash differs
  std::string v = bytes;
  v[32] ^= 0x5a;  // magic 8 + version 4 + five u32 fields = 32: the hash's first byte
  const std::string vocab = tmp("vocab.kld");
  std::ofstream(vocab, std::ios::binary).write(v.data(), (std::streamsize)v.size());
  expect_error("-f " + text + " --kld-base " + vocab, "different vocabulary");
  expect_error("-f " + text + " --kld-base /nonexistent/base.kld", "/nonexistent/base.kld");
  // the good file still works, with fewer chunks too
  json k = run_json("perplexity -m " + model + " -f " + text + " -t 2 --json --chunks 2 --kld-base " + base);
  EXPECT_EQ(k["n_chunks"].get<int>(), 2);
}

}  // namespace
}  // namespace slim
