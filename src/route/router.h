// The routing decision: the signals of a request against the configured
// thresholds → answer locally or escalate, with the reason in words; the
// privacy rules that forbid escalation outright; and the calibration that
// picks thresholds from labelled prompts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "privacy/redact.h"
#include "route/classifier.h"
#include "route/config.h"
#include "route/signals.h"

namespace slim {

class Engine;

struct RouteDecision {
  bool remote = false;
  std::string reason;
  nlohmann::json signals = nlohmann::json::object();
  nlohmann::json to_json() const;  // {"decision", "reason", "signals"}
};

// Before generating: hard limits first (features the local model lacks, a
// prompt that does not fit), then the classifier when one is trained, else
// the prompt's perplexity.
RouteDecision decide_prompt(const RouteThresholds& t, const PromptSignals& s);
// After a local draft (cascade mode): escalate when the draft was unsure or
// degenerate.
RouteDecision decide_draft(const RouteThresholds& t, const PromptSignals& p, const DraftSignals& d);

// Why the privacy rules forbid this text to leave ("" : they do not): a
// marker such as #private, or a finding of a forbidden category.
std::string forbid_reason(const PrivacyConfig& c, const std::vector<privacy::Finding>& findings, const std::string& text);
privacy::Rules privacy_rules(const PrivacyConfig& c);

// Everything the router needs that is loaded once: thresholds, the
// classifier (if any) and the detector of the privacy guard.
struct Router {
  RouteConfig config;
  std::shared_ptr<const RouteClassifier> classifier;
  std::shared_ptr<const privacy::Detector> detector;
  static Result<std::shared_ptr<Router>> create(const RouteConfig& c);
  // Fills s.classifier_p when a classifier is loaded.
  void classify(const std::string& text, PromptSignals& s) const;
  const RemoteEndpoint* remote(const std::string& name) const;
};

// Signals of one prompt with a loaded engine (the CLI's path; the server
// computes the same through its scheduler).
Result<PromptSignals> engine_prompt_signals(Engine& e, const Router& r, const std::string& text);

struct Calibration {
  RouteThresholds thresholds;
  int n = 0, n_local = 0;
  double accuracy = 0, local_fraction = 0, local_kept = 0, remote_sent = 0;
  std::string score;  // "nll_mean" or "classifier"
};
// Picks the threshold on the score in use (the classifier's cross-validated
// P(remote) when `p_remote` is given, else the prompt NLL): among the
// thresholds that keep at least `target_local` of the local-labelled prompts
// local, the one with the best accuracy.
Calibration calibrate(const std::vector<LabelledPrompt>& rows, double target_local, const RouteThresholds& base,
                      const std::vector<double>* p_remote = nullptr);

}  // namespace slim
