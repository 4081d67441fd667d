// Importance matrices: collection against sums recomputed here from the
// forward pass's trace hook, llama.cpp's GGUF and .dat layouts (files built
// by hand here), round trips, merging, and `slim imatrix`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "compress/imatrix.h"
#include "compress/perplexity.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace slim {
namespace {

using test::run_command;
using test::slim_binary;

std::string data_file(const std::string& name) { return std::string(SLIM_SOURCE_DIR) + "/tests/compress/data/" + name; }
std::string tmp(const std::string& name) { return test::temp_dir() + "/" + name; }

class ImatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model = test::shared_path("models/stories260K.gguf");
    ASSERT_TRUE(std::filesystem::exists(model)) << "missing shared test data file: " << model;
    const std::string path = data_file("story_calibration.txt");
    ASSERT_TRUE(std::filesystem::exists(path)) << "missing test data file: " << path;
    text = test::read_file(path);
  }
  Imatrix collect(int n_ctx, int n_chunks, bool process_output = false) {
    ImatrixParams p;
    p.n_ctx = n_ctx;
    p.n_chunks = n_chunks;
    p.n_threads = 2;
    p.process_output = process_output;
    p.dataset = "story_calibration.txt";
    auto m = collect_imatrix(model, text, p);
    EXPECT_TRUE(m.ok()) << m.error();
    return m.ok() ? *m : Imatrix();
  }
  std::string model, text;
};

// Sums of squares of named trace intermediates, over the same chunks run one
// at a time, one sequence, single-threaded: an independent forward.
struct TraceSums {
  std::map<std::pair<std::string, int>, std::vector<double>> sums;
  std::map<std::pair<std::string, int>, int64_t> rows;
  static void fn(void* user, const char* name, int il, const float* d, int n_tokens, int n) {
    auto* t = static_cast<TraceSums*>(user);
    auto key = std::make_pair(std::string(name), il);
    auto& s = t->sums[key];
    if (s.empty()) s.assign(n, 0.0);
    for (int r = 0; r < n_tokens; ++r)
      for (int j = 0; j < n; ++j) s[j] += (double)d[(size_t)r * n + j] * d[(size_t)r * n + j];
    t->rows[key] += n_tokens;
  }
};

void trace_sums(const std::string& model, const std::string& text, int n_ctx, int n_chunks, TraceSums& ts) {
  auto mdl = load_model(model);
  ASSERT_TRUE(mdl.ok()) << mdl.error();
  auto tok = Tokenizer::from_file(model);
  ASSERT_TRUE(tok.ok()) << tok.error();
  auto ct = chunk_text(**tok, text, n_ctx, n_chunks);
  ASSERT_TRUE(ct.ok()) << ct.error();
  ForwardState st;
  st.kv = make_kv_cache((*mdl)->hp, n_ctx, 1, CacheType::F32);
  st.trace = &TraceSums::fn;
  st.trace_user = &ts;
  std::vector<float> logits;
  for (int c = 0; c < n_chunks; ++c) {
    st.kv.clear_seq(0);
    Batch b;
    for (int k = 0; k < n_ctx; ++k) b.add(ct->tokens[(size_t)c * n_ctx + k], k, 0, false);
    ASSERT_TRUE(forward(**mdl, st, b, logits).ok());
  }
}

void expect_sums(const ImatrixTensor& got, const std::vector<double>& want, const std::string& name) {
  ASSERT_EQ(got.sums.size(), want.size()) << name;
  for (size_t j = 0; j < want.size(); ++j)
    ASSERT_NEAR(got.sums[j], want[j], 1e-5 * want[j] + 1e-9) << name << " column " << j;
}

TEST_F(ImatrixTest, SumsEqualAnIndependentComputation) {
  const int n_ctx = 64, n_chunks = 4;
  Imatrix m = collect(n_ctx, n_chunks);
  EXPECT_EQ(m.chunks, n_chunks);
  EXPECT_EQ(m.chunk_size, n_ctx);
  ASSERT_EQ(m.datasets.size(), 1u);
  // stories260K: 5 layers of Q, K, V, O, gate, up, down; output only with --process-output
  EXPECT_EQ(m.tensors.size(), 35u);
  EXPECT_EQ(m.tensors.count("output.weight"), 0u);
  for (auto& [name, t] : m.tensors) {
    EXPECT_EQ(t.counts, std::vector<int64_t>{(int64_t)n_chunks * n_ctx}) << name;
    EXPECT_EQ(t.n_expert, 1);
  }
  EXPECT_EQ(m.tensors.at("blk.0.ffn_down.weight").sums.size(), 172u);  // n_ff
  EXPECT_EQ(m.tensors.at("blk.0.attn_q.weight").sums.size(), 64u);     // n_embd

  TraceSums ts;
  ASSERT_NO_FATAL_FAILURE(trace_sums(model, text, n_ctx, n_chunks, ts));
  // What enters each weight, by the trace names of blocks.cpp / llama.cpp.
  const std::pair<const char*, const char*> inputs[] = {
      {"attn_norm", "attn_q"}, {"attn_norm", "attn_k"}, {"attn_norm", "attn_v"}, {"attn", "attn_output"},
      {"ffn_norm", "ffn_gate"}, {"ffn_norm", "ffn_up"}, {"ffn_act", "ffn_down"}};
  for (int il = 0; il < 5; ++il)
    for (auto [trace_name, weight] : inputs) {
      const std::string name = "blk." + std::to_string(il) + "." + weight + ".weight";
      const auto& want = ts.sums.at({trace_name, il});
      const auto& got = m.tensors.at(name);
      EXPECT_EQ(ts.rows.at({trace_name, il}), got.counts[0]) << name;
      ASSERT_NO_FATAL_FAILURE(expect_sums(got, want, name));
      const auto imp = got.importance();
      EXPECT_NEAR(imp[3], want[3] / (double)(n_chunks * n_ctx), 1e-5 * imp[3]) << name;
    }
}

void expect_equal(const Imatrix& a, const Imatrix& b, double rel) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    ASSERT_EQ(b.tensors.count(name), 1u) << name;
    const ImatrixTensor& u = b.tensors.at(name);
    EXPECT_EQ(t.counts, u.counts) << name;
    EXPECT_EQ(t.n_expert, u.n_expert) << name;
    ASSERT_EQ(t.sums.size(), u.sums.size()) << name;
    for (size_t j = 0; j < t.sums.size(); ++j) {
      if (rel == 0) ASSERT_EQ(t.sums[j], u.sums[j]) << name << " " << j;
      else ASSERT_NEAR(t.sums[j], u.sums[j], rel * std::abs(t.sums[j])) << name << " " << j;
    }
  }
  EXPECT_EQ(a.chunks, b.chunks);
  EXPECT_EQ(a.chunk_size, b.chunk_size);
}

TEST_F(ImatrixTest, FusedMatricesCountOnce) {
  // Phi-3: Q, K and V in one attn_qkv, gate and up in one ffn_up; each is one product
  SLIM_SHARED_FILE(phi3, "models/synthetic/phi3-F32.gguf");
  ImatrixParams p;
  p.n_ctx = 64, p.n_chunks = 2, p.n_threads = 2;
  auto m = collect_imatrix(phi3, text, p);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->tensors.size(), 8u);  // 2 layers: attn_qkv, attn_output, ffn_up, ffn_down
  TraceSums ts;
  ASSERT_NO_FATAL_FAILURE(trace_sums(phi3, text, 64, 2, ts));
  for (int il = 0; il < 2; ++il)
    for (auto [trace_name, weight] : {std::pair<const char*, const char*>{"attn_norm", "attn_qkv"}, {"ffn_norm", "ffn_up"}}) {
      const std::string name = "blk." + std::to_string(il) + "." + weight + ".weight";
      ASSERT_EQ(m->tensors.count(name), 1u) << name;
      EXPECT_EQ(m->tensors.at(name).counts[0], 128) << name;
      ASSERT_NO_FATAL_FAILURE(expect_sums(m->tensors.at(name), ts.sums.at({trace_name, il}), name));
    }
}

TEST_F(ImatrixTest, ProcessOutputAddsTheOutputWeight) {
  Imatrix m = collect(64, 2, true);
  ASSERT_EQ(m.tensors.count("output.weight"), 1u);
  EXPECT_EQ(m.tensors.at("output.weight").counts[0], 128);  // every row, as llama.cpp
  EXPECT_EQ(m.tensors.size(), 36u);
  // the same perplexity whichever rows carry logits; and batches smaller than a chunk
  double ppl[3] = {};
  for (int i = 0; i < 3; ++i) {
    ImatrixParams p;
    p.n_ctx = 64, p.n_chunks = 2, p.n_threads = 2, p.process_output = i == 1, p.n_batch = i == 2 ? 24 : 512;
    auto r = collect_imatrix(model, text, p, [&](const ImatrixProgress& pr) { ppl[i] = pr.ppl; });
    ASSERT_TRUE(r.ok()) << r.error();
    if (i == 2) expect_equal(*r, collect(64, 2), 1e-6);
  }
  EXPECT_GT(ppl[0], 1.0);
  EXPECT_NEAR(ppl[1], ppl[0], 1e-9 * ppl[0]);
  EXPECT_NEAR(ppl[2], ppl[0], 1e-6 * ppl[0]);
}


TEST_F(ImatrixTest, GgufAndDatRoundTrip) {
  Imatrix m = collect(64, 3);
  const std::string g = tmp("rt.gguf"), d = tmp("rt.dat");
  ASSERT_TRUE(write_imatrix(g, m).ok());
  ASSERT_TRUE(write_imatrix(d, m).ok());
  // the GGUF file, as llama.cpp lays it out
  auto f = GgufFile::open(g);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->get_string("general.type").value_or(""), "imatrix");
  EXPECT_EQ((*f)->get_int("imatrix.chunk_count").value_or(-1), 3);
  EXPECT_EQ((*f)->get_int("imatrix.chunk_size").value_or(-1), 64);
  ASSERT_NE((*f)->get_array("imatrix.datasets"), nullptr);
  EXPECT_EQ((*f)->get_array("imatrix.datasets")->strings, std::vector<std::string>{"story_calibration.txt"});
  const TensorInfo* s2 = (*f)->find_tensor("blk.2.ffn_down.weight.in_sum2");
  const TensorInfo* cn = (*f)->find_tensor("blk.2.ffn_down.weight.counts");
  ASSERT_TRUE(s2 && cn);
  EXPECT_EQ(s2->type, GgmlType::F32);
  EXPECT_EQ(s2->ne[0], 172);
  EXPECT_EQ(s2->ne[1], 1);
  EXPECT_EQ(cn->ne[0], 1);
  EXPECT_EQ(reinterpret_cast<const float*>(cn->data)[0], 192.0f);

  auto rg = read_imatrix(g);
  ASSERT_TRUE(rg.ok()) << rg.error();
  expect_equal(m, *rg, 0);
  EXPECT_EQ(rg->datasets, m.datasets);
  // .dat stores means times the chunk count: read back with the chunk size it was made with
  auto rd = read_imatrix(d, 64);
  ASSERT_TRUE(rd.ok()) << rd.error();
  expect_equal(m, *rd, 1e-6);
  EXPECT_EQ(rd->datasets, m.datasets);
  // the mean, what quantization uses, does not depend on the chunk size assumed
  auto r512 = read_imatrix(d);
  ASSERT_TRUE(r512.ok());
  const auto a = m.tensors.at("blk.1.attn_v.weight").importance(), b = r512->tensors.at("blk.1.attn_v.weight").importance();
  for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-6 * a[j]);
  EXPECT_EQ(r512->tensors.at("blk.1.attn_v.weight").counts[0], 3 * 512);
}

TEST_F(ImatrixTest, MergeDoublesTheCounts) {
  Imatrix m = collect(64, 2);
  Imatrix sum = m;
  ASSERT_TRUE(merge_imatrix(sum, m).ok());
  EXPECT_EQ(sum.chunks, 4);
  EXPECT_EQ(sum.datasets.size(), 2u);
  for (auto& [name, t] : sum.tensors) {
    EXPECT_EQ(t.counts[0], 2 * m.tensors.at(name).counts[0]) << name;
    for (size_t j = 0; j < t.sums.size(); ++j) ASSERT_EQ(t.sums[j], 2 * m.tensors.at(name).sums[j]);
    EXPECT_EQ(t.importance(), m.tensors.at(name).importance()) << name;
  }
  // shapes must agree; a failed merge leaves the target as it was
  Imatrix bad = m;
  bad.tensors.at("blk.0.attn_q.weight").sums.resize(10);
  Imatrix before = sum;
  auto st = merge_imatrix(sum, bad);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("blk.0.attn_q.weight"), std::string::npos) << st.message();
  expect_equal(before, sum, 0);
}

void put32(std::string& s, int32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }

TEST(ImatrixFormat, ReadsAHandWrittenDatFile) {
  // llama.cpp's legacy layout: entries, then the chunk count and the dataset
  std::string s;
  put32(s, 2);
  for (auto [name, ncall] : {std::pair<std::string, int>{"blk.0.ffn_down.weight", 2}, {"blk.0.attn_q.weight", 2}}) {
    put32(s, (int32_t)name.size());
    s += name;
    put32(s, ncall);
    put32(s, 3);
    for (float v : {2.0f, 4.0f, 6.0f}) s.append(reinterpret_cast<const char*>(&v), 4);
  }
  put32(s, 2);
  put32(s, 5);
  s += "x.txt";
  const std::string path = tmp("hand.dat");
  std::ofstream(path, std::ios::binary).write(s.data(), (std::streamsize)s.size());
  auto m = read_imatrix(path);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(m->tensors.size(), 2u);
  const ImatrixTensor& t = m->tensors.at("blk.0.ffn_down.weight");
  EXPECT_EQ(t.sums, (std::vector<float>{1024, 2048, 3072}));  // values × 512, llama.cpp's assumed chunk
  EXPECT_EQ(t.counts, std::vector<int64_t>{1024});            // ncall × 512
  EXPECT_EQ(t.importance(), (std::vector<float>{1, 2, 3}));   // values / ncall
  EXPECT_EQ(m->chunks, 2);
  EXPECT_EQ(m->datasets, std::vector<std::string>{"x.txt"});
  // and written back, byte for byte the same layout
  const std::string out = tmp("hand2.dat");
  ASSERT_TRUE(write_imatrix(out, *m).ok());
  const std::string back = test::read_file(out);
  // our writer sorts names (as llama.cpp does): attn_q first
  auto m2 = read_imatrix(out);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->tensors.at("blk.0.attn_q.weight").sums, t.sums);
  EXPECT_EQ(back.size(), s.size());
  EXPECT_EQ(back.substr(back.size() - 13), s.substr(s.size() - 13));  // chunk count, dataset
}

TEST(ImatrixFormat, ReadsAHandWrittenGgufFileWithExperts) {
  GgufWriter w;
  w.set("general.type", GgufValue::str("imatrix"));
  w.set("imatrix.chunk_count", GgufValue::u32(7));
  w.set("imatrix.chunk_size", GgufValue::u32(256));
  const float sums[] = {1, 2, 3, 4, 5, 6}, counts[] = {2, 4}, in_sum[] = {0, 0, 0, 0, 0, 0};
  ASSERT_TRUE(w.add_tensor("blk.0.ffn_up_exps.weight.in_sum2", GgmlType::F32, {3, 2}, sums, sizeof sums).ok());
  ASSERT_TRUE(w.add_tensor("blk.0.ffn_up_exps.weight.counts", GgmlType::F32, {1, 2}, counts, sizeof counts).ok());
  ASSERT_TRUE(w.add_tensor("blk.0.ffn_up_exps.weight.in_sum", GgmlType::F32, {3, 2}, in_sum, sizeof in_sum).ok());
  const std::string path = tmp("experts.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto m = read_imatrix(path);
  ASSERT_TRUE(m.ok()) << m.error();
  const ImatrixTensor& t = m->tensors.at("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(t.n_expert, 2);
  EXPECT_EQ(t.counts, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(t.importance(0), (std::vector<float>{0.5f, 1.0f, 1.5f}));
  EXPECT_EQ(t.importance(1), (std::vector<float>{1.0f, 1.25f, 1.5f}));
  EXPECT_EQ(m->chunks, 7);
  EXPECT_EQ(m->chunk_size, 256);
  // written back and read again: the same
  ASSERT_TRUE(write_imatrix(tmp("experts2.gguf"), *m).ok());
  auto m2 = read_imatrix(tmp("experts2.gguf"));
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->tensors.at("blk.0.ffn_up_exps.weight").sums, t.sums);
  EXPECT_EQ(m2->tensors.at("blk.0.ffn_up_exps.weight").counts, t.counts);
}

TEST(ImatrixFormat, BadFilesAreErrors) {
  auto r = read_imatrix("/nonexistent/im.gguf");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("/nonexistent/im.gguf"), std::string::npos);
  const std::string model = test::shared_path("models/stories260K.gguf");
  ASSERT_TRUE(std::filesystem::exists(model)) << "missing shared test data file: " << model;
  r = read_imatrix(model);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("importance"), std::string::npos) << r.error();
  const std::string junk = tmp("junk.dat");
  std::ofstream(junk) << "hello";
  r = read_imatrix(junk);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("not an importance matrix"), std::string::npos) << r.error();
}

TEST_F(ImatrixTest, CommandCollectsMergesAndConverts) {
  const std::string calib = data_file("story_calibration.txt"), g = tmp("cli.gguf"), d = tmp("cli-merged.dat");
  auto r = run_command(slim_binary() + " imatrix -m " + model + " -f " + calib + " -o " + g + " -c 64 --chunks 3 -t 2", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("wrote 35 entries"), std::string::npos) << r.out;
  r = run_command(slim_binary() + " imatrix --in-file " + g + " --in-file " + g + " -o " + d + " -c 64", true);
  ASSERT_EQ(r.status, 0) << r.out;
  auto one = read_imatrix(g), two = read_imatrix(d, 64);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(two->chunks, 6);
  for (auto& [name, t] : one->tensors) {
    EXPECT_EQ(two->tensors.at(name).counts[0], 2 * t.counts[0]) << name;
    EXPECT_NEAR(two->tensors.at(name).sums[5], 2 * t.sums[5], 1e-6 * t.sums[5]) << name;
  }
  // the same as collecting in-process
  expect_equal(collect(64, 3), *one, 0);
  r = run_command(slim_binary() + " imatrix -m " + model + " -f /nonexistent/calib.txt -o " + g, true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent/calib.txt"), std::string::npos) << r.out;
  r = run_command(slim_binary() + " imatrix -o " + g, true);
  EXPECT_NE(r.status, 0);
}

TEST_F(ImatrixTest, HookLeavesTheForwardPassAlone) {
  // The collection's perplexity (its forward passes carry the hook) equals
  // `slim perplexity`'s on the same chunks.
  ImatrixParams p;
  p.n_ctx = 64;
  p.n_chunks = 4;
  p.n_threads = 2;
  double ppl = 0;
  auto m = collect_imatrix(model, text, p, [&](const ImatrixProgress& pr) { ppl = pr.ppl; });
  ASSERT_TRUE(m.ok()) << m.error();
  EngineParams ep;
  ep.n_ctx = 64;
  ep.n_seq = 8;
  ep.n_threads = 2;
  ep.cache_type = CacheType::F32;
  auto e = Engine::load(model, ep);
  ASSERT_TRUE(e.ok()) << e.error();
  PerplexityParams pp;
  pp.n_ctx = 64;
  pp.n_chunks = 4;
  pp.n_threads = 2;
  auto res = run_perplexity(**e, text, pp);
  ASSERT_TRUE(res.ok()) << res.error();
  EXPECT_NEAR(ppl, res->ppl, 1e-9 * res->ppl);
}

}  // namespace
}  // namespace slim
