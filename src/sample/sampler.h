// Token sampling as a chain of stages, each with one interface (apply to the
// candidates, accept the chosen token, reset). The default chain follows the
// usual order: penalties → top-k → top-p → min-p → temperature → draw.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace slim {

struct TokenCandidate {
  int32_t id;
  float logit;
  float p;  // filled by softmax()
};

struct Candidates {
  std::vector<TokenCandidate> items;
  bool sorted = false;  // by logit, descending
  int32_t selected = -1;

  void set_logits(const float* logits, int n_vocab);
  void sort_desc();
  void softmax();  // sorts, then fills p
};

class SamplerStage {
 public:
  virtual ~SamplerStage() = default;
  virtual const char* name() const = 0;
  virtual void apply(Candidates& c) = 0;
  virtual void accept(int32_t) {}
  virtual void reset() {}
};

struct SamplerParams {
  float temperature = 0.8f;   // <= 0: greedy
  int top_k = 40;             // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int penalty_last_n = 64;
  uint64_t seed = 0xFFFFFFFFu;  // default: random seed
  static constexpr uint64_t kRandomSeed = 0xFFFFFFFFu;
};

// Stage factories (each tested on its own).
std::unique_ptr<SamplerStage> make_penalties(int last_n, float repeat, float frequency, float presence);
std::unique_ptr<SamplerStage> make_top_k(int k);
std::unique_ptr<SamplerStage> make_top_p(float p);
std::unique_ptr<SamplerStage> make_min_p(float p);
std::unique_ptr<SamplerStage> make_temperature(float t);
std::unique_ptr<SamplerStage> make_greedy();
std::unique_ptr<SamplerStage> make_draw(uint64_t seed);  // samples from the softmax

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  Sampler() : Sampler(SamplerParams{}) {}
  void add(std::unique_ptr<SamplerStage> s) { stages_.push_back(std::move(s)); }
  // Chooses a token from the logits of one position (does not accept it).
  int32_t sample(const float* logits, int n_vocab);
  void accept(int32_t token);
  void reset();
  const Candidates& last() const { return cand_; }
  uint64_t seed() const { return seed_; }

 private:
  std::vector<std::unique_ptr<SamplerStage>> stages_;
  Candidates cand_;
  uint64_t seed_ = 0;
};

}  // namespace slim
