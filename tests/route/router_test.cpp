// The router: decisions from signals, draft signals, calibration, the
// classifier, privacy vetoes; and routing quality with stories260K as the
// local model — thresholds calibrated on ../shared/route/routing-train.jsonl,
// judged on tests/route/data/routing-eval.jsonl (our own prompts of the same
// kinds, none of them in the calibration set).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/engine.h"
#include "route/classifier.h"
#include "route/router.h"
#include "route/signals.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace slim {
namespace {

PromptSignals sig(double nll, int n_tokens = 20, int n_ctx = 512) {
  PromptSignals s;
  s.nll_mean = nll;
  s.n_tokens = n_tokens;
  s.n_ctx = n_ctx;
  return s;
}

TEST(RouteDecide, PerplexityThreshold) {
  RouteThresholds t;
  t.max_prompt_nll = 3.0;
  EXPECT_FALSE(decide_prompt(t, sig(2.9)).remote);
  RouteDecision d = decide_prompt(t, sig(3.1));
  EXPECT_TRUE(d.remote);
  EXPECT_NE(d.reason.find("perplexity"), std::string::npos) << d.reason;
  EXPECT_EQ(d.to_json()["decision"], "remote");
  EXPECT_DOUBLE_EQ(d.to_json()["signals"]["nll_mean"].get<double>(), 3.1);
}

TEST(RouteDecide, HardLimitsComeFirst) {
  RouteThresholds t;
  PromptSignals s = sig(0.5);
  s.wants_tools = true;
  EXPECT_TRUE(decide_prompt(t, s).remote);
  s = sig(0.5);
  s.wants_images = true;
  EXPECT_TRUE(decide_prompt(t, s).remote);
  s = sig(0.5, 470, 512);  // 92 % of the context
  RouteDecision d = decide_prompt(t, s);
  EXPECT_TRUE(d.remote);
  EXPECT_NE(d.reason.find("context"), std::string::npos);
  EXPECT_FALSE(decide_prompt(t, sig(0.5, 400, 512)).remote);
}

TEST(RouteDecide, ClassifierOverridesPerplexity) {
  RouteThresholds t;
  t.max_prompt_nll = 3.0;
  t.classifier_threshold = 0.6;
  PromptSignals s = sig(9.0);
  s.classifier_p = 0.5;
  EXPECT_FALSE(decide_prompt(t, s).remote);
  s = sig(1.0);
  s.classifier_p = 0.7;
  EXPECT_TRUE(decide_prompt(t, s).remote);
}

TEST(RouteDraft, UncertaintyAndRepetition) {
  std::vector<int32_t> varied, looped;
  for (int i = 0; i < 40; ++i) varied.push_back(i);
  for (int i = 0; i < 40; ++i) looped.push_back(i % 3);
  std::vector<float> sure(40, -0.2f), unsure(40, -4.0f), ent(40, 1.0f);
  DraftSignals a = draft_signals(sure, ent, varied);
  EXPECT_NEAR(a.logprob_mean, -0.2, 1e-6);
  EXPECT_DOUBLE_EQ(a.repetition, 0.0);
  DraftSignals b = draft_signals(sure, ent, looped);
  // 37 4-grams, only 3 distinct: 34 repeats.
  EXPECT_NEAR(b.repetition, 34.0 / 37.0, 1e-9);
  RouteThresholds t;
  PromptSignals p = sig(1.0);
  EXPECT_FALSE(decide_draft(t, p, a).remote);
  EXPECT_TRUE(decide_draft(t, p, b).remote);
  EXPECT_TRUE(decide_draft(t, p, draft_signals(unsure, ent, varied)).remote);
  std::vector<float> mostly_sure(40, -0.1f);
  for (int i = 0; i < 5; ++i) mostly_sure[i] = -9.0f;  // a few wild guesses drag the 10th percentile down
  DraftSignals c = draft_signals(mostly_sure, ent, varied);
  EXPECT_GT(c.logprob_mean, t.min_draft_logprob);
  EXPECT_TRUE(decide_draft(t, p, c).remote);
}

TEST(RouteSignals, TokenUncertaintyMatchesDefinition) {
  const float lg[4] = {1.0f, 2.0f, 0.5f, -1.0f};
  double z = 0;
  for (float x : lg) z += std::exp((double)x);
  double h = 0;
  for (float x : lg) h -= std::exp(x) / z * std::log(std::exp(x) / z);
  float lp, ent;
  token_uncertainty(lg, 4, 1, &lp, &ent);
  EXPECT_NEAR(lp, 2.0 - std::log(z), 1e-6);
  EXPECT_NEAR(ent, h, 1e-6);
}

std::vector<LabelledPrompt> synthetic_rows() {
  std::vector<LabelledPrompt> rows;
  for (int i = 0; i < 20; ++i) {
    LabelledPrompt r;
    r.remote = i % 2 == 1;
    r.prompt = r.remote ? "compute the integral number " + std::to_string(i) : "a little story about a cat " + std::to_string(i);
    r.signals = sig(r.remote ? 4.0 + i * 0.05 : 2.0 + i * 0.05);
    rows.push_back(r);
  }
  return rows;
}

TEST(RouteCalibrate, SeparatesAndMeetsTheTarget) {
  auto rows = synthetic_rows();
  Calibration c = calibrate(rows, 0.85, RouteThresholds{});
  EXPECT_DOUBLE_EQ(c.accuracy, 1.0);
  EXPECT_GT(c.thresholds.max_prompt_nll, 2.95);
  EXPECT_LT(c.thresholds.max_prompt_nll, 4.05);
  EXPECT_DOUBLE_EQ(c.local_kept, 1.0);
  // Overlapping scores: keeping every local prompt local forces some remote ones local too.
  rows[0].signals.nll_mean = 5.0;  // a local-labelled prompt that reads hard
  Calibration all = calibrate(rows, 1.0, RouteThresholds{});
  EXPECT_DOUBLE_EQ(all.local_kept, 1.0);
  EXPECT_GT(all.thresholds.max_prompt_nll, 5.0 - 0.5);
  Calibration most = calibrate(rows, 0.85, RouteThresholds{});
  EXPECT_GE(most.local_kept, 0.85);
  EXPECT_GT(most.accuracy, all.accuracy);
}

TEST(RouteClassifier, LearnsSavesAndLoads) {
  auto rows = synthetic_rows();
  for (auto& r : rows) r.signals = sig(3.0);  // only the text tells them apart
  RouteClassifier c = train_classifier(rows);
  for (const auto& r : rows) EXPECT_EQ(c.p_remote(r.prompt, r.signals) > 0.5, r.remote) << r.prompt;
  const std::string path = test::temp_dir() + "/classifier.json";
  ASSERT_TRUE(save_classifier(path, c));
  auto back = load_classifier(path);
  ASSERT_TRUE(back) << back.error();
  for (const auto& r : rows) EXPECT_NEAR(back->p_remote(r.prompt, r.signals), c.p_remote(r.prompt, r.signals), 1e-9);
  std::ofstream(path) << "{\"kind\": \"something else\"}";
  EXPECT_FALSE(load_classifier(path));
  EXPECT_FALSE(load_classifier(test::temp_dir() + "/missing.json"));
}

TEST(RoutePrivacy, MarkersAndForbiddenCategories) {
  PrivacyConfig p;
  p.forbid = {"secret"};
  EXPECT_NE(forbid_reason(p, {}, "please help #private").find("#private"), std::string::npos);
  EXPECT_EQ(forbid_reason(p, {}, "nothing to see"), "");
  privacy::Finding f{"email", 0, 5};
  EXPECT_EQ(forbid_reason(p, {f}, "a@b.c"), "");
  f.category = "secret";
  EXPECT_NE(forbid_reason(p, {f}, "x"), "");
}

TEST(RouteLabelledData, BadRowsAreErrors) {
  const std::string path = test::temp_dir() + "/bad.jsonl";
  std::ofstream(path) << "{\"prompt\": \"a\", \"label\": \"local\"}\n{\"prompt\": \"b\", \"label\": \"maybe\"}\n";
  auto r = read_labelled_prompts(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find(":2:"), std::string::npos) << r.error();
}

// Calibrated on the shared set, judged on prompts it never saw.
TEST(RouteQuality, Stories260KGeneralisesToNewPrompts) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  SLIM_SHARED_FILE(train_path, "route/routing-train.jsonl");
  const std::string eval_path = std::string(SLIM_SOURCE_DIR) + "/tests/route/data/routing-eval.jsonl";
  ASSERT_TRUE(std::filesystem::exists(eval_path)) << "missing " << eval_path;
  EngineParams ep;
  ep.n_ctx = 512;
  ep.n_threads = 2;
  auto e = Engine::load(model, ep);
  ASSERT_TRUE(e) << e.error();
  RouteConfig cfg;
  auto router = Router::create(cfg);
  ASSERT_TRUE(router) << router.error();
  auto score = [&](std::vector<LabelledPrompt>& rows) {
    for (auto& r : rows) {
      auto s = engine_prompt_signals(**e, **router, r.prompt);
      ASSERT_TRUE(s) << s.error();
      r.signals = *s;
    }
  };
  auto train = read_labelled_prompts(train_path);
  ASSERT_TRUE(train) << train.error();
  auto eval = read_labelled_prompts(eval_path);
  ASSERT_TRUE(eval) << eval.error();
  score(*train);
  score(*eval);
  Calibration c = calibrate(*train, 0.85, cfg.route);
  EXPECT_GE(c.accuracy, 0.9);
  int correct = 0, local = 0, local_labelled = 0, kept = 0;
  for (const auto& r : *eval) {
    const bool remote = decide_prompt(c.thresholds, r.signals).remote;
    correct += remote == r.remote;
    local += !remote;
    local_labelled += !r.remote;
    kept += !r.remote && !remote;
  }
  const double acc = (double)correct / eval->size();
  std::printf("routing eval: %zu prompts, accuracy %.3f, answered locally %.3f, local kept %.3f (threshold %.3f)\n",
              eval->size(), acc, (double)local / eval->size(), (double)kept / local_labelled,
              c.thresholds.max_prompt_nll);
  EXPECT_GE(acc, 0.9);
  EXPECT_GE((double)kept / local_labelled, 0.85);
  // Other languages are far outside a children's-story model.
  PromptSignals ru = *engine_prompt_signals(**e, **router, "Напиши короткое письмо другу.");
  EXPECT_GT(ru.byte_fraction, 0.5);
  EXPECT_TRUE(decide_prompt(c.thresholds, ru).remote);
}

}  // namespace
}  // namespace slim
