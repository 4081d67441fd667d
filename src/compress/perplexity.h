// Perplexity and KL divergence over a text, the way the community measures
// what quantization cost (llama.cpp's perplexity tool):
//
//   - the text is tokenized once (BOS in front when the vocabulary adds one,
//     special-token text not parsed) and cut into non-overlapping chunks of
//     n_ctx tokens; the tail that does not fill a chunk is dropped;
//   - each chunk is evaluated from an empty cache with its first token replaced
//     by BOS (when the vocabulary adds one), so every chunk starts as a text does;
//   - only the second half is scored: the logits at positions n_ctx/2 ..
//     n_ctx-2 predict tokens n_ctx/2+1 .. n_ctx-1 (n_ctx - 1 - n_ctx/2 tokens
//     a chunk), the first half being context;
//   - PPL = exp(mean NLL), its standard error ppl * sqrt(var(NLL) / (n - 1)).
//
// A base run can store its log-probabilities (save_logits) for a later run of
// another model (kld_base) on the same text to compare against: KL divergence
// per token, same-top-token rate, Δp of the correct token, PPL ratio.
//
// Base file (little endian), one header then one row a scored token:
//   char magic[8] "SLIMLGP1"; u32 version (1); u32 n_vocab; u32 n_ctx;
//   u32 n_chunks; u32 first (n_ctx/2); u32 flags (bit 0: BOS replaces each
//   chunk's first token); u64 vocab hash (FNV-1a of every token's text);
//   u32 name length, the base model's file name;
//   i32 tokens[n_chunks * n_ctx] as evaluated;
//   rows[n_chunks * (n_ctx - 1 - first)]: i32 top token; f32 exact NLL of the
//   correct token; f32 scale; f32 floor; u16 q[n_vocab], where log p(i) =
//   floor + scale * q[i], quantized over the 32 nats below the top (tokens
//   further down sit on the floor: they weigh under e^-32 a token).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slim {

class Engine;
class Tokenizer;

// The evaluated tokens of a text: n_chunks chunks of n_ctx tokens, each chunk's
// first token BOS when the vocabulary adds one.
struct ChunkedText {
  std::vector<int32_t> tokens;  // n_chunks * n_ctx
  int n_ctx = 0;
  int n_chunks = 0;
  size_t n_text_tokens = 0;     // tokens of the whole text (BOS included)
  bool bos_first = false;
};

// Fails when the text is shorter than one chunk. max_chunks < 0: all.
Result<ChunkedText> chunk_text(const Tokenizer& tok, std::string_view text, int n_ctx, int max_chunks);

// Default chunk size: 512, or the model's trained context when smaller.
int default_perplexity_ctx(int n_ctx_train);

struct PerplexityParams {
  int n_ctx = 512;          // chunk size; the engine's context must hold it
  int n_batch = 512;        // tokens a forward pass; with n_batch >= 2 n_ctx chunks share one
  int n_chunks = -1;        // -1: all the text holds (with kld_base: all the base file holds)
  int n_threads = 0;        // for scoring; 0: physical cores
  std::string save_logits;  // write the base file here
  std::string kld_base;     // compare against this base file
};

struct KldResult {
  int64_t n = 0;                                 // tokens compared
  double kld_mean = 0, kld_stderr = 0;
  double kld_median = 0, kld_p90 = 0, kld_p95 = 0, kld_p99 = 0, kld_max = 0;
  double same_top = 0, same_top_stderr = 0;     // fraction of tokens whose most likely next token agrees
  double dp_mean = 0, dp_stderr = 0;            // p(correct) - p_base(correct)
  double dp_rms = 0, dp_rms_stderr = 0;
  double ppl_base = 0, ppl_base_stderr = 0;
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;  // mean NLL - mean base NLL (correlated errors)
  double ppl_ratio = 0, ppl_ratio_stderr = 0;
  std::string base_model;                        // as recorded in the base file
};

struct ChunkStats {
  double nll_mean = 0;      // this chunk alone
  double running_ppl = 0;   // all chunks so far
  double kld_mean = 0;      // this chunk alone (kld_base runs)
};

struct PerplexityResult {
  int n_ctx = 0, n_chunks = 0, n_seq = 1;
  int64_t n_scored = 0;     // tokens scored
  double nll_mean = 0, nll_stderr = 0;
  double ppl = 0, ppl_stderr = 0;
  std::vector<ChunkStats> chunks;
  double seconds = 0;       // evaluation and scoring
  double tokens_per_s = 0;  // tokens evaluated (n_chunks * n_ctx) a second
  std::optional<KldResult> kld;
};

// Reads the header of a base file: its n_ctx and n_chunks (for the CLI to size
// the engine before running).
struct LogitsFileInfo {
  int n_vocab = 0, n_ctx = 0, n_chunks = 0;
  std::string base_model;
};
Result<LogitsFileInfo> read_logits_info(const std::string& path);

// Called after each chunk with its index and the result so far.
using ChunkCallback = std::function<void(int chunk, const PerplexityResult& so_far)>;

// Runs the engine's model over the text. The engine needs a context of at
// least p.n_ctx; it uses up to min(engine sequences, n_batch / n_ctx) sequences.
// `base_name` is recorded in a saved base file.
Result<PerplexityResult> run_perplexity(Engine& e, std::string_view text, const PerplexityParams& p,
                                        const ChunkCallback& on_chunk = nullptr, const std::string& base_name = "");

// Negative log-likelihood of token `tok` under a row of logits, in double.
double token_nll(const float* logits, int n_vocab, int32_t tok);

// Mean and standard error of the mean from a sum, a sum of squares and a count.
struct MeanErr { double mean = 0, err = 0; };
MeanErr mean_and_error(double sum, double sum2, int64_t n);

}  // namespace slim
