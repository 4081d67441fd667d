// What the router measures about a request, all computed on this machine:
// before generating, how surprising the prompt is to the local model (its
// per-token negative log-likelihood, from the prefill the answer needs
// anyway), how much of the context it takes and which features it asks for;
// after a local draft (cascade mode), how unsure the model was while writing
// it and whether it degenerated into repetition.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace slim {

class Engine;
class Tokenizer;

struct PromptSignals {
  int n_tokens = 0;            // prompt tokens under the local tokenizer
  int n_ctx = 0;               // the local context
  double nll_mean = 0;         // mean nats/token of the scored tokens (the first has no prediction)
  double nll_p90 = 0;          // 90th percentile: a few very surprising tokens
  double byte_fraction = 0;    // share of byte-fallback tokens (text the vocabulary does not cover)
  double chars_per_token = 0;
  bool wants_tools = false;    // requested features the local model lacks
  bool wants_images = false;
  double classifier_p = -1;    // P(remote) from the trained classifier; -1: none
  double ms = 0;               // time spent computing the signals
};

struct DraftSignals {
  int n_tokens = 0;
  double logprob_mean = 0;     // mean log-probability of the chosen tokens
  double logprob_p10 = 0;      // 10th percentile (the least certain tokens)
  double entropy_mean = 0;     // mean entropy of the next-token distributions (nats)
  double repetition = 0;       // share of 4-grams of the draft that occurred earlier in it
};

// From the prompt's tokens and the NLL of each token after the first
// (the scored_position ones, in order; empty when only one token).
PromptSignals prompt_signals(const Tokenizer& tok, const std::vector<int32_t>& tokens, const std::vector<float>& nll,
                             int n_ctx, size_t n_chars);

// Which predictions of an n-token prompt are scored: all of them up to
// kMaxScored, else kMaxScored evenly spread ones. Each scored position costs
// a full-vocabulary output row (for a 150k vocabulary about a third of the
// model's work), so a long prompt is sampled rather than scored whole.
inline constexpr size_t kMaxScored = 64;
inline bool scored_position(size_t next, size_t n) {
  const size_t stride = n <= kMaxScored + 1 ? 1 : (n - 1 + kMaxScored - 1) / kMaxScored;
  return (next - 1) % stride == 0;
}

// Per-token NLL of tokens[1..] under the model, computed in sequence `seq`
// (its cache keeps the prompt afterwards, so an answer reuses the prefill).
Result<std::vector<float>> prompt_nll(Engine& e, int seq, const std::vector<int32_t>& tokens);

// The tokens the router scores for a text: BOS (when the vocabulary adds
// one) and the text without special-token parsing.
std::vector<int32_t> routing_tokens(const Tokenizer& tok, const std::string& text);

// Log-probability of the chosen token and the entropy of the distribution
// from raw logits (the numbers DraftSignals summarises); `entropy` may be null.
void token_uncertainty(const float* logits, int n_vocab, int32_t chosen, float* logprob, float* entropy);
DraftSignals draft_signals(const std::vector<float>& logprobs, const std::vector<float>& entropies,
                           const std::vector<int32_t>& tokens);

nlohmann::json to_json(const PromptSignals& s);
nlohmann::json to_json(const DraftSignals& s);

}  // namespace slim
