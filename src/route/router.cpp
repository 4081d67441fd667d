// Routing decisions, privacy vetoes and threshold calibration.
#include "route/router.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace slim {

nlohmann::json RouteDecision::to_json() const {
  return {{"decision", remote ? "remote" : "local"}, {"reason", reason}, {"signals", signals}};
}

RouteDecision decide_prompt(const RouteThresholds& t, const PromptSignals& s) {
  RouteDecision d;
  d.signals = slim::to_json(s);
  auto remote = [&](std::string why) { d.remote = true; d.reason = std::move(why); return d; };
  if (s.wants_tools) return remote("the request uses tools, which the local model does not support");
  if (s.wants_images) return remote("the request has images, which the local model cannot read");
  if (s.n_ctx > 0 && s.n_tokens > t.max_context_share * s.n_ctx)
    return remote(format("the prompt is %d tokens, over %.0f%% of the local context (%d)", s.n_tokens,
                         t.max_context_share * 100, s.n_ctx));
  if (s.classifier_p >= 0) {
    if (s.classifier_p > t.classifier_threshold)
      return remote(format("the classifier gives P(remote) %.2f, above %.2f", s.classifier_p, t.classifier_threshold));
    d.reason = format("the classifier gives P(remote) %.2f, at most %.2f", s.classifier_p, t.classifier_threshold);
    return d;
  }
  if (s.nll_mean > t.max_prompt_nll)
    return remote(format("the prompt's perplexity under the local model is %.1f (%.2f nats/token), above %.2f",
                         std::exp(s.nll_mean), s.nll_mean, t.max_prompt_nll));
  d.reason = format("the local model reads the prompt easily (%.2f nats/token, at most %.2f)", s.nll_mean,
                    t.max_prompt_nll);
  return d;
}

RouteDecision decide_draft(const RouteThresholds& t, const PromptSignals& p, const DraftSignals& s) {
  RouteDecision d;
  d.signals = slim::to_json(p);
  d.signals["draft"] = slim::to_json(s);
  auto remote = [&](std::string why) { d.remote = true; d.reason = std::move(why); return d; };
  if (s.n_tokens == 0) { d.reason = "the local draft is empty"; return d; }
  if (s.logprob_mean < t.min_draft_logprob)
    return remote(format("the local draft is unsure: mean token log-probability %.2f, below %.2f", s.logprob_mean,
                         t.min_draft_logprob));
  if (s.logprob_p10 < t.min_draft_p10)
    return remote(format("the local draft has very unsure tokens: 10th percentile log-probability %.2f, below %.2f",
                         s.logprob_p10, t.min_draft_p10));
  if (s.repetition > t.max_draft_repetition)
    return remote(format("the local draft repeats itself: %.0f%% of its 4-grams, above %.0f%%", s.repetition * 100,
                         t.max_draft_repetition * 100));
  d.reason = format("the local draft is confident (mean log-probability %.2f)", s.logprob_mean);
  return d;
}

privacy::Rules privacy_rules(const PrivacyConfig& c) {
  privacy::Rules r;
  r.disabled = c.disabled;
  for (const auto& x : c.custom) r.custom.emplace_back(x.name, x.pattern);
  return r;
}

std::string forbid_reason(const PrivacyConfig& c, const std::vector<privacy::Finding>& findings, const std::string& text) {
  for (const auto& m : c.markers)
    if (!m.empty() && text.find(m) != std::string::npos) return "the prompt is marked " + m;
  for (const auto& f : findings)
    if (std::find(c.forbid.begin(), c.forbid.end(), f.category) != c.forbid.end())
      return "the prompt contains " + f.category + " data, which the privacy rules keep on this machine";
  return "";
}

Result<std::shared_ptr<Router>> Router::create(const RouteConfig& c) {
  auto r = std::make_shared<Router>();
  r->config = c;
  if (!c.route.classifier.empty()) {
    std::filesystem::path p = c.route.classifier;
    if (p.is_relative() && !c.path.empty()) p = std::filesystem::path(c.path).parent_path() / p;
    auto cl = load_classifier(p.string());
    if (!cl) return cl.status();
    r->classifier = std::make_shared<const RouteClassifier>(std::move(*cl));
  }
  auto det = privacy::Detector::create(privacy_rules(c.privacy));
  if (!det) return det.status();
  r->detector = *det;
  return r;
}

void Router::classify(const std::string& text, PromptSignals& s) const {
  if (classifier) s.classifier_p = classifier->p_remote(text, s);
}

const RemoteEndpoint* Router::remote(const std::string& name) const {
  for (const auto& e : config.remotes)
    if (e.name == name) return &e;
  return nullptr;
}

Result<PromptSignals> engine_prompt_signals(Engine& e, const Router& r, const std::string& text) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> tokens = routing_tokens(e.tokenizer(), text);
  if ((int)tokens.size() > e.n_ctx()) {
    // Too long to score: the length alone decides.
    PromptSignals s;
    s.n_tokens = (int)tokens.size();
    s.n_ctx = e.n_ctx();
    return s;
  }
  auto nll = prompt_nll(e, 0, tokens);
  if (!nll) return nll.status();
  PromptSignals s = prompt_signals(e.tokenizer(), tokens, *nll, e.n_ctx(), text.size());
  r.classify(text, s);
  s.ms = elapsed_ms(t0);
  return s;
}

Calibration calibrate(const std::vector<LabelledPrompt>& rows, double target_local, const RouteThresholds& base,
                      const std::vector<double>* p_remote) {
  Calibration c;
  c.thresholds = base;
  c.n = (int)rows.size();
  c.score = p_remote ? "classifier" : "nll_mean";
  std::vector<double> score(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) score[i] = p_remote ? (*p_remote)[i] : rows[i].signals.nll_mean;
  // Candidate thresholds: midpoints between consecutive distinct scores (and the ends).
  std::vector<double> sorted = score;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> cand;
  if (!sorted.empty()) cand.push_back(sorted.front() - 1e-6);
  for (size_t i = 0; i + 1 < sorted.size(); ++i)
    if (sorted[i + 1] > sorted[i]) cand.push_back((sorted[i] + sorted[i + 1]) / 2);
  if (!sorted.empty()) cand.push_back(sorted.back() + 1e-6);
  int n_local = 0;
  for (const auto& r : rows) n_local += !r.remote;
  c.n_local = n_local;
  double best_acc = -1, best_thr = cand.empty() ? 0 : cand.back();
  bool met = false;
  for (double thr : cand) {
    int correct = 0, local_kept = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const bool remote = score[i] > thr;
      correct += remote == rows[i].remote;
      local_kept += !rows[i].remote && !remote;
    }
    const bool ok = n_local == 0 || (double)local_kept / n_local >= target_local - 1e-9;
    const double acc = (double)correct / std::max<size_t>(rows.size(), 1);
    // A threshold meeting the target beats any that does not; then accuracy.
    if ((ok && !met) || (ok == met && acc > best_acc)) {
      met = met || ok;
      best_acc = acc;
      best_thr = thr;
    }
  }
  if (p_remote) c.thresholds.classifier_threshold = std::clamp(best_thr, 0.0, 1.0);
  else c.thresholds.max_prompt_nll = best_thr;
  int correct = 0, local = 0, kept = 0, sent = 0, n_remote = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const bool remote = score[i] > best_thr;
    correct += remote == rows[i].remote;
    local += !remote;
    kept += !rows[i].remote && !remote;
    sent += rows[i].remote && remote;
    n_remote += rows[i].remote;
  }
  c.accuracy = (double)correct / std::max<size_t>(rows.size(), 1);
  c.local_fraction = (double)local / std::max<size_t>(rows.size(), 1);
  c.local_kept = n_local ? (double)kept / n_local : 1;
  c.remote_sent = n_remote ? (double)sent / n_remote : 1;
  return c;
}

}  // namespace slim
