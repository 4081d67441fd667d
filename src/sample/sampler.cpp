// Sampler stages and the chain.
#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <unordered_map>

namespace slim {

void Candidates::set_logits(const float* logits, int n_vocab) {
  items.resize(n_vocab);
  for (int i = 0; i < n_vocab; ++i) items[i] = {i, logits[i], 0.0f};
  sorted = false;
  selected = -1;
}

void Candidates::sort_desc() {
  if (sorted) return;
  // Ties keep the lower id first, so greedy picks the lowest id like the reference.
  std::stable_sort(items.begin(), items.end(), [](const TokenCandidate& a, const TokenCandidate& b) { return a.logit > b.logit; });
  sorted = true;
}

void Candidates::softmax() {
  sort_desc();
  if (items.empty()) return;
  float mx = items[0].logit;
  double sum = 0;
  for (auto& c : items) { c.p = std::exp(c.logit - mx); sum += c.p; }
  for (auto& c : items) c.p = (float)(c.p / sum);
}

namespace {

class Penalties : public SamplerStage {
 public:
  Penalties(int last_n, float repeat, float freq, float presence)
      : last_n_(last_n), repeat_(repeat), freq_(freq), presence_(presence) {}
  const char* name() const override { return "penalties"; }
  void apply(Candidates& c) override {
    if (history_.empty() || (repeat_ == 1.0f && freq_ == 0.0f && presence_ == 0.0f)) return;
    for (auto& t : c.items) {
      auto it = counts_.find(t.id);
      if (it == counts_.end()) continue;
      // Repetition penalty as in CTRL: shrink positive logits, grow negative ones.
      t.logit = t.logit > 0 ? t.logit / repeat_ : t.logit * repeat_;
      t.logit -= (float)it->second * freq_ + presence_;
    }
    c.sorted = false;
  }
  void accept(int32_t tok) override {
    if (last_n_ == 0) return;
    history_.push_back(tok);
    ++counts_[tok];
    if (last_n_ > 0 && (int)history_.size() > last_n_) {
      int32_t old = history_.front();
      history_.pop_front();
      if (--counts_[old] == 0) counts_.erase(old);
    }
  }
  void reset() override { history_.clear(); counts_.clear(); }

 private:
  int last_n_;
  float repeat_, freq_, presence_;
  std::deque<int32_t> history_;
  std::unordered_map<int32_t, int> counts_;
};

class TopK : public SamplerStage {
 public:
  explicit TopK(int k) : k_(k) {}
  const char* name() const override { return "top_k"; }
  void apply(Candidates& c) override {
    if (k_ <= 0 || (size_t)k_ >= c.items.size()) return;
    if (!c.sorted) {
      std::partial_sort(c.items.begin(), c.items.begin() + k_, c.items.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
      });
      c.sorted = true;
    }
    c.items.resize(k_);
  }

 private:
  int k_;
};

class TopP : public SamplerStage {
 public:
  explicit TopP(float p) : p_(p) {}
  const char* name() const override { return "top_p"; }
  void apply(Candidates& c) override {
    if (p_ >= 1.0f || c.items.empty()) return;
    c.softmax();
    double cum = 0;
    size_t keep = c.items.size();
    for (size_t i = 0; i < c.items.size(); ++i) {
      cum += c.items[i].p;
      if (cum >= p_) { keep = i + 1; break; }
    }
    c.items.resize(std::max<size_t>(keep, 1));
  }

 private:
  float p_;
};

class MinP : public SamplerStage {
 public:
  explicit MinP(float p) : p_(p) {}
  const char* name() const override { return "min_p"; }
  void apply(Candidates& c) override {
    if (p_ <= 0.0f || c.items.empty()) return;
    c.sort_desc();
    // p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p)
    const float threshold = c.items[0].logit + std::log(p_);
    size_t keep = 1;
    while (keep < c.items.size() && c.items[keep].logit >= threshold) ++keep;
    c.items.resize(keep);
  }

 private:
  float p_;
};

class Temperature : public SamplerStage {
 public:
  explicit Temperature(float t) : t_(t) {}
  const char* name() const override { return "temperature"; }
  void apply(Candidates& c) override {
    if (t_ <= 0.0f) return;
    for (auto& x : c.items) x.logit /= t_;
  }

 private:
  float t_;
};

class Greedy : public SamplerStage {
 public:
  const char* name() const override { return "greedy"; }
  void apply(Candidates& c) override {
    if (c.items.empty()) return;
    size_t best = 0;
    for (size_t i = 1; i < c.items.size(); ++i) {
      const auto &a = c.items[i], &b = c.items[best];
      if (a.logit > b.logit || (a.logit == b.logit && a.id < b.id)) best = i;
    }
    c.selected = c.items[best].id;
  }
};

class Draw : public SamplerStage {
 public:
  explicit Draw(uint64_t seed) : seed_(seed), rng_(seed) {}
  const char* name() const override { return "draw"; }
  void apply(Candidates& c) override {
    if (c.items.empty()) return;
    c.softmax();
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double r = u(rng_), cum = 0;
    for (auto& x : c.items) {
      cum += x.p;
      if (r < cum) { c.selected = x.id; return; }
    }
    c.selected = c.items.back().id;
  }
  void reset() override { rng_.seed(seed_); }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<SamplerStage> make_penalties(int last_n, float repeat, float frequency, float presence) {
  return std::make_unique<Penalties>(last_n, repeat, frequency, presence);
}
std::unique_ptr<SamplerStage> make_top_k(int k) { return std::make_unique<TopK>(k); }
std::unique_ptr<SamplerStage> make_top_p(float p) { return std::make_unique<TopP>(p); }
std::unique_ptr<SamplerStage> make_min_p(float p) { return std::make_unique<MinP>(p); }
std::unique_ptr<SamplerStage> make_temperature(float t) { return std::make_unique<Temperature>(t); }
std::unique_ptr<SamplerStage> make_greedy() { return std::make_unique<Greedy>(); }
std::unique_ptr<SamplerStage> make_draw(uint64_t seed) { return std::make_unique<Draw>(seed); }

Sampler::Sampler(const SamplerParams& p) {
  seed_ = p.seed == SamplerParams::kRandomSeed ? std::random_device{}() : p.seed;
  add(make_penalties(p.penalty_last_n, p.repeat_penalty, p.frequency_penalty, p.presence_penalty));
  if (p.temperature <= 0.0f) {
    add(make_greedy());
    return;
  }
  add(make_top_k(p.top_k));
  add(make_top_p(p.top_p));
  add(make_min_p(p.min_p));
  add(make_temperature(p.temperature));
  add(make_draw(seed_));
}

int32_t Sampler::sample(const float* logits, int n_vocab) {
  cand_.set_logits(logits, n_vocab);
  for (auto& s : stages_) s->apply(cand_);
  if (cand_.selected < 0) {  // a chain without a final choice: take the best
    Greedy g;
    g.apply(cand_);
  }
  return cand_.selected;
}

void Sampler::accept(int32_t token) {
  for (auto& s : stages_) s->accept(token);
}

void Sampler::reset() {
  for (auto& s : stages_) s->reset();
}

}  // namespace slim
