// The engine: one loaded model with its tokenizer, KV cache, thread pool and
// per-sequence token history, plus the generation loop
// (prompt → prefill in batches → sample → decode one token at a time → text).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "sample/sampler.h"

namespace slim {

class Tokenizer;

struct EngineParams {
  int n_ctx = 0;          // per sequence; 0: the model's trained context
  int n_seq = 1;          // independent sequences (server slots)
  int n_threads = 0;      // 0: physical cores
  int n_batch = 512;      // prompt tokens per forward call
  CacheType cache_type = CacheType::F16;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> load(const std::string& path, const EngineParams& p);
  ~Engine();

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineParams& params() const { return params_; }
  int n_ctx() const { return params_.n_ctx; }
  double load_ms() const { return load_ms_; }
  // Bytes of keys and values the cache holds for one token, over all layers.
  size_t kv_bytes_per_token() const;

  // Tokens currently held in a sequence's cache.
  const std::vector<int32_t>& seq_tokens(int seq) const { return seq_tokens_[seq]; }
  void clear(int seq);
  // Keeps the longest common prefix of the cache and `tokens` (at least one
  // token is left to evaluate) and returns how many tokens were kept.
  int reuse_prefix(int seq, const std::vector<int32_t>& tokens);

  // Appends tokens to a sequence in batches of n_batch; fills the logits of
  // the last token. Fails cleanly (cache untouched) when they do not fit.
  Status eval(int seq, const int32_t* tokens, int n, std::vector<float>& last_logits);
  // A raw batch over several sequences (the server's continuous batching).
  // With `hidden`, the final normalised hidden state of every token that
  // wants logits is appended to it too.
  Status decode(const Batch& b, std::vector<float>& logits, std::vector<float>* hidden = nullptr);
  // Mean-pooled, L2-normalised embedding of `tokens`, computed in sequence
  // `seq` (which is cleared before and after).
  Result<std::vector<float>> embed(int seq, const std::vector<int32_t>& tokens);

 private:
  Engine() = default;
  EngineParams params_;
  std::shared_ptr<Model> model_;
  std::shared_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  ForwardState state_;
  std::vector<std::vector<int32_t>> seq_tokens_;
  double load_ms_ = 0;
};

struct GenerateParams {
  int n_predict = -1;             // -1: until end of generation or context full
  SamplerParams sampling;
  std::vector<std::string> stop;  // stop strings (not included in the text)
  bool ignore_eos = false;
};

struct Timings {
  double load_ms = 0, prefill_ms = 0, decode_ms = 0;
  int n_prefill = 0, n_decode = 0;
  double prefill_tps() const { return prefill_ms > 0 ? n_prefill * 1000.0 / prefill_ms : 0; }
  double decode_tps() const { return decode_ms > 0 ? n_decode * 1000.0 / decode_ms : 0; }
};

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;   // generated ids (the end-of-generation token included when hit)
  std::string text;
  std::string stop_reason;       // "eog", "length", "stop", "context", "cancelled"
  Timings timings;
};

// Called with each new piece of text (never a partial UTF-8 sequence);
// returning false cancels generation.
using TextCallback = std::function<bool(const std::string& piece)>;

// Generates a continuation of `prompt` in sequence `seq`, reusing the cached
// prefix of that sequence. The prompt must leave room in the context.
Result<GenerateResult> generate(Engine& e, int seq, const std::vector<int32_t>& prompt, const GenerateParams& p,
                                const TextCallback& on_text = nullptr);

double elapsed_ms(std::chrono::steady_clock::time_point since);

// Earliest position in `text` where one of `stops` starts, or npos; `hold`
// gets the length of a tail that could be the start of a stop string (text to
// hold back from a stream until the next token decides).
size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t* hold);

}  // namespace slim
