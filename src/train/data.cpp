// Training sequences from a text or sampled from a teacher, and the
// per-step batch choice (conventions: data.h).
#include "train/data.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "engine/engine.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace slim::train {

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A value derived from a seed and an index that no nearby (seed, index) repeats.
uint64_t mix(uint64_t seed, uint64_t index) {
  uint64_t s = seed ^ (index * 0xD1B54A32D192ED03ULL);
  splitmix64(s);
  return splitmix64(s);
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && std::isspace((unsigned char)v.front())) v.remove_prefix(1);
  while (!v.empty() && std::isspace((unsigned char)v.back())) v.remove_suffix(1);
  return v;
}

// Documents are separated by one or more lines holding only whitespace.
std::vector<std::string_view> split_documents(std::string_view text) {
  std::vector<std::string_view> docs;
  size_t doc_start = 0, pos = 0;
  bool in_doc = false;
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const bool blank = trim(text.substr(pos, eol - pos)).empty();
    if (blank && in_doc) {
      docs.push_back(trim(text.substr(doc_start, pos - doc_start)));
      in_doc = false;
    } else if (!blank && !in_doc) {
      doc_start = pos;
      in_doc = true;
    }
    pos = eol + 1;
  }
  if (in_doc) docs.push_back(trim(text.substr(doc_start)));
  return docs;
}

}  // namespace

Result<Dataset> dataset_from_text(const Tokenizer& tok, std::string_view text, const TextDataOptions& opt) {
  if (opt.n_ctx < 1) return Status::error(format("bad context size %d", opt.n_ctx));
  if (!(opt.eval_fraction >= 0 && opt.eval_fraction < 1))
    return Status::error(format("bad eval fraction %g (0 <= fraction < 1)", opt.eval_fraction));
  std::vector<int32_t> all;
  if (tok.add_bos() && tok.bos() >= 0) {
    // Each document on its own, BOS (and EOS when the vocabulary adds one)
    // around it, as llama2.c's TinyStories pretokenizer does.
    for (std::string_view doc : split_documents(text)) {
      std::vector<int32_t> t = tok.tokenize(doc, true, false);
      all.insert(all.end(), t.begin(), t.end());
    }
  } else {
    // No BOS to mark a document: the blank lines stay in the text, which is
    // how such models see documents joined.
    all = tok.tokenize(text, true, false);
  }
  Dataset d;
  d.n_ctx = opt.n_ctx;
  d.n_text_tokens = all.size();
  const size_t n_seqs = all.size() > 0 ? (all.size() - 1) / (size_t)opt.n_ctx : 0;
  if (n_seqs == 0)
    return Status::error(format("the text is %zu tokens, fewer than one training sequence of %d + 1 "
                                "(use a longer text or a smaller context)", all.size(), opt.n_ctx));
  size_t n_eval = 0;
  if (opt.eval_fraction > 0 && n_seqs >= 2)
    n_eval = std::clamp<size_t>((size_t)std::llround(opt.eval_fraction * (double)n_seqs), 1, n_seqs - 1);
  for (size_t i = 0; i < n_seqs; ++i) {
    auto first = all.begin() + (ptrdiff_t)(i * opt.n_ctx);
    std::vector<int32_t> seq(first, first + opt.n_ctx + 1);
    (i < n_seqs - n_eval ? d.train : d.eval).push_back(std::move(seq));
  }
  return d;
}

Result<Dataset> dataset_from_teacher(Engine& teacher, const SampleOptions& opt) {
  if (opt.n_seq < 1 || opt.n_eval < 0) return Status::error(format("bad sequence counts %d + %d", opt.n_seq, opt.n_eval));
  if (opt.n_ctx < 1) return Status::error(format("bad context size %d", opt.n_ctx));
  if (!std::isfinite(opt.temperature) || opt.temperature < 0)
    return Status::error(format("bad temperature %g", (double)opt.temperature));
  // Positions 0..n_ctx-1 are evaluated (the last token is only sampled).
  if (teacher.n_ctx() < opt.n_ctx)
    return Status::error(format("the teacher's context is %d, the sequences need %d", teacher.n_ctx(), opt.n_ctx));
  const Tokenizer& tok = teacher.tokenizer();
  const int32_t bos = tok.bos();
  if (bos < 0) return Status::error("the teacher's vocabulary has no BOS token to start texts with");
  const int n_vocab = teacher.model().hp.n_vocab;
  const int total = opt.n_seq + opt.n_eval;
  const int n_slots = std::max(1, std::min(teacher.params().n_seq, total));
  const size_t len = (size_t)opt.n_ctx + 1;

  std::vector<std::vector<int32_t>> seqs(total);
  std::vector<float> logits;
  Batch b;
  auto clear_slots = [&] {
    for (int j = 0; j < n_slots; ++j) teacher.clear(j);
  };
  // Waves of n_slots sequences, one token a sequence each forward. Sequence
  // i's draws come from its own seed (seed, i), so what it holds does not
  // depend on which other sequences share its wave.
  for (int first = 0; first < total; first += n_slots) {
    const int k = std::min(n_slots, total - first);
    std::vector<Sampler> samplers;
    samplers.reserve(k);
    std::vector<int32_t> next(k, bos);  // the token each slot evaluates next
    for (int j = 0; j < k; ++j) {
      teacher.clear(j);
      SamplerParams sp;
      sp.temperature = opt.temperature;
      sp.top_k = 0, sp.top_p = 1.0f, sp.min_p = 0.0f;  // the teacher's whole distribution
      sp.repeat_penalty = 1.0f, sp.presence_penalty = 0.0f, sp.frequency_penalty = 0.0f;
      sp.seed = mix(opt.seed, (uint64_t)(first + j));
      if (sp.seed == SamplerParams::kRandomSeed) sp.seed ^= 1;  // that value asks for a random seed
      samplers.emplace_back(sp);
      seqs[first + j].reserve(len);
      seqs[first + j].push_back(bos);
    }
    for (;;) {
      b.clear();
      std::vector<int> slot_of;  // batch row -> slot
      for (int j = 0; j < k; ++j) {
        if (seqs[first + j].size() >= len) continue;
        b.add(next[j], (int32_t)teacher.seq_tokens(j).size(), j, true);
        slot_of.push_back(j);
      }
      if (b.size() == 0) break;
      logits.clear();
      if (auto st = teacher.decode(b, logits); !st) {
        clear_slots();
        return Status::error("sampling from the teacher: " + st.message());
      }
      for (size_t r = 0; r < slot_of.size(); ++r) {
        const int j = slot_of[r];
        std::vector<int32_t>& seq = seqs[first + j];
        const int32_t t = samplers[j].sample(&logits[r * (size_t)n_vocab], n_vocab);
        samplers[j].accept(t);
        seq.push_back(t);
        next[j] = t;
        if (tok.is_eog(t) && seq.size() < len) {
          // A finished text: the next one starts from BOS with a fresh cache,
          // so it is a sample from the teacher's start-of-text distribution.
          seq.push_back(bos);
          teacher.clear(j);
          next[j] = bos;
        }
      }
    }
  }
  clear_slots();

  Dataset d;
  d.n_ctx = opt.n_ctx;
  d.n_text_tokens = (size_t)total * len;
  d.train.assign(std::make_move_iterator(seqs.begin()), std::make_move_iterator(seqs.begin() + opt.n_seq));
  d.eval.assign(std::make_move_iterator(seqs.begin() + opt.n_seq), std::make_move_iterator(seqs.end()));
  return d;
}

std::vector<int> batch_indices(size_t n_train, int batch, uint64_t seed, int64_t step) {
  std::vector<int> out;
  if (n_train == 0 || batch <= 0 || step < 0) return out;
  out.reserve(batch);
  // Global position of the batch's first sequence in the stream of epochs.
  const unsigned __int128 p0 = (unsigned __int128)step * (unsigned)batch;
  uint64_t have_epoch = UINT64_MAX;
  std::vector<int> perm(n_train);
  for (int j = 0; j < batch; ++j) {
    const unsigned __int128 p = p0 + (unsigned)j;
    const uint64_t epoch = (uint64_t)(p / n_train);
    if (epoch != have_epoch) {
      // Fisher-Yates, each swap partner a multiply-shift of a 64-bit draw
      // (bias below n / 2^64: no rejection loop, the same on every platform).
      for (size_t i = 0; i < n_train; ++i) perm[i] = (int)i;
      uint64_t s = mix(seed, epoch);
      for (size_t i = n_train - 1; i > 0; --i) {
        const size_t r = (size_t)(((unsigned __int128)splitmix64(s) * (i + 1)) >> 64);
        std::swap(perm[i], perm[r]);
      }
      have_epoch = epoch;
    }
    out.push_back(perm[(size_t)(p % n_train)]);
  }
  return out;
}

}  // namespace slim::train
