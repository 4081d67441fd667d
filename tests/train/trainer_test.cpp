// The whole-model forward against slim's inference engine, its backward
// against finite differences, and the training loop: a run lowers the loss,
// repeats bit for bit, does not depend on the thread count, and resumes from
// a checkpoint exactly where an uninterrupted run would be.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "compress/perplexity.h"
#include "engine/engine.h"
#include "kernels/threadpool.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/forward.h"
#include "train/trainer.h"

namespace slim::train {
namespace {

std::string stories_text() { return test::read_file(std::string(SLIM_SOURCE_DIR) + "/tests/train/data/stories.txt"); }

// The training forward's cross-entropy equals the one computed from the
// inference engine's logits on the same tokens: the two forwards agree (RoPE
// layout, GQA, biases, Q/K norms, tied or untied head, rope_freqs).
void expect_forward_matches_engine(const std::string& path) {
  auto m = init_from_gguf(path);
  ASSERT_TRUE(m) << path << ": " << m.error();
  EngineParams ep;
  ep.n_ctx = 64;
  ep.cache_type = CacheType::F32;
  ep.n_threads = 2;
  auto e = Engine::load(path, ep);
  ASSERT_TRUE(e) << e.error();
  std::vector<int32_t> toks = (*e)->tokenizer().tokenize("Once upon a time, there was a little girl named Lily.", true, false);
  ASSERT_GT(toks.size(), 8u);
  const int n = (int)toks.size() - 1;
  Batch b;
  for (int t = 0; t < n; ++t) b.add(toks[t], t, 0, true);
  std::vector<float> logits;
  ASSERT_TRUE((*e)->decode(b, logits));
  const int V = (*e)->model().hp.n_vocab;
  std::vector<double> ref(n);
  for (int t = 0; t < n; ++t) ref[t] = token_nll(logits.data() + (size_t)t * V, V, toks[t + 1]);

  TrainBatch tb = make_batch({&toks}, n);
  Workspace ws;
  ThreadPool pool(2);
  // One token at a time is not what the batch does: compare the sums, and
  // each position through one-sequence batches of growing length.
  const LossSums s = forward_backward(*m, tb, LossConfig{}, nullptr, 0, ws, &pool);
  double ref_sum = 0;
  for (double x : ref) ref_sum += x;
  EXPECT_NEAR(s.ce, ref_sum, 2e-4 * n) << path;
  for (int len : {1, n / 2, n}) {
    std::vector<int32_t> prefix(toks.begin(), toks.begin() + len + 1);
    TrainBatch pb = make_batch({&prefix}, len);
    const LossSums ps = forward_backward(*m, pb, LossConfig{}, nullptr, 0, ws, &pool);
    double want = 0;
    for (int t = 0; t < len; ++t) want += ref[t];
    EXPECT_NEAR(ps.ce, want, 2e-4 * len) << path << " first " << len << " tokens";
  }
}

TEST(TrainForward, MatchesInferenceStories260K) {
  SLIM_SHARED_FILE(p, "models/stories260K.gguf");
  expect_forward_matches_engine(p);
}

TEST(TrainForward, MatchesInferenceEveryFamily) {
  for (const char* v : {"llama", "llama3rope", "qwen2", "qwen3"}) {
    SLIM_SHARED_FILE(p, std::string("models/synthetic/") + v + "-F32.gguf");
    expect_forward_matches_engine(p);
  }
}

// Whole-model gradient against central differences in float, on the
// parameters with the largest gradient of every tensor (where a float
// difference quotient is well above its rounding noise).
void expect_model_gradient(const std::string& spec) {
  auto s = parse_shape(spec, 40);
  ASSERT_TRUE(s) << s.error();
  auto m = init_from_shape(*s, 7);
  ASSERT_TRUE(m) << m.error();
  // Non-trivial norms and biases, so their gradients are exercised.
  for (const Param& p : m->params)
    if (!p.decay)
      for (size_t i = 0; i < p.n; ++i) m->w[p.offset + i] += 0.3f * std::sin((float)(i + p.offset));
  std::vector<int32_t> a = {1, 5, 9, 3, 3, 17, 22, 8, 30}, b = {1, 2, 4, 8, 16, 32, 39, 0, 11};
  TrainBatch batch = make_batch({&a, &b}, 8);
  Workspace ws;
  std::vector<float> grad(m->n_params(), 0.0f);
  forward_backward(*m, batch, LossConfig{}, grad.data(), 1.0f, ws, nullptr);
  for (const Param& p : m->params) {
    std::vector<size_t> order(p.n);
    for (size_t i = 0; i < p.n; ++i) order[i] = p.offset + i;
    std::partial_sort(order.begin(), order.begin() + std::min<size_t>(3, p.n), order.end(),
                      [&](size_t x, size_t y) { return std::abs(grad[x]) > std::abs(grad[y]); });
    for (size_t j = 0; j < std::min<size_t>(3, p.n); ++j) {
      const size_t i = order[j];
      const float keep = m->w[i], h = 2e-3f * std::max(1.0f, std::abs(keep));
      m->w[i] = keep + h;
      const double up = forward_backward(*m, batch, LossConfig{}, nullptr, 0, ws, nullptr).loss;
      m->w[i] = keep - h;
      const double down = forward_backward(*m, batch, LossConfig{}, nullptr, 0, ws, nullptr).loss;
      m->w[i] = keep;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(grad[i], numeric, 2e-2 + 0.03 * std::abs(numeric)) << spec << " " << p.name << " [" << i - p.offset << "]";
    }
  }
}

TEST(TrainBackward, WholeModelLlamaTiedAndUntied) {
  expect_model_gradient("dim=16,layers=2,heads=4,kv_heads=2,ffn=24");
  expect_model_gradient("dim=16,layers=1,heads=2,kv_heads=2,ffn=20,tied=0");
}

TEST(TrainBackward, WholeModelQwen2BiasesAndQwen3Norms) {
  expect_model_gradient("arch=qwen2,dim=16,layers=2,heads=4,kv_heads=1,ffn=24");
  expect_model_gradient("arch=qwen3,dim=16,layers=2,heads=4,kv_heads=2,head_dim=6,ffn=24");
}

TEST(TrainBackward, DistillationGradientWithTeacher) {
  auto s = parse_shape("dim=16,layers=1,heads=2,kv_heads=1,ffn=16", 30);
  ASSERT_TRUE(s);
  auto m = init_from_shape(*s, 3);
  ASSERT_TRUE(m);
  std::vector<int32_t> a = {1, 5, 9, 3, 3, 17, 22};
  TrainBatch b = make_batch({&a}, 6);
  // A made-up teacher: softmax of fixed logits, top 5.
  std::vector<float> tz(6 * 30);
  for (size_t i = 0; i < tz.size(); ++i) tz[i] = 2.0f * std::cos(0.7f * (float)i);
  b.teacher_k = 5;
  b.teacher_ids.resize(6 * 5), b.teacher_probs.resize(6 * 5);
  teacher_top_k(tz.data(), 6, 30, 2.0f, 5, b.teacher_ids.data(), b.teacher_probs.data(), nullptr);
  const LossConfig lc{true, 2.0f, 0.7f};
  Workspace ws;
  std::vector<float> grad(m->n_params(), 0.0f);
  const LossSums base = forward_backward(*m, b, lc, grad.data(), 1.0f, ws, nullptr);
  EXPECT_GT(base.kl, 0);
  const size_t i = m->layers[0].ffn_up + 3;
  const float keep = m->w[i], h = 2e-3f;
  m->w[i] = keep + h;
  const double up = forward_backward(*m, b, lc, nullptr, 0, ws, nullptr).loss;
  m->w[i] = keep - h;
  const double down = forward_backward(*m, b, lc, nullptr, 0, ws, nullptr).loss;
  m->w[i] = keep;
  EXPECT_NEAR(grad[i], (up - down) / (2 * h), 1e-2 + 0.03 * std::abs(grad[i]));
}

// A small run on the test stories: the fixture makes the model, data and options.
struct TinyRun {
  TrainModel m;
  Dataset data;
  TrainOptions o;
};

TinyRun tiny_run() {
  TinyRun r;
  auto tok = Tokenizer::from_file(test::shared_path("models/stories260K.gguf"));
  EXPECT_TRUE(tok) << "missing shared test data file: models/stories260K.gguf";
  if (!tok) return r;
  auto d = dataset_from_text(**tok, stories_text(), {32, 0.1});
  EXPECT_TRUE(d) << d.error();
  r.data = std::move(*d);
  auto s = parse_shape("dim=32,layers=2,heads=4,kv_heads=2,ffn=64", (*tok)->n_vocab());
  r.m = *init_from_shape(*s, 11);
  r.o.steps = 30;
  r.o.batch = 4;
  r.o.grad_accum = 2;
  r.o.lr = 1e-2f;
  r.o.eval_every = 8;
  r.o.seed = 5;
  return r;
}

TEST(TrainLoop, LowersTheLossAndRepeatsBitForBit) {
  TinyRun a = tiny_run(), b = tiny_run();
  ASSERT_FALSE(a.data.train.empty());
  ThreadPool pool(2);
  const double before = evaluate(a.m, a.data.eval, 4, 0, &pool);
  TrainState sa, sb;
  auto ra = run_training(a.m, sa, a.data, a.o, nullptr, &pool);
  auto rb = run_training(b.m, sb, b.data, b.o, nullptr, &pool);
  ASSERT_TRUE(ra) << ra.error();
  ASSERT_TRUE(rb) << rb.error();
  ASSERT_EQ(ra->log.size(), 30u);
  EXPECT_LT(ra->log.back().loss, ra->log.front().loss - 1.0);
  EXPECT_LT(ra->final_eval_ce, before - 1.0);
  for (size_t i = 0; i < ra->log.size(); ++i) EXPECT_EQ(ra->log[i].loss, rb->log[i].loss) << "step " << i + 1;
  EXPECT_EQ(a.m.w, b.m.w);
}

TEST(TrainLoop, SameResultForAnyThreadCount) {
  TinyRun a = tiny_run(), b = tiny_run();
  a.o.steps = b.o.steps = 6;
  ThreadPool one(1), three(3);
  TrainState sa, sb;
  ASSERT_TRUE(run_training(a.m, sa, a.data, a.o, nullptr, &one));
  ASSERT_TRUE(run_training(b.m, sb, b.data, b.o, nullptr, &three));
  EXPECT_EQ(a.m.w, b.m.w);
}

TEST(TrainLoop, ResumeFromCheckpointEqualsUninterruptedRun) {
  const std::string dir = test::temp_dir();
  TinyRun full = tiny_run(), part = tiny_run();
  ThreadPool pool(2);
  full.o.save_every = 10;
  full.o.checkpoint = dir + "/run.ckpt";
  const std::string at10 = dir + "/step10.ckpt";
  TrainState sf;
  auto rf = run_training(full.m, sf, full.data, full.o, nullptr, &pool, [&](const StepLog& s) {
    if (s.step == 10) {
      EXPECT_TRUE(s.saved);
      std::filesystem::copy_file(full.o.checkpoint, at10, std::filesystem::copy_options::overwrite_existing);
    }
  });
  ASSERT_TRUE(rf) << rf.error();
  auto c = load_checkpoint(at10);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->step, 10);
  EXPECT_EQ(c->config_json, options_json(full.o, full.m.shape, full.data.n_ctx));
  TrainState sp{std::move(c->adam_m), std::move(c->adam_v), c->step};
  part.m = std::move(c->model);
  auto rp = run_training(part.m, sp, part.data, part.o, nullptr, &pool);
  ASSERT_TRUE(rp) << rp.error();
  EXPECT_EQ(rp->log.size(), 20u);
  EXPECT_EQ(part.m.w, full.m.w);
  EXPECT_EQ(rp->log.back().loss, rf->log.back().loss);
  std::filesystem::remove_all(dir);
}

TEST(TrainLoop, DistillationLowersTheKlToTheTeacher) {
  SLIM_SHARED_FILE(tp, "models/stories260K.gguf");
  EngineParams ep;
  ep.n_ctx = 32;
  ep.cache_type = CacheType::F32;
  ep.n_threads = 2;
  auto teacher = Engine::load(tp, ep);
  ASSERT_TRUE(teacher) << teacher.error();
  TinyRun r = tiny_run();
  r.o.loss = {true, 2.0f, 0.8f};
  r.o.teacher_top_k = 32;
  r.o.steps = 16;
  ThreadPool pool(2);
  TrainState st;
  auto res = run_training(r.m, st, r.data, r.o, teacher->get(), &pool);
  ASSERT_TRUE(res) << res.error();
  EXPECT_LT(res->log.back().kl, res->log.front().kl * 0.8);
  // Without a teacher the same options are refused.
  TrainState st2;
  EXPECT_FALSE(run_training(r.m, st2, r.data, r.o, nullptr, &pool));
}

TEST(TrainSchedule, WarmupThenCosineToTheFloor) {
  EXPECT_FLOAT_EQ(lr_at(0, 100, 10, 1.0f, 0.1f), 0.1f);
  EXPECT_FLOAT_EQ(lr_at(9, 100, 10, 1.0f, 0.1f), 1.0f);
  EXPECT_FLOAT_EQ(lr_at(10, 100, 10, 1.0f, 0.1f), 1.0f);
  EXPECT_NEAR(lr_at(99, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);
  EXPECT_NEAR(lr_at(54, 100, 10, 1.0f, 0.1f), 0.55f, 0.02);
  std::vector<float> g = {3, 4};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 2, 1.0), 5.0);
  EXPECT_NEAR(g[0], 0.6f, 1e-6);
  EXPECT_NEAR(g[1], 0.8f, 1e-6);
}

TEST(TrainOptimizer, AdamWFirstStepAndDecoupledDecay) {
  auto s = parse_shape("dim=8,layers=1,heads=2,kv_heads=1,ffn=8", 10);
  ASSERT_TRUE(s);
  TrainModel m = layout(*s);
  std::fill(m.w.begin(), m.w.end(), 1.0f);
  std::vector<float> g(m.n_params(), 0.5f), mom(m.n_params(), 0), vel(m.n_params(), 0);
  AdamParams p;
  p.weight_decay = 0.1f;
  adamw_step(m, g.data(), mom.data(), vel.data(), 1, 0.01f, p, nullptr);
  // First step: m_hat = g, v_hat = g^2, so the update is lr * sign(g); matrices also decay by lr * wd.
  const Param* norm = m.find("blk.0.attn_norm.weight");
  const Param* mat = m.find("blk.0.ffn_up.weight");
  ASSERT_TRUE(norm && mat);
  EXPECT_NEAR(m.w[norm->offset], 1.0f - 0.01f, 1e-6);
  EXPECT_NEAR(m.w[mat->offset], 1.0f * (1 - 0.01f * 0.1f) - 0.01f, 1e-6);
}

}  // namespace
}  // namespace slim::train
