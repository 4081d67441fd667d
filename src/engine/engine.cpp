// Engine loading, prefix reuse, batched evaluation and the generation loop.
#include "engine/engine.h"

#include <algorithm>
#include <cmath>

#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "tokenizer/tokenizer.h"

namespace slim {

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::load(const std::string& path, const EngineParams& p) {
  auto t0 = std::chrono::steady_clock::now();
  auto file = GgufFile::open(path);
  if (!file) return Status::error(file.error());
  auto model = load_model(*file);
  if (!model) return Status::error(model.error());
  auto tok = Tokenizer::from_gguf(**file);
  if (!tok) return Status::error(path + ": " + tok.error());
  std::unique_ptr<Engine> e(new Engine());
  e->params_ = p;
  e->model_ = std::move(model.value());
  e->tokenizer_ = std::move(tok.value());
  if (e->params_.n_ctx <= 0) e->params_.n_ctx = e->model_->hp.n_ctx_train;
  if (e->params_.n_seq <= 0) return Status::error("the number of sequences must be positive");
  if (e->params_.n_batch <= 0) e->params_.n_batch = 512;
  if (auto st = check_cache_type(e->model_->hp, p.cache_type); !st) return Status::error(path + ": " + st.message());
  e->pool_ = std::make_unique<ThreadPool>(p.n_threads);
  e->state_.pool = e->pool_.get();
  repack_weights(*e->model_, *e->pool_, kernels());
  e->state_.kv = make_kv_cache(e->model_->hp, e->params_.n_ctx, e->params_.n_seq, p.cache_type);
  e->seq_tokens_.assign(e->params_.n_seq, {});
  e->load_ms_ = elapsed_ms(t0);
  return e;
}

size_t Engine::kv_bytes_per_token() const {
  return kv_cache_bytes(model_->hp, 1, 1, state_.kv.type);
}

void Engine::clear(int seq) {
  seq_tokens_[seq].clear();
  state_.kv.clear_seq(seq);
}

int Engine::reuse_prefix(int seq, const std::vector<int32_t>& tokens) {
  auto& have = seq_tokens_[seq];
  size_t n = 0;
  while (n < have.size() && n < tokens.size() && have[n] == tokens[n]) ++n;
  if (n == tokens.size() && n > 0) --n;  // the last prompt token must be evaluated for its logits
  have.resize(n);
  state_.kv.truncate_seq(seq, (int)n);
  return (int)n;
}

Status Engine::eval(int seq, const int32_t* tokens, int n, std::vector<float>& last_logits) {
  if (seq < 0 || seq >= params_.n_seq) return Status::error(format("sequence %d out of range", seq));
  auto& have = seq_tokens_[seq];
  if ((int)have.size() + n > params_.n_ctx)
    return Status::error(format("the prompt needs %d tokens but the context holds %d (use -c to enlarge it)",
                                (int)have.size() + n, params_.n_ctx));
  Batch b;
  for (int i = 0; i < n; i += params_.n_batch) {
    const int m = std::min(params_.n_batch, n - i);
    b.clear();
    for (int j = 0; j < m; ++j) b.add(tokens[i + j], (int)have.size() + j, seq, i + j == n - 1);
    last_logits.clear();
    if (auto st = forward(*model_, state_, b, last_logits); !st) return st;
    have.insert(have.end(), tokens + i, tokens + i + m);
  }
  return Status();
}

Status Engine::decode(const Batch& b, std::vector<float>& logits, std::vector<float>* hidden) {
  state_.hidden_out = hidden;
  Status st = forward(*model_, state_, b, logits);
  state_.hidden_out = nullptr;
  if (!st) return st;
  for (int i = 0; i < b.size(); ++i) seq_tokens_[b.seq[i]].push_back(b.token[i]);
  return Status();
}

Result<std::vector<float>> Engine::embed(int seq, const std::vector<int32_t>& tokens) {
  if (seq < 0 || seq >= params_.n_seq) return Status::error(format("sequence %d out of range", seq));
  if (tokens.empty()) return Status::error("nothing to embed");
  if ((int)tokens.size() > params_.n_ctx)
    return Status::error(format("the input is %d tokens but the context holds %d", (int)tokens.size(), params_.n_ctx));
  const int n = model_->hp.n_embd;
  clear(seq);
  std::vector<float> pooled(n, 0.0f), logits, hidden;
  Batch b;
  for (size_t i = 0; i < tokens.size(); i += params_.n_batch) {
    b.clear();
    size_t end = std::min(tokens.size(), i + (size_t)params_.n_batch);
    for (size_t j = i; j < end; ++j) b.add(tokens[j], (int)j, seq, true);
    hidden.clear();
    logits.clear();
    if (auto st = decode(b, logits, &hidden); !st) { clear(seq); return st; }
    for (size_t r = 0; r < end - i; ++r)
      for (int k = 0; k < n; ++k) pooled[k] += hidden[r * n + k];
  }
  clear(seq);
  double norm = 0;
  for (float& x : pooled) { x /= (float)tokens.size(); norm += (double)x * x; }
  const float inv = norm > 0 ? (float)(1.0 / std::sqrt(norm)) : 0.0f;
  for (float& x : pooled) x *= inv;
  return pooled;
}

size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t* hold) {
  size_t best = std::string::npos;
  *hold = 0;
  for (const auto& s : stops) {
    if (s.empty()) continue;
    size_t p = text.find(s);
    if (p != std::string::npos) best = std::min(best, p);
    for (size_t k = std::min(s.size() - 1, text.size()); k > 0; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) { *hold = std::max(*hold, k); break; }
  }
  return best;
}

Result<GenerateResult> generate(Engine& e, int seq, const std::vector<int32_t>& prompt, const GenerateParams& p,
                                const TextCallback& on_text) {
  GenerateResult r;
  r.prompt_tokens = prompt;
  r.timings.load_ms = e.load_ms();
  if (prompt.empty()) return Status::error("empty prompt");
  if ((int)prompt.size() >= e.n_ctx())
    return Status::error(format("the prompt is %d tokens but the context holds %d (use -c to enlarge it)",
                                (int)prompt.size(), e.n_ctx()));
  const Tokenizer& tok = e.tokenizer();
  const int n_vocab = e.model().hp.n_vocab;

  auto t0 = std::chrono::steady_clock::now();
  int kept = e.reuse_prefix(seq, prompt);
  std::vector<float> logits;
  if (auto st = e.eval(seq, prompt.data() + kept, (int)prompt.size() - kept, logits); !st) return st;
  r.timings.prefill_ms = elapsed_ms(t0);
  r.timings.n_prefill = (int)prompt.size() - kept;

  Sampler sampler(p.sampling);
  for (int32_t t : prompt) sampler.accept(t);
  StreamDecoder decoder(tok);
  std::string pending;  // decoded text not yet emitted (may be the start of a stop string)
  // Text generated right after a lone BOS starts at the beginning of the text:
  // drop the space SentencePiece vocabularies put before the first word, as
  // detokenize does.
  bool strip_space = prompt.size() == 1 && prompt[0] == tok.bos() && tok.model() == "llama";
  auto emit = [&](const std::string& s) -> bool {
    r.text += s;
    return !on_text || s.empty() || on_text(s);
  };

  auto t1 = std::chrono::steady_clock::now();
  r.stop_reason = "length";
  for (int i = 0; p.n_predict < 0 || i < p.n_predict; ++i) {
    int32_t id = sampler.sample(logits.data(), n_vocab);
    sampler.accept(id);
    r.tokens.push_back(id);
    if (!p.ignore_eos && tok.is_eog(id)) { r.stop_reason = "eog"; break; }
    pending += decoder.push(id);
    if (strip_space && !pending.empty()) {
      if (pending[0] == ' ') pending.erase(0, 1);
      strip_space = false;
    }
    size_t hold = 0;
    size_t at = find_stop(pending, p.stop, &hold);
    if (at != std::string::npos) {
      emit(pending.substr(0, at));
      pending.clear();
      r.stop_reason = "stop";
      break;
    }
    if (pending.size() > hold) {
      if (!emit(pending.substr(0, pending.size() - hold))) { r.stop_reason = "cancelled"; pending.clear(); break; }
      pending.erase(0, pending.size() - hold);
    }
    if ((int)e.seq_tokens(seq).size() >= e.n_ctx()) { r.stop_reason = "context"; break; }
    if (p.n_predict >= 0 && i + 1 >= p.n_predict) break;
    if (auto st = e.eval(seq, &id, 1, logits); !st) return st;
    ++r.timings.n_decode;
  }
  if (r.stop_reason != "stop" && r.stop_reason != "cancelled") {
    pending += decoder.flush();
    emit(pending);
  }
  r.timings.decode_ms = elapsed_ms(t1);
  return r;
}

}  // namespace slim
