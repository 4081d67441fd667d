// A loaded model (hyperparameters + weights pointing into the mapped GGUF),
// its KV cache, and the forward pass over a batch of tokens that may belong to
// several independent sequences.
//
// Data flow: GgufFile → Model (weights, no copies) → forward(batch) → logits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "model/hparams.h"
#include "tensor/weight.h"

namespace slim {

class ThreadPool;

struct LayerWeights {
  Weight attn_norm, wq, wk, wv, wqkv, bq, bk, bv, bqkv, wo, bo, q_norm, k_norm, post_attn_norm;
  Weight ffn_norm, ffn_gate, ffn_up, ffn_down, post_ffn_norm;
};

struct ArchSpec;

struct Model {
  std::shared_ptr<GgufFile> file;
  HParams hp;
  const ArchSpec* arch = nullptr;
  Weight tok_embd, output_norm, output, rope_freqs;
  Weight rope_factors_short, rope_factors_long;  // Phi-3 LongRoPE (optional)
  std::vector<LayerWeights> layers;
  size_t n_params = 0;
  size_t weight_bytes = 0;
  std::vector<std::unique_ptr<uint8_t[]>> repacked;  // owns the Weight::repacked panels
};

class ThreadPool;
struct KernelTable;
// Interleaves every matrix the forward pass multiplies with (kernels/repack.h)
// whose type the table has panel kernels for, and lets the kernel drop the
// mapped pages it copied from (the file stays mapped: embeddings and other
// ISAs still read it). Returns the bytes repacked. Idempotent.
size_t repack_weights(Model& m, ThreadPool& pool, const KernelTable& table);
// What repack_weights adds to the weights' resident bytes with `table`: the
// panels less the GGUF rows they replace (Q4_K's unpacked scales, the zero
// rows of a partial last panel). The memory planner counts it.
int64_t repack_growth(const Model& m, const KernelTable& table);

Result<std::shared_ptr<Model>> load_model(const std::string& path);
Result<std::shared_ptr<Model>> load_model(std::shared_ptr<GgufFile> file);

// Element type of the KV cache rows. Q8_0 rows are ggml Q8_0 blocks (an fp16
// scale and 32 int8 quants, 34 bytes per 32 values), quantized as written.
enum class CacheType { F32, F16, Q8_0 };
Result<CacheType> parse_cache_type(const std::string& s);  // "f32", "f16", "q8_0"
const char* cache_type_name(CacheType t);
// Bytes of n cached values (Q8_0: n a multiple of 32).
size_t cache_row_bytes(CacheType t, int64_t n);
// Whether the model's heads can be cached in `t`: Q8_0 blocks must not straddle
// heads, so the K and V head dims must be multiples of 32. Checked by
// Engine::load and forward(), so a bad pairing is an error, never a crash.
Status check_cache_type(const HParams& hp, CacheType t);

// KV cache: every sequence owns n_ctx cells; the cell of (seq, pos) is
// seq * n_ctx + pos, so sequences never share or move cells.
struct KvCache {
  CacheType type = CacheType::F16;
  int n_ctx = 0;
  int n_seq = 0;
  int n_layer = 0;
  int64_t k_row = 0, v_row = 0;           // values per cell
  std::vector<std::vector<uint8_t>> k, v; // per layer: [n_seq * n_ctx][cache_row_bytes(type, row)]
  std::vector<int> seq_len;               // cells in use per sequence (positions 0..len-1)

  void clear_seq(int seq) { seq_len[seq] = 0; }
  // Drops positions >= pos of a sequence (prefix reuse).
  void truncate_seq(int seq, int pos) { if (pos < seq_len[seq]) seq_len[seq] = pos; }
};

KvCache make_kv_cache(const HParams& hp, int n_ctx, int n_seq, CacheType type);
size_t kv_cache_bytes(const HParams& hp, int n_ctx, int n_seq, CacheType type);

// One token of a batch: its id, its position in its sequence, the sequence,
// and whether its logits (next-token prediction) are wanted.
struct Batch {
  std::vector<int32_t> token, pos, seq;
  std::vector<uint8_t> want_logits;
  void add(int32_t t, int32_t p, int32_t s, bool logits) {
    token.push_back(t); pos.push_back(p); seq.push_back(s); want_logits.push_back(logits);
  }
  int size() const { return (int)token.size(); }
  void clear() { token.clear(); pos.clear(); seq.clear(); want_logits.clear(); }
};

// Debug hook: called with each named intermediate (e.g. "attn_norm", layer 3),
// a [n_tokens][n] row-major float array.
using TraceFn = void (*)(void* user, const char* name, int il, const float* data, int n_tokens, int n);

// Importance-matrix hook: called with each weight matrix just before it is
// multiplied, and the activations entering it ([n_tokens][w.ne0] floats),
// once per weight and product: ops.h matmul and matmul_many (the parts of one
// fused matrix count once); matmul_rows, a slice, does not call it, since the
// slices of one product would count its rows twice. The trace names do not say
// which weight reads them (fused or split QKV, families), this does.
using MatmulHookFn = void (*)(void* user, const Weight& w, const float* x, int n_tokens);

// Scratch buffers reused across calls, sized for the largest batch seen.
struct ForwardState {
  KvCache kv;
  ThreadPool* pool = nullptr;   // null: single thread
  TraceFn trace = nullptr;
  void* trace_user = nullptr;
  MatmulHookFn matmul_hook = nullptr;  // null: no cost beyond a test
  void* matmul_hook_user = nullptr;
  std::vector<float> x, cur, q, k, v, attn, ffn_a, ffn_b, tmp;
  std::vector<uint8_t> act;     // activations converted to a weight's dot type
  // RoPE's cos and sin for the batch's positions, made by the first layer and
  // reused by every later one with the same parameters (ops.h rope_angles)
  struct RopeAngles {
    std::vector<int32_t> pos;
    float freq_base = 0, freq_scale = 0, mscale = 0;
    const float* factors = nullptr;
    int n_rot = 0;
    std::vector<float> cs, sn;  // [token][n_rot / 2]
  } rope;
  // When set, forward() also appends the final normalised hidden state
  // (n_embd floats, before the output projection) of every token that wants
  // logits: what embeddings are pooled from.
  std::vector<float>* hidden_out = nullptr;
};

// Runs the batch. For every token with want_logits set, one row of n_vocab
// logits is appended to `logits` in batch order. Positions of a sequence must
// continue that sequence (pos == kv.seq_len[seq] for its first token in the batch).
Status forward(const Model& m, ForwardState& st, const Batch& batch, std::vector<float>& logits);

}  // namespace slim
