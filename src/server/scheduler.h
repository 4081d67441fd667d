// The scheduler of one loaded model: N slots (engine sequences) sharing the
// model, a bounded queue of requests, and one thread that owns the Engine and
// runs continuous batching — every step decodes the next token of each
// generating slot and a prefill chunk of each slot still reading its prompt,
// in one batched forward pass.
//
// HTTP handler threads submit a GenRequest and read its output through the
// request's own channel (mutex + condition variable); setting `cancelled`
// frees the slot at the next step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat/template.h"
#include "engine/engine.h"
#include "sample/json_constraint.h"

namespace slim {

struct TokenLogprob {
  int32_t id = 0;
  std::string text;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;  // the most likely tokens at that position
};

struct GenChunk {
  std::string text;
  std::vector<TokenLogprob> logprobs;
};

struct GenRequest {
  // Input (set before submit).
  std::vector<int32_t> prompt;
  int n_predict = -1;  // -1: until end of generation or the context is full; 0: prefill only
  SamplerParams sampling;
  std::vector<std::string> stop;
  int n_logprobs = -1;  // -1: none; else the chosen token plus this many alternatives
  std::shared_ptr<const JsonSchema> json;  // constrained decoding when set
  bool strip_leading_space = false;        // drop the SentencePiece space before the first word
  bool embed = false;                      // an embedding of `prompt` instead of generation
  // The router's prompt signal: the NLL of every prompt token after the first
  // (the whole prompt is evaluated, and stays cached for the answer that follows).
  bool score_prompt = false;
  // The router's draft signals: log-probability and entropy of each generated token.
  bool track_uncertainty = false;

  // Output (guarded by mu).
  std::mutex mu;
  std::condition_variable cv;
  std::deque<GenChunk> chunks;
  bool done = false;
  std::string finish_reason;  // "stop", "length", "cancelled", "error"
  std::string error;
  int n_prompt = 0, n_cached = 0, n_gen = 0;
  double prefill_ms = 0, decode_ms = 0, queue_ms = 0;
  std::vector<float> embedding;
  std::vector<float> prompt_nll;                 // with score_prompt
  std::vector<float> gen_logprob, gen_entropy;   // with track_uncertainty
  std::vector<int32_t> gen_tokens;               // with track_uncertainty

  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point submitted;

  // Waits for the next chunk (true) or the end (false, chunks drained).
  // Returns true with an empty chunk on timeout so callers can check the client.
  bool next(GenChunk& out, std::chrono::milliseconds timeout);
  // Waits for the end and concatenates everything.
  GenChunk wait_all();
};

struct SchedulerParams {
  int max_queue = 64;        // waiting requests beyond the busy slots; more → rejected
  int prefill_chunk = 128;   // prompt tokens a slot prefills per step
};

struct SchedulerStats {
  int n_slots = 0, slots_busy = 0, queue_depth = 0;
  uint64_t requests = 0, prompt_tokens = 0, generated_tokens = 0, steps = 0;
  double busy_ms = 0;  // time spent in decode steps
};

class Scheduler {
 public:
  Scheduler(std::unique_ptr<Engine> engine, const SchedulerParams& p);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; false when the queue is full.
  bool submit(const std::shared_ptr<GenRequest>& r);
  void cancel(const std::shared_ptr<GenRequest>& r);
  SchedulerStats stats() const;
  // No request running or waiting.
  bool idle() const;

  // Immutable after load: safe from any thread.
  const Tokenizer& tokenizer() const { return engine_->tokenizer(); }
  const Model& model() const { return engine_->model(); }
  int n_ctx() const { return n_ctx_; }
  int n_slots() const { return n_slots_; }
  // Each token's text (no special rendering), for JSON constraints.
  std::shared_ptr<const std::vector<std::string>> pieces() const { return pieces_; }
  std::vector<int32_t> eog_ids() const { return eog_ids_; }

 private:
  struct Slot;
  void run();
  void step(std::vector<Slot>& slots);
  void finish(Slot& s, const std::string& reason, const std::string& error = "");

  std::unique_ptr<Engine> engine_;
  SchedulerParams params_;
  int n_ctx_ = 0, n_slots_ = 0;
  std::shared_ptr<const std::vector<std::string>> pieces_;
  std::vector<int32_t> eog_ids_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenRequest>> queue_;
  bool stop_ = false;
  int busy_ = 0;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace slim
