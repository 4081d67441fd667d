// Continuous batching over the slots of one engine.
#include "server/scheduler.h"

#include <algorithm>
#include <cmath>

#include "route/signals.h"
#include "tokenizer/tokenizer.h"

namespace slim {

bool GenRequest::next(GenChunk& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu);
  cv.wait_for(lk, timeout, [&] { return done || !chunks.empty(); });
  if (!chunks.empty()) {
    out = std::move(chunks.front());
    chunks.pop_front();
    return true;
  }
  out = GenChunk{};
  return !done;
}

GenChunk GenRequest::wait_all() {
  GenChunk all, c;
  while (next(c, std::chrono::milliseconds(1000))) {
    all.text += c.text;
    for (auto& l : c.logprobs) all.logprobs.push_back(std::move(l));
  }
  return all;
}

struct Scheduler::Slot {
  int id = 0;
  std::shared_ptr<GenRequest> req;
  bool prefilling = false;
  size_t next_prompt = 0;  // next prompt token to prefill
  int32_t last = -1;       // sampled token still to be decoded
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<JsonConstraint> json;
  std::unique_ptr<StreamDecoder> decoder;
  std::string pending;     // decoded text held back (maybe the start of a stop string)
  bool strip_space = false;
  std::chrono::steady_clock::time_point t_start, t_first;
};

namespace {

void push_chunk(GenRequest& r, GenChunk c) {
  if (c.text.empty() && c.logprobs.empty()) return;
  {
    std::lock_guard<std::mutex> lk(r.mu);
    r.chunks.push_back(std::move(c));
  }
  r.cv.notify_all();
}

}  // namespace

Scheduler::Scheduler(std::unique_ptr<Engine> engine, const SchedulerParams& p)
    : engine_(std::move(engine)), params_(p) {
  n_ctx_ = engine_->n_ctx();
  n_slots_ = engine_->params().n_seq;
  const Tokenizer& tok = engine_->tokenizer();
  auto pieces = std::make_shared<std::vector<std::string>>(tok.n_vocab());
  for (int i = 0; i < tok.n_vocab(); ++i) {
    (*pieces)[i] = tok.token_to_piece(i, /*render_special=*/false);
    if (tok.is_eog(i)) eog_ids_.push_back(i);
  }
  pieces_ = std::move(pieces);
  stats_.n_slots = n_slots_;
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Scheduler::submit(const std::shared_ptr<GenRequest>& r) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || (int)queue_.size() >= params_.max_queue) return false;
    r->submitted = std::chrono::steady_clock::now();
    queue_.push_back(r);
    ++stats_.requests;
  }
  cv_.notify_all();
  return true;
}

void Scheduler::cancel(const std::shared_ptr<GenRequest>& r) {
  r->cancelled = true;
  cv_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  SchedulerStats s = stats_;
  s.queue_depth = (int)queue_.size();
  s.slots_busy = busy_;
  return s;
}

bool Scheduler::idle() const {
  std::lock_guard<std::mutex> lk(mu_);
  return queue_.empty() && busy_ == 0;
}

void Scheduler::finish(Slot& s, const std::string& reason, const std::string& error) {
  if (!s.req) return;
  GenRequest& r = *s.req;
  if (reason != "cancelled" && reason != "error") {
    std::string rest = s.pending;
    if (reason != "stop_string" && s.decoder) rest += s.decoder->flush();
    if (!rest.empty()) push_chunk(r, GenChunk{rest, {}});
  }
  {
    // The slot counts as free before the client can see the end.
    std::lock_guard<std::mutex> lk(mu_);
    --busy_;
  }
  {
    std::lock_guard<std::mutex> lk(r.mu);
    r.done = true;
    r.finish_reason = reason == "stop_string" ? "stop" : reason;
    r.error = error;
    auto now = std::chrono::steady_clock::now();
    if (s.t_first.time_since_epoch().count() != 0)
      r.decode_ms = std::chrono::duration<double, std::milli>(now - s.t_first).count();
  }
  r.cv.notify_all();
  s.req.reset();
  s.sampler.reset();
  s.json.reset();
  s.decoder.reset();
  s.pending.clear();
}

void Scheduler::run() {
  std::vector<Slot> slots(n_slots_);
  for (int i = 0; i < n_slots_; ++i) slots[i].id = i;
  while (true) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || busy_ > 0 || !queue_.empty(); });
      if (stop_) break;
    }
    step(slots);
  }
  for (auto& s : slots) finish(s, "cancelled");
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& r : queue_) {
    std::lock_guard<std::mutex> lr(r->mu);
    r->done = true;
    r->finish_reason = "error";
    r->error = "the model was unloaded";
    r->cv.notify_all();
  }
  queue_.clear();
}

void Scheduler::step(std::vector<Slot>& slots) {
  const Tokenizer& tok = engine_->tokenizer();
  const int n_vocab = engine_->model().hp.n_vocab;

  // Cancelled requests leave first, so their slots can be reused now.
  for (auto& s : slots)
    if (s.req && s.req->cancelled) finish(s, "cancelled");

  // Admit queued requests to free slots.
  while (true) {
    std::shared_ptr<GenRequest> r;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (queue_.empty() || busy_ >= n_slots_) break;
      r = queue_.front();
      queue_.pop_front();
      ++busy_;
    }
    // The free slot whose cache shares the longest prefix with the prompt
    // (a multi-turn chat comes back to the slot holding its history); among
    // equals, the one holding the least, so a cached conversation another
    // request may come back to is overwritten last.
    Slot* best = nullptr;
    size_t best_common = 0;
    for (auto& s : slots) {
      if (s.req) continue;
      const auto& have = engine_->seq_tokens(s.id);
      size_t n = 0;
      while (n < have.size() && n < r->prompt.size() && have[n] == r->prompt[n]) ++n;
      if (!best || n > best_common ||
          (n == best_common && have.size() < engine_->seq_tokens(best->id).size())) {
        best = &s;
        best_common = n;
      }
    }
    Slot& s = *best;
    s.req = r;
    s.t_start = std::chrono::steady_clock::now();
    s.t_first = {};
    {
      std::lock_guard<std::mutex> lk(r->mu);
      r->queue_ms = std::chrono::duration<double, std::milli>(s.t_start - r->submitted).count();
    }
    if (r->cancelled) { finish(s, "cancelled"); continue; }
    if (r->embed) {
      auto e = engine_->embed(s.id, r->prompt);
      if (!e) { finish(s, "error", e.error()); continue; }
      {
        std::lock_guard<std::mutex> lk(r->mu);
        r->embedding = std::move(e.value());
        r->n_prompt = (int)r->prompt.size();
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.prompt_tokens += r->prompt.size();
      }
      finish(s, "stop");
      continue;
    }
    if (r->prompt.empty() || (int)r->prompt.size() >= n_ctx_) {
      finish(s, "error", format("the prompt is %d tokens but the context holds %d", (int)r->prompt.size(), n_ctx_));
      continue;
    }
    // A scored prompt is evaluated whole: every token's prediction is needed.
    if (r->score_prompt) engine_->clear(s.id);
    const int kept = engine_->reuse_prefix(s.id, r->prompt);
    {
      std::lock_guard<std::mutex> lk(r->mu);
      r->n_prompt = (int)r->prompt.size();
      r->n_cached = kept;
    }
    s.next_prompt = kept;
    s.prefilling = true;
    s.sampler = std::make_unique<Sampler>(r->sampling);
    for (int32_t t : r->prompt) s.sampler->accept(t);
    if (r->json) s.json = std::make_unique<JsonConstraint>(r->json, pieces_, eog_ids_);
    s.decoder = std::make_unique<StreamDecoder>(tok);
    s.pending.clear();
    s.strip_space = r->strip_leading_space;
  }

  // One batch: the pending token of each generating slot, then prefill chunks.
  // Each logits row belongs to a slot: a sampling row, or (scored prompts)
  // the prediction of prompt token `next`.
  struct Row {
    Slot* slot;
    int index;
  };
  struct ScoreRow {
    Slot* slot;
    int index;
    size_t next;
  };
  Batch b;
  std::vector<Row> rows;
  std::vector<ScoreRow> score_rows;
  int n_rows = 0;
  int budget = engine_->params().n_batch;
  for (auto& s : slots) {
    if (!s.req || s.prefilling) continue;
    b.add(s.last, (int)engine_->seq_tokens(s.id).size(), s.id, true);
    rows.push_back({&s, n_rows++});
    --budget;
  }
  std::vector<Slot*> prefilled;
  int n_prefill_tokens = 0;
  for (auto& s : slots) {
    if (!s.req || !s.prefilling) continue;
    if (budget <= 0 && b.size() > 0) break;
    const auto& prompt = s.req->prompt;
    const bool score = s.req->score_prompt;
    const int base = (int)engine_->seq_tokens(s.id).size();
    const int n = std::min<int>({(int)(prompt.size() - s.next_prompt), params_.prefill_chunk, std::max(budget, 1)});
    for (int j = 0; j < n; ++j) {
      const size_t k = s.next_prompt + j;
      const bool last = k + 1 == prompt.size();
      const bool scored = score && !last && scored_position(k + 1, prompt.size());
      b.add(prompt[k], base + j, s.id, last || scored);
      if (scored) score_rows.push_back({&s, n_rows++, k + 1});
      else if (last) rows.push_back({&s, n_rows++});
    }
    s.next_prompt += n;
    budget -= n;
    n_prefill_tokens += n;
    prefilled.push_back(&s);
  }
  if (b.size() == 0) return;

  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  Status st = engine_->decode(b, logits);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.busy_ms += ms;
    ++stats_.steps;
  }
  if (!st) {
    for (auto& s : slots) {
      if (!s.req) continue;
      bool in_batch = std::find(b.seq.begin(), b.seq.end(), s.id) != b.seq.end();
      if (!in_batch) continue;
      engine_->clear(s.id);
      finish(s, "error", st.message());
    }
    return;
  }
  for (Slot* s : prefilled) {
    if (s->next_prompt == s->req->prompt.size()) {
      s->prefilling = false;
      std::lock_guard<std::mutex> lk(s->req->mu);
      s->req->prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s->t_start).count();
      s->t_first = std::chrono::steady_clock::now();
    }
  }

  for (const ScoreRow& sr : score_rows) {
    float lp;
    token_uncertainty(logits.data() + sr.index * (size_t)n_vocab, n_vocab, sr.slot->req->prompt[sr.next], &lp, nullptr);
    sr.slot->req->prompt_nll.push_back(-lp);  // read by the client only after done
  }

  uint64_t n_generated = 0;
  std::vector<float> masked;
  for (const Row& row : rows) {
    Slot& s = *row.slot;
    GenRequest& r = *s.req;
    if (r.n_predict == 0) {  // prefill only (the router's scoring pass)
      finish(s, "length");
      continue;
    }
    const float* lg = logits.data() + row.index * (size_t)n_vocab;
    const float* pick_from = lg;
    if (s.json) {
      Candidates c;
      c.set_logits(lg, n_vocab);
      s.json->apply(c);
      masked.assign(n_vocab, -INFINITY);
      for (const auto& t : c.items) masked[t.id] = t.logit;
      pick_from = masked.data();
    }
    const int32_t id = s.sampler->sample(pick_from, n_vocab);
    s.sampler->accept(id);
    if (r.track_uncertainty) {
      float lp, ent;
      token_uncertainty(lg, n_vocab, id, &lp, &ent);
      r.gen_logprob.push_back(lp);
      r.gen_entropy.push_back(ent);
      r.gen_tokens.push_back(id);
    }
    if (s.json) s.json->accept(id);
    ++n_generated;
    GenChunk chunk;
    if (r.n_logprobs >= 0) {
      // Log-softmax of the raw logits.
      float mx = -INFINITY;
      for (int i = 0; i < n_vocab; ++i) mx = std::max(mx, lg[i]);
      double sum = 0;
      for (int i = 0; i < n_vocab; ++i) sum += std::exp((double)lg[i] - mx);
      const float lse = mx + (float)std::log(sum);
      TokenLogprob lp;
      lp.id = id;
      lp.text = tok.token_to_piece(id, false);
      lp.logprob = lg[id] - lse;
      if (r.n_logprobs > 0) {
        std::vector<int32_t> order(n_vocab);
        for (int i = 0; i < n_vocab; ++i) order[i] = i;
        const int k = std::min(r.n_logprobs, n_vocab);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t c) {
          return lg[a] > lg[c] || (lg[a] == lg[c] && a < c);
        });
        for (int i = 0; i < k; ++i) lp.top.emplace_back(tok.token_to_piece(order[i], false), lg[order[i]] - lse);
      }
      chunk.logprobs.push_back(std::move(lp));
    }
    {
      std::lock_guard<std::mutex> lk(r.mu);
      ++r.n_gen;
    }
    if (tok.is_eog(id)) {
      push_chunk(r, std::move(chunk));
      finish(s, "stop");
      continue;
    }
    s.pending += s.decoder->push(id);
    if (s.strip_space && !s.pending.empty()) {
      if (s.pending[0] == ' ') s.pending.erase(0, 1);
      s.strip_space = false;
    }
    size_t hold = 0;
    const size_t at = find_stop(s.pending, r.stop, &hold);
    if (at != std::string::npos) {
      chunk.text = s.pending.substr(0, at);
      s.pending.clear();
      push_chunk(r, std::move(chunk));
      finish(s, "stop_string");
      continue;
    }
    if (s.pending.size() > hold) {
      chunk.text = s.pending.substr(0, s.pending.size() - hold);
      s.pending.erase(0, s.pending.size() - hold);
    }
    push_chunk(r, std::move(chunk));
    const int n_gen = r.n_gen;  // only this thread writes it
    const bool ctx_full = (int)engine_->seq_tokens(s.id).size() + 1 >= n_ctx_;
    if ((r.n_predict >= 0 && n_gen >= r.n_predict) || ctx_full) {
      finish(s, "length");
      continue;
    }
    s.last = id;
  }
  std::lock_guard<std::mutex> lk(mu_);
  stats_.generated_tokens += n_generated;
  stats_.prompt_tokens += (uint64_t)n_prefill_tokens;
}

}  // namespace slim
