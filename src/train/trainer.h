// The training loop shared by `slim train` (cross-entropy) and `slim distill`
// (cross-entropy plus KL to a teacher whose logits slim's inference engine
// computes on the fly, top-k truncated, once per batch):
//
//   for each step: for each of grad_accum micro-batches: [teacher top-k],
//   forward + backward into one gradient; clip its global norm; AdamW at the
//   scheduled learning rate; every eval_every steps the held-out loss;
//   every save_every steps a checkpoint.
//
// For a fixed seed and thread count a run is deterministic (the batches are a
// function of seed and step, every reduction has a fixed order), and a run
// resumed from a checkpoint continues exactly as the uninterrupted one.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/data.h"
#include "train/forward.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace slim {
class Engine;
class ThreadPool;
}

namespace slim::train {

struct TrainOptions {
  int64_t steps = 1000;
  int batch = 8;               // sequences a micro-batch
  int grad_accum = 1;          // micro-batches a step
  float lr = 1e-3f;
  float min_lr_ratio = 0.1f;   // the cosine ends at lr * this
  int64_t warmup = -1;         // steps; -1: 5% of steps (at least 1)
  AdamParams adam;
  float clip = 1.0f;           // global gradient norm; 0: off
  uint64_t seed = 1;
  int64_t eval_every = 100;    // 0: only at the end
  int eval_seqs = 0;           // held-out sequences an evaluation uses; 0: all
  int64_t save_every = 0;      // 0: no checkpoints
  std::string checkpoint;      // where they go
  LossConfig loss;             // distill, temperature, alpha
  int teacher_top_k = 64;      // 0: the whole vocabulary
  int64_t warmup_steps() const { return warmup >= 0 ? warmup : std::max<int64_t>(1, steps / 20); }
};

// The settings a checkpoint records; resuming with different ones is refused.
std::string options_json(const TrainOptions& o, const Shape& s, int n_ctx);

struct StepLog {
  int64_t step = 0;            // steps done (1-based after the update)
  int64_t steps = 0;
  double loss = 0, ce = 0, kl = 0;  // means over the step's tokens
  double lr = 0, grad_norm = 0;
  double eval_ce = NAN;        // held-out mean cross-entropy when evaluated this step
  double tokens_per_s = 0;     // training tokens a second, averaged over the run so far
  double elapsed_s = 0;
  bool saved = false;          // a checkpoint was written after this step
};
using StepCallback = std::function<void(const StepLog&)>;

struct TrainState {
  std::vector<float> mom, vel;  // AdamW moments
  int64_t step = 0;
};

struct TrainResult {
  std::vector<StepLog> log;
  double final_eval_ce = NAN;
  double seconds = 0;
  double tokens_per_s = 0;
};

// Mean cross-entropy of the model over sequences (no gradient).
double evaluate(const TrainModel& m, const std::vector<std::vector<int32_t>>& seqs, int batch, int max_seqs,
                ThreadPool* pool);

// Teacher distributions for a batch: runs each sequence's inputs through the
// teacher engine (its context must hold n_tok) and keeps the top k at the temperature.
Status teacher_targets(Engine& teacher, TrainBatch& b, float temperature, int top_k);

// Trains m in place, from `state` (empty: a fresh optimizer; from a checkpoint:
// continue). A teacher is required when o.loss.distill.
Result<TrainResult> run_training(TrainModel& m, TrainState& state, const Dataset& data, const TrainOptions& o,
                                 Engine* teacher, ThreadPool* pool, const StepCallback& on_step = nullptr);

}  // namespace slim::train
