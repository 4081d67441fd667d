// The training loop (trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/engine.h"
#include "kernels/threadpool.h"
#include "train/checkpoint.h"

namespace slim::train {

std::string options_json(const TrainOptions& o, const Shape& s, int n_ctx) {
  nlohmann::json j = {{"arch", s.arch},   {"n_embd", s.n_embd}, {"n_layer", s.n_layer},     {"n_head", s.n_head},
                      {"n_head_kv", s.n_head_kv}, {"n_ff", s.n_ff}, {"n_vocab", s.n_vocab}, {"ctx", n_ctx},
                      {"steps", o.steps}, {"batch", o.batch}, {"grad_accum", o.grad_accum}, {"lr", o.lr},
                      {"min_lr_ratio", o.min_lr_ratio}, {"warmup", o.warmup_steps()}, {"beta1", o.adam.beta1},
                      {"beta2", o.adam.beta2}, {"weight_decay", o.adam.weight_decay}, {"clip", o.clip},
                      {"seed", o.seed}, {"distill", o.loss.distill}};
  if (o.loss.distill) {
    j["temperature"] = o.loss.temperature;
    j["alpha"] = o.loss.alpha;
    j["teacher_top_k"] = o.teacher_top_k;
  }
  return j.dump();
}

double evaluate(const TrainModel& m, const std::vector<std::vector<int32_t>>& seqs, int batch, int max_seqs,
                ThreadPool* pool) {
  const size_t n = max_seqs > 0 ? std::min(seqs.size(), (size_t)max_seqs) : seqs.size();
  if (n == 0) return NAN;
  Workspace ws;
  double ce = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < n; i += batch) {
    std::vector<const std::vector<int32_t>*> part;
    for (size_t j = i; j < std::min(n, i + batch); ++j) part.push_back(&seqs[j]);
    const TrainBatch b = make_batch(part, (int)seqs[i].size() - 1);
    const LossSums s = forward_backward(m, b, LossConfig{}, nullptr, 0, ws, pool);
    ce += s.ce, tokens += s.n_tokens;
  }
  return ce / (double)tokens;
}

Status teacher_targets(Engine& teacher, TrainBatch& b, float temperature, int top_k) {
  const int V = teacher.model().hp.n_vocab;
  const int k = top_k <= 0 ? V : std::min(top_k, V);
  b.teacher_k = k;
  b.teacher_ids.resize((size_t)b.rows() * k);
  b.teacher_probs.resize((size_t)b.rows() * k);
  Batch tb;
  std::vector<float> logits;
  for (int s = 0; s < b.n_seq; ++s) {
    teacher.clear(0);
    tb.clear();
    for (int t = 0; t < b.n_tok; ++t) tb.add(b.input[(size_t)s * b.n_tok + t], t, 0, true);
    logits.clear();
    SLIM_RETURN_IF_ERROR(teacher.decode(tb, logits));
    const size_t r0 = (size_t)s * b.n_tok;
    teacher_top_k(logits.data(), b.n_tok, V, temperature, k, b.teacher_ids.data() + r0 * k,
                  b.teacher_probs.data() + r0 * k, nullptr);
  }
  teacher.clear(0);
  return Status();
}

Result<TrainResult> run_training(TrainModel& m, TrainState& state, const Dataset& data, const TrainOptions& o,
                                 Engine* teacher, ThreadPool* pool, const StepCallback& on_step) {
  if (data.train.empty()) return Status::error("no training sequences");
  if (o.batch < 1 || o.grad_accum < 1 || o.steps < 1) return Status::error("steps, batch and grad_accum must be at least 1");
  if (o.loss.distill && !teacher) return Status::error("distillation needs a teacher");
  if (teacher && teacher->n_ctx() < data.n_ctx)
    return Status::error(format("the teacher's context (%d) is shorter than --ctx %d", teacher->n_ctx(), data.n_ctx));
  const size_t np = m.n_params();
  if (state.mom.size() != np) state.mom.assign(np, 0.0f), state.vel.assign(np, 0.0f), state.step = 0;

  std::vector<float> grad(np);
  Workspace ws;
  TrainResult res;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t tokens_per_step = (int64_t)o.batch * o.grad_accum * data.n_ctx;
  int64_t tokens_done = 0;
  double train_s = 0;  // optimizer steps only: evaluations and checkpoints are not training throughput
  const float scale = 1.0f / (float)tokens_per_step;
  for (int64_t step = state.step; step < o.steps; ++step) {
    const auto ts = std::chrono::steady_clock::now();
    std::fill(grad.begin(), grad.end(), 0.0f);
    LossSums sum;
    for (int micro = 0; micro < o.grad_accum; ++micro) {
      const std::vector<int> idx = batch_indices(data.train.size(), o.batch, o.seed, step * o.grad_accum + micro);
      std::vector<const std::vector<int32_t>*> seqs;
      for (int i : idx) seqs.push_back(&data.train[i]);
      TrainBatch b = make_batch(seqs, data.n_ctx);
      if (o.loss.distill) SLIM_RETURN_IF_ERROR(teacher_targets(*teacher, b, o.loss.temperature, o.teacher_top_k));
      const LossSums s = forward_backward(m, b, o.loss, grad.data(), scale, ws, pool);
      sum.loss += s.loss, sum.ce += s.ce, sum.kl += s.kl, sum.n_tokens += s.n_tokens;
    }
    if (!std::isfinite(sum.loss)) return Status::error(format("the loss diverged at step %lld (try a lower --lr)", (long long)step + 1));
    StepLog log;
    log.grad_norm = clip_grad_norm(grad.data(), np, o.clip);
    log.lr = lr_at(step, o.steps, o.warmup_steps(), o.lr, o.min_lr_ratio);
    adamw_step(m, grad.data(), state.mom.data(), state.vel.data(), step + 1, (float)log.lr, o.adam, pool);
    state.step = step + 1;
    tokens_done += tokens_per_step;
    train_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();

    log.step = state.step;
    log.steps = o.steps;
    log.loss = sum.loss / sum.n_tokens, log.ce = sum.ce / sum.n_tokens, log.kl = sum.kl / sum.n_tokens;
    const bool last = state.step == o.steps;
    if (!data.eval.empty() && (last || (o.eval_every > 0 && state.step % o.eval_every == 0)))
      log.eval_ce = evaluate(m, data.eval, o.batch, o.eval_seqs, pool);
    if (!o.checkpoint.empty() && o.save_every > 0 && (state.step % o.save_every == 0 || last)) {
      Checkpoint c{m, state.mom, state.vel, state.step, options_json(o, m.shape, data.n_ctx)};
      SLIM_RETURN_IF_ERROR(save_checkpoint(o.checkpoint, c));
      log.saved = true;
    }
    log.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log.tokens_per_s = train_s > 0 ? tokens_done / train_s : 0;
    if (last) res.final_eval_ce = log.eval_ce;
    res.log.push_back(log);
    if (on_step) on_step(log);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.tokens_per_s = train_s > 0 ? tokens_done / train_s : 0;
  return res;
}

}  // namespace slim::train
