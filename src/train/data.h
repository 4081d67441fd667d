// Training data: fixed-length token sequences, from a text file or sampled
// from a teacher model.
//
// A text is tokenized once with the model's tokenizer (BOS in front when the
// vocabulary adds one; every blank-line-separated document starts with BOS
// too, as TinyStories-style corpora are trained), the token stream is cut
// into sequences of n_ctx + 1 tokens that overlap by one (the inputs are the
// first n_ctx, the targets the last n_ctx), the tail that does not fill one is
// dropped. The last `eval_fraction` of the sequences (at least one when there
// are two or more) is held out for evaluation; it is never trained on.
// Which sequences make the batch of step s is a pure function of (seed, s),
// so a resumed run sees exactly the batches an uninterrupted one would.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slim {

class Engine;
class Tokenizer;

namespace train {

struct Dataset {
  int n_ctx = 0;
  std::vector<std::vector<int32_t>> train, eval;  // each n_ctx + 1 tokens
  size_t n_text_tokens = 0;                        // tokens the source produced
};

struct TextDataOptions {
  int n_ctx = 256;
  double eval_fraction = 0.05;
};

// Errors when the text gives fewer than one training sequence.
Result<Dataset> dataset_from_text(const Tokenizer& tok, std::string_view text, const TextDataOptions& opt);

struct SampleOptions {
  int n_seq = 64;           // sequences to sample (eval ones are sampled in addition)
  int n_eval = 0;           // extra held-out sequences, sampled after the training ones
  int n_ctx = 256;
  float temperature = 1.0f;
  uint64_t seed = 1;
};

// Sequence-level distillation data: n_seq + n_eval sequences of n_ctx + 1
// tokens sampled from the teacher engine, each from BOS; when the teacher
// ends a text (EOS/EOG) a new one starts with BOS in the same sequence. The
// same sequences for a seed on every run. Uses the engine's sequences in parallel.
Result<Dataset> dataset_from_teacher(Engine& teacher, const SampleOptions& opt);

// The indices (into Dataset::train) of the `batch` sequences of step `step`:
// epochs walk a permutation of all sequences (Fisher-Yates over a
// splitmix64 stream seeded by seed and the epoch), batches taking them in order.
std::vector<int> batch_indices(size_t n_train, int batch, uint64_t seed, int64_t step);

}  // namespace train
}  // namespace slim
