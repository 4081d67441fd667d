// An optional small trained router: logistic regression over hashed
// character n-grams of the prompt (scripts, notation and word shapes the
// local model was never trained on) and the local model's own signals
// (perplexity, byte fallback, length). Trained by `slim route train` on
// labelled prompts and stored as JSON beside the config.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "route/signals.h"

namespace slim {

struct LabelledPrompt {
  std::string prompt;
  bool remote = false;
  PromptSignals signals;  // computed with the local model
};

// Rows {"prompt": ..., "label": "local"|"remote"}; a bad line is an error naming it.
Result<std::vector<LabelledPrompt>> read_labelled_prompts(const std::string& path);

struct RouteClassifier {
  int n_buckets = 1 << 12;           // hashed n-gram features
  std::vector<double> dense_mean, dense_std;  // standardisation of the model signals
  std::vector<double> w_dense, w_hash;
  double bias = 0;

  double p_remote(const std::string& prompt, const PromptSignals& s) const;
};

struct TrainOptions {
  double l2 = 1e-2;
  int epochs = 400;
  double lr = 0.5;
};
RouteClassifier train_classifier(const std::vector<LabelledPrompt>& rows, const TrainOptions& o = {});
// Out-of-fold P(remote) of each row (k-fold cross-validation), for honest thresholds.
std::vector<double> cross_validated_p(const std::vector<LabelledPrompt>& rows, int folds, const TrainOptions& o = {});

Status save_classifier(const std::string& path, const RouteClassifier& c);
Result<RouteClassifier> load_classifier(const std::string& path);

}  // namespace slim
