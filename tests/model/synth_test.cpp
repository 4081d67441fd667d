// slim synth: the big presets' shapes and type mixes (dry run, no file), and
// small synthetic models written to disk that load and run a forward pass.
#include <cmath>
#include <filesystem>

#include "gguf/gguf.h"
#include "kernels/threadpool.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_util.h"

namespace slim {
namespace {

const SynthTensor* find(const SynthPlan& p, const std::string& name) {
  for (const auto& t : p.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

TEST(Synth, PresetShapesMatchThePublishedConfigs) {
  struct Want { const char* name; const char* arch; int vocab, layers, embd, heads, kv, ff; bool bias, rope; };
  const Want wants[] = {
      {"smollm2-135m", "llama", 49152, 30, 576, 9, 3, 1536, false, false},
      {"qwen2.5-0.5b", "qwen2", 151936, 24, 896, 14, 2, 4864, true, false},
      {"llama-3.2-1b", "llama", 128256, 16, 2048, 32, 8, 8192, false, true},
      {"qwen2.5-1.5b", "qwen2", 151936, 28, 1536, 12, 2, 8960, true, false},
  };
  for (const Want& w : wants) {
    SCOPED_TRACE(w.name);
    const SynthShape* s = find_synth_preset(w.name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->arch, w.arch);
    EXPECT_EQ(s->n_vocab, w.vocab);
    EXPECT_EQ(s->n_layer, w.layers);
    EXPECT_EQ(s->n_embd, w.embd);
    EXPECT_EQ(s->n_head, w.heads);
    EXPECT_EQ(s->n_head_kv, w.kv);
    EXPECT_EQ(s->n_ff, w.ff);
    EXPECT_TRUE(s->tied);
    auto p = plan_synth(*s, "F32");
    ASSERT_TRUE(p.ok()) << p.error();
    EXPECT_EQ(find(*p, "output.weight"), nullptr);  // tied
    const SynthTensor* te = find(*p, "token_embd.weight");
    ASSERT_NE(te, nullptr);
    EXPECT_EQ(te->ne, (std::vector<int64_t>{w.embd, w.vocab}));
    const int hd = w.embd / w.heads;
    EXPECT_EQ(find(*p, "blk.0.attn_k.weight")->ne, (std::vector<int64_t>{w.embd, (int64_t)w.kv * hd}));
    EXPECT_EQ(find(*p, "blk.0.ffn_down.weight")->ne, (std::vector<int64_t>{w.ff, w.embd}));
    const std::string last = "blk." + std::to_string(w.layers - 1) + ".ffn_up.weight";
    EXPECT_NE(find(*p, last), nullptr);
    EXPECT_EQ(find(*p, "blk." + std::to_string(w.layers) + ".ffn_up.weight"), nullptr);
    EXPECT_EQ(find(*p, "blk.3.attn_q.bias") != nullptr, w.bias);
    EXPECT_EQ(find(*p, "rope_freqs.weight") != nullptr, w.rope);
    const int per_layer = 9 + (w.bias ? 3 : 0);
    EXPECT_EQ(p->tensors.size(), (size_t)(2 + (w.rope ? 1 : 0) + per_layer * w.layers));
  }
  // Parameter counts as published (tied embeddings counted once).
  EXPECT_NEAR((double)plan_synth(*find_synth_preset("qwen2.5-0.5b"), "F32")->n_params(), 494.0e6, 1e6);
  EXPECT_NEAR((double)plan_synth(*find_synth_preset("llama-3.2-1b"), "F32")->n_params(), 1235.8e6, 1e6);
  EXPECT_NEAR((double)plan_synth(*find_synth_preset("qwen2.5-1.5b"), "F32")->n_params(), 1543.7e6, 1e6);
  EXPECT_EQ(find_synth_preset("no-such-model"), nullptr);
  EXPECT_FALSE(plan_synth(*find_synth_preset("tiny"), "Q9_9").ok());
}

TEST(Synth, QuantMixes) {
  // Q4_K_M on llama-3.2-1b (rows of 2048 and 8192: K-quants everywhere)
  auto p = plan_synth(*find_synth_preset("llama-3.2-1b"), "q4_k_m");
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->ftype, "Q4_K_M");
  EXPECT_EQ(p->file_type, 15u);
  EXPECT_EQ(find(*p, "token_embd.weight")->type, GgmlType::Q6_K);  // tied: the LM head
  EXPECT_EQ(find(*p, "blk.0.attn_v.weight")->type, GgmlType::Q6_K);  // first eighth
  EXPECT_EQ(find(*p, "blk.0.ffn_down.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(find(*p, "blk.2.attn_v.weight")->type, GgmlType::Q4_K);
  EXPECT_EQ(find(*p, "blk.4.ffn_down.weight")->type, GgmlType::Q6_K);  // (4 - 2) % 3 == 2
  EXPECT_EQ(find(*p, "blk.15.ffn_down.weight")->type, GgmlType::Q6_K);  // last eighth
  EXPECT_EQ(find(*p, "blk.5.attn_q.weight")->type, GgmlType::Q4_K);
  EXPECT_EQ(find(*p, "blk.5.attn_norm.weight")->type, GgmlType::F32);
  EXPECT_EQ(find(*p, "rope_freqs.weight")->type, GgmlType::F32);
  // Q4_K_M on qwen2.5-0.5b: rows of 896 fall back to 32-value types as llama-quantize does
  p = plan_synth(*find_synth_preset("qwen2.5-0.5b"), "Q4_K_M");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(find(*p, "token_embd.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(find(*p, "blk.1.attn_q.weight")->type, GgmlType::Q5_0);
  EXPECT_EQ(find(*p, "blk.1.ffn_down.weight")->type, GgmlType::Q6_K);  // 4864 = 19 x 256
  EXPECT_EQ(find(*p, "blk.4.ffn_down.weight")->type, GgmlType::Q4_K);
  // Q4_0: the LM head is Q6_K where rows allow, else Q8_0; Q8_0 everywhere in Q8_0
  p = plan_synth(*find_synth_preset("llama-3.2-1b"), "Q4_0");
  EXPECT_EQ(find(*p, "token_embd.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(find(*p, "blk.0.ffn_down.weight")->type, GgmlType::Q4_0);
  p = plan_synth(*find_synth_preset("qwen2.5-0.5b"), "Q8_0");
  for (const auto& t : p->tensors)
    EXPECT_EQ(t.type, t.ne.size() == 1 ? GgmlType::F32 : GgmlType::Q8_0) << t.name;
  // the file sizes of llama.cpp's files of these shapes (perf/README.md), within 1 %
  const double mib = 1048576.0;
  EXPECT_NEAR(plan_synth(*find_synth_preset("qwen2.5-0.5b"), "Q4_0")->data_bytes() / mib, 330, 4);
  EXPECT_NEAR(plan_synth(*find_synth_preset("qwen2.5-0.5b"), "Q4_K_M")->data_bytes() / mib, 374, 4);
  EXPECT_NEAR(plan_synth(*find_synth_preset("qwen2.5-0.5b"), "Q8_0")->data_bytes() / mib, 501, 5);
  EXPECT_NEAR(plan_synth(*find_synth_preset("llama-3.2-1b"), "Q4_0")->data_bytes() / mib, 728, 8);
  EXPECT_NEAR(plan_synth(*find_synth_preset("llama-3.2-1b"), "Q4_K_M")->data_bytes() / mib, 763, 8);
  EXPECT_NEAR(plan_synth(*find_synth_preset("llama-3.2-1b"), "Q8_0")->data_bytes() / mib, 1.22 * 1024, 13);
}

// Writes a small model, loads it back and checks metadata, bytes and a forward pass.
void write_and_run(const SynthShape& shape, const std::string& type) {
  SCOPED_TRACE(shape.name + " " + type);
  auto plan = plan_synth(shape, type);
  ASSERT_TRUE(plan.ok()) << plan.error();
  const std::string path = test::temp_dir() + "/synth-" + shape.name + "-" + type + ".gguf";
  ThreadPool pool2(2);
  ASSERT_TRUE(write_synth(*plan, {path, 7, 0.02f}, pool2).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  const GgufFile& g = **f;
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.get_string("general.architecture").value_or(""), shape.arch);
  EXPECT_NE(g.get_string("general.name").value_or("").find("random"), std::string::npos);
  for (const char* k : {"context_length", "embedding_length", "block_count", "feed_forward_length",
                        "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
                        "rope.freq_base"})
    EXPECT_NE(g.find(shape.arch + "." + k), nullptr) << k;
  ASSERT_NE(g.get_array("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(g.get_array("tokenizer.ggml.tokens")->size(), (size_t)shape.n_vocab);
  EXPECT_EQ(g.get_array("tokenizer.ggml.tokens")->strings[3 + 0x41], "<0x41>");
  EXPECT_EQ(g.get_string("tokenizer.ggml.model").value_or(""), "llama");
  ASSERT_EQ(g.tensors().size(), plan->tensors.size());
  for (size_t i = 0; i < plan->tensors.size(); ++i) {
    EXPECT_EQ(g.tensors()[i].name, plan->tensors[i].name);
    EXPECT_EQ(g.tensors()[i].type, plan->tensors[i].type);
    EXPECT_EQ(g.tensors()[i].nbytes, plan->tensors[i].nbytes);
  }
  // Weights have the asked spread (dequantized), norms are 1.
  const TensorInfo* q = g.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  std::vector<float> v(q->n_elements());
  type_traits(q->type).to_float(q->data, v.data(), (int64_t)v.size());
  double s2 = 0, s1 = 0;
  for (float x : v) s1 += x, s2 += (double)x * x;
  const double mean = s1 / v.size(), sd = std::sqrt(s2 / v.size() - mean * mean);
  EXPECT_NEAR(mean, 0, 1e-3);
  EXPECT_NEAR(sd, 0.02, 0.002);
  const TensorInfo* norm = g.find_tensor("blk.1.ffn_norm.weight");
  EXPECT_EQ(reinterpret_cast<const float*>(norm->data)[5], 1.0f);

  // The same seed gives the same bytes with one thread.
  const std::string path1 = path + ".1t";
  ThreadPool pool1(1);
  ASSERT_TRUE(write_synth(*plan, {path1, 7, 0.02f}, pool1).ok());
  EXPECT_EQ(test::read_file(path), test::read_file(path1));

  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ((*m)->hp.n_vocab, shape.n_vocab);
  EXPECT_EQ((*m)->hp.n_layer, shape.n_layer);
  ForwardState st;
  st.pool = &pool2;
  st.kv = make_kv_cache((*m)->hp, 32, 1, CacheType::F16);
  Batch b;
  for (int i = 0; i < 6; ++i) b.add(100 + 37 * i, i, 0, i == 5);
  std::vector<float> logits;
  ASSERT_TRUE(forward(**m, st, b, logits).ok());
  ASSERT_EQ(logits.size(), (size_t)shape.n_vocab);
  double amax = 0, var = 0;
  for (float x : logits) {
    ASSERT_TRUE(std::isfinite(x));
    amax = std::max(amax, (double)std::fabs(x));
    var += (double)x * x;
  }
  // random but sane: logits of order 1, not all equal
  EXPECT_LT(amax, 20.0);
  EXPECT_GT(var / logits.size(), 1e-3);
  std::filesystem::remove(path);
  std::filesystem::remove(path1);
}

TEST(Synth, TinyLlamaWritesLoadsAndRuns) {
  for (const char* t : {"F32", "Q8_0", "Q4_K_M", "Q4_0"}) write_and_run(*find_synth_preset("tiny"), t);
}

TEST(Synth, CustomQwen2ShapeWithBiasesAndLlama3Rope) {
  SynthShape s = *find_synth_preset("tiny");
  s.name = "tiny-qwen2";
  s.arch = "qwen2";
  s.n_vocab = 700;
  s.n_embd = 128;  // not a multiple of 256: K-quant fallbacks
  s.n_head = 4;
  s.n_head_kv = 1;
  s.n_ff = 320;
  s.tied = true;
  s.qkv_bias = true;
  write_and_run(s, "Q4_K_M");
  s.name = "tiny-llama3";
  s.arch = "llama";
  s.qkv_bias = false;
  s.llama3_rope = true;
  s.rope_theta = 500000;
  write_and_run(s, "BF16");
}

}  // namespace
}  // namespace slim
