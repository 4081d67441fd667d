// Prompt and draft signals for the router.
#include "route/signals.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace slim {

namespace {

// The q-quantile of v (sorted copy, nearest rank on the lower side).
double quantile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(size_t)std::floor(q * (double)(v.size() - 1))];
}

double mean(const std::vector<float>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (float x : v) s += x;
  return s / (double)v.size();
}

double round4(double x) { return std::round(x * 1e4) / 1e4; }

}  // namespace

PromptSignals prompt_signals(const Tokenizer& tok, const std::vector<int32_t>& tokens, const std::vector<float>& nll,
                             int n_ctx, size_t n_chars) {
  PromptSignals s;
  s.n_tokens = (int)tokens.size();
  s.n_ctx = n_ctx;
  s.nll_mean = mean(nll);
  s.nll_p90 = quantile(nll, 0.9);
  int n_byte = 0, n_text = 0;
  for (int32_t t : tokens) {
    if (tok.is_control(t)) continue;
    ++n_text;
    if (tok.token_type(t) == (int)TokenType::Byte) ++n_byte;
  }
  s.byte_fraction = n_text ? (double)n_byte / n_text : 0;
  s.chars_per_token = n_text ? (double)n_chars / n_text : 0;
  return s;
}

std::vector<int32_t> routing_tokens(const Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids = tok.tokenize(text, true, false);
  if (ids.empty()) ids.push_back(tok.bos() >= 0 ? tok.bos() : tok.eos());
  return ids;
}

Result<std::vector<float>> prompt_nll(Engine& e, int seq, const std::vector<int32_t>& tokens) {
  const int n_vocab = e.model().hp.n_vocab;
  std::vector<float> nll;
  if (tokens.size() < 2) return nll;
  if ((int)tokens.size() > e.n_ctx())
    return Status::error(format("the prompt is %d tokens but the context holds %d", (int)tokens.size(), e.n_ctx()));
  e.clear(seq);
  const int n_batch = e.params().n_batch;
  std::vector<float> logits;
  for (size_t start = 0; start < tokens.size(); start += n_batch) {
    const size_t end = std::min(tokens.size(), start + n_batch);
    Batch b;
    auto wanted = [&](size_t i) { return i + 1 < tokens.size() && scored_position(i + 1, tokens.size()); };
    for (size_t i = start; i < end; ++i) b.add(tokens[i], (int32_t)i, seq, wanted(i));
    logits.clear();
    SLIM_RETURN_IF_ERROR(e.decode(b, logits));
    size_t row = 0;
    for (size_t i = start; i < end; ++i) {
      if (!wanted(i)) continue;
      float lp;
      token_uncertainty(logits.data() + row++ * n_vocab, n_vocab, tokens[i + 1], &lp, nullptr);
      nll.push_back(-lp);
    }
  }
  return nll;
}

void token_uncertainty(const float* lg, int n_vocab, int32_t chosen, float* logprob, float* entropy) {
  float mx = -INFINITY;
  for (int i = 0; i < n_vocab; ++i) mx = std::max(mx, lg[i]);
  // Float exps summed in double: exact enough for a signal, and this runs
  // over the whole vocabulary for every scored position.
  double z = 0, ez = 0;
  if (entropy) {
    for (int i = 0; i < n_vocab; ++i) {
      const float d = lg[i] - mx;
      const float p = std::exp(d);
      z += p;
      ez += (double)p * d;
    }
  } else {
    for (int i = 0; i < n_vocab; ++i) z += std::exp(lg[i] - mx);
  }
  const double lse = std::log(z);
  *logprob = (float)((double)lg[chosen] - mx - lse);
  // H = -sum p log p = lse - E[d] with p = e^d / z.
  if (entropy) *entropy = (float)(lse - ez / z);
}

DraftSignals draft_signals(const std::vector<float>& logprobs, const std::vector<float>& entropies,
                           const std::vector<int32_t>& tokens) {
  DraftSignals d;
  d.n_tokens = (int)logprobs.size();
  d.logprob_mean = mean(logprobs);
  d.logprob_p10 = quantile(logprobs, 0.1);
  d.entropy_mean = mean(entropies);
  // Degeneration: the share of 4-grams already seen earlier in the draft.
  const size_t n = 4;
  if (tokens.size() >= n + 1) {
    std::set<std::vector<int32_t>> seen;
    size_t repeated = 0, total = 0;
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::vector<int32_t> g(tokens.begin() + i, tokens.begin() + i + n);
      ++total;
      if (!seen.insert(std::move(g)).second) ++repeated;
    }
    d.repetition = total ? (double)repeated / total : 0;
  }
  return d;
}

nlohmann::json to_json(const PromptSignals& s) {
  nlohmann::json j = {{"prompt_tokens", s.n_tokens}, {"context", s.n_ctx},
                      {"nll_mean", round4(s.nll_mean)}, {"nll_p90", round4(s.nll_p90)},
                      {"perplexity", round4(std::exp(s.nll_mean))},
                      {"byte_fraction", round4(s.byte_fraction)}, {"chars_per_token", round4(s.chars_per_token)},
                      {"tools", s.wants_tools}, {"images", s.wants_images}, {"ms", round4(s.ms)}};
  if (s.classifier_p >= 0) j["classifier_p"] = round4(s.classifier_p);
  return j;
}

nlohmann::json to_json(const DraftSignals& s) {
  return {{"draft_tokens", s.n_tokens}, {"logprob_mean", round4(s.logprob_mean)},
          {"logprob_p10", round4(s.logprob_p10)}, {"entropy_mean", round4(s.entropy_mean)},
          {"repetition", round4(s.repetition)}};
}

}  // namespace slim
