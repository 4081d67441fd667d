// Self-attention and FFN blocks, written once for every family.
#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"

namespace slim {

void rms_norm_rows(const float* x, const Weight& w, float* y, int n_tokens, int n, float eps) {
  const float* wv = reinterpret_cast<const float*>(w.data);
  for (int t = 0; t < n_tokens; ++t) rms_norm(x + (size_t)t * n, wv, y + (size_t)t * n, n, eps);
}

namespace {

void store_row(const KvCache& kv, std::vector<uint8_t>& buf, int64_t cell, int64_t row, const float* src) {
  if (kv.type == CacheType::F32) {
    float* d = reinterpret_cast<float*>(buf.data()) + cell * row;
    std::copy(src, src + row, d);
  } else {
    uint16_t* d = reinterpret_cast<uint16_t*>(buf.data()) + cell * row;
    for (int64_t i = 0; i < row; ++i) d[i] = fp32_to_fp16(src[i]);
  }
}

// One query head against the cached keys/values of one sequence, softmax in
// between. Runs on one thread; `scores` and `q16` are that thread's scratch.
// The loops over keys are the dispatched attention kernels (dispatch.h).
struct HeadAttention {
  const KvCache& kv;
  const AttnKernels& ak;  // for the cache's element type
  int head_dim, head_dim_v;
  float scale, softcap;

  void run(int il, int64_t base_cell, int first, int n_keys, int hk, const float* q, float* out,
           std::vector<float>& scores, std::vector<uint16_t>& q16) const {
    const size_t elt = kv.type == CacheType::F32 ? 4 : 2;
    const void* qv = q;
    if (kv.type == CacheType::F16) {  // as ggml: the query meets F16 keys in F16
      q16.resize(head_dim);
      for (int i = 0; i < head_dim; ++i) q16[i] = fp32_to_fp16(q[i]);
      qv = q16.data();
    }
    scores.resize(n_keys);
    const uint8_t* k0 = kv.k[il].data() + ((base_cell + first) * kv.k_row + (int64_t)hk * head_dim) * elt;
    ak.scores(n_keys, head_dim, qv, k0, kv.k_row * elt, scores.data());
    ak.softmax(n_keys, scores.data(), scale, softcap);
    std::fill(out, out + head_dim_v, 0.0f);
    const uint8_t* v0 = kv.v[il].data() + ((base_cell + first) * kv.v_row + (int64_t)hk * head_dim_v) * elt;
    ak.mix(n_keys, head_dim_v, scores.data(), v0, kv.v_row * elt, out);
  }
};

}  // namespace

void attention_block(const Model& m, int il, ForwardState& st, const LayerInput& in, const float* x,
                     float* out, const AttnParams& p) {
  const HParams& hp = m.hp;
  const LayerWeights& L = m.layers[il];
  const int nt = in.n_tokens;
  const int nq = hp.n_embd_q(), nk = hp.n_embd_k(), nv = hp.n_embd_v();
  st.q.resize((size_t)nt * nq);
  st.k.resize((size_t)nt * nk);
  st.v.resize((size_t)nt * nv);

  if (L.wqkv) {  // fused projection: rows are Q, then K, then V
    matmul_rows(L.wqkv, 0, nq, x, nt, st.q.data(), nq, st);
    matmul_rows(L.wqkv, nq, nq + nk, x, nt, st.k.data(), nk, st);
    matmul_rows(L.wqkv, nq + nk, nq + nk + nv, x, nt, st.v.data(), nv, st);
    if (L.bqkv) {
      const float* b = reinterpret_cast<const float*>(L.bqkv.data);
      add_bias(st.q.data(), b, nt, nq);
      add_bias(st.k.data(), b + nq, nt, nk);
      add_bias(st.v.data(), b + nq + nk, nt, nv);
    }
  } else {
    matmul(L.wq, x, nt, st.q.data(), st);
    matmul(L.wk, x, nt, st.k.data(), st);
    matmul(L.wv, x, nt, st.v.data(), st);
    if (L.bq) add_bias(st.q.data(), reinterpret_cast<const float*>(L.bq.data), nt, nq);
    if (L.bk) add_bias(st.k.data(), reinterpret_cast<const float*>(L.bk.data), nt, nk);
    if (L.bv) add_bias(st.v.data(), reinterpret_cast<const float*>(L.bv.data), nt, nv);
  }
  // Per-head RMS norms of Q and K (qwen3, gemma3), before RoPE.
  if (L.q_norm) rms_norm_rows(st.q.data(), L.q_norm, st.q.data(), nt * hp.n_head, hp.head_dim, hp.rms_eps);
  if (L.k_norm) rms_norm_rows(st.k.data(), L.k_norm, st.k.data(), nt * hp.n_head_kv, hp.head_dim, hp.rms_eps);

  // Frequency divisors: Llama 3.1's rope_freqs, or Phi-3's LongRoPE factors,
  // short while the context stays within the original length, long beyond it.
  const Weight& factors = m.rope_freqs                                         ? m.rope_freqs
                          : st.kv.n_ctx > hp.n_ctx_orig && m.rope_factors_long ? m.rope_factors_long
                                                                               : m.rope_factors_short;
  const float* ff = factors ? reinterpret_cast<const float*>(factors.data) : nullptr;
  pool_of(st).parallel_for(nt, 8, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int pos = in.batch->pos[t];
      rope(&st.q[(size_t)t * nq], hp.n_head, hp.head_dim, hp.n_rot, pos, hp.rope_type, p.freq_base, p.freq_scale, ff, hp.rope_attn_factor);
      rope(&st.k[(size_t)t * nk], hp.n_head_kv, hp.head_dim, hp.n_rot, pos, hp.rope_type, p.freq_base, p.freq_scale, ff, hp.rope_attn_factor);
    }
  });
  trace(st, "q", il, st.q.data(), nt, nq);
  trace(st, "k", il, st.k.data(), nt, nk);

  // Store K and V of every token first, so tokens of one sequence in this
  // batch see each other's keys.
  KvCache& kv = st.kv;
  for (int t = 0; t < nt; ++t) {
    int64_t cell = (int64_t)in.batch->seq[t] * kv.n_ctx + in.batch->pos[t];
    store_row(kv, kv.k[il], cell, kv.k_row, &st.k[(size_t)t * nk]);
    store_row(kv, kv.v[il], cell, kv.v_row, &st.v[(size_t)t * nv]);
  }

  const float scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt((float)hp.head_dim);
  const int group = hp.n_head / hp.n_head_kv;
  st.attn.resize((size_t)nt * hp.n_head * hp.head_dim_v);
  const KernelTable& kt = kernels();
  const HeadAttention ha{kv, kv.type == CacheType::F32 ? kt.attn_f32 : kt.attn_f16, hp.head_dim, hp.head_dim_v, scale,
                         p.softcap};
  pool_of(st).parallel_for((int64_t)nt * hp.n_head, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    thread_local std::vector<uint16_t> q16;
    for (int64_t i = begin; i < end; ++i) {
      const int t = (int)(i / hp.n_head), h = (int)(i % hp.n_head);
      const int pos = in.batch->pos[t];
      const int first = p.window > 0 ? std::max(0, pos - p.window + 1) : 0;
      ha.run(il, (int64_t)in.batch->seq[t] * kv.n_ctx, first, pos - first + 1, h / group,
             &st.q[(size_t)t * nq + (size_t)h * hp.head_dim], &st.attn[((size_t)t * hp.n_head + h) * hp.head_dim_v],
             scores, q16);
    }
  });
  trace(st, "attn", il, st.attn.data(), nt, hp.n_head * hp.head_dim_v);
  matmul(L.wo, st.attn.data(), nt, out, st);
  if (L.bo) add_bias(out, reinterpret_cast<const float*>(L.bo.data), nt, hp.n_embd);
}

void ffn_block(const Model& m, int il, ForwardState& st, int nt, const float* x, float* out) {
  const HParams& hp = m.hp;
  const LayerWeights& L = m.layers[il];
  const int nff = hp.n_ff;
  st.ffn_a.resize((size_t)nt * nff);
  st.ffn_b.resize((size_t)nt * nff);
  if (L.ffn_gate) {
    matmul(L.ffn_gate, x, nt, st.ffn_a.data(), st);
    matmul(L.ffn_up, x, nt, st.ffn_b.data(), st);
  } else {  // fused: the first n_ff rows of ffn_up are the gate
    matmul_rows(L.ffn_up, 0, nff, x, nt, st.ffn_a.data(), nff, st);
    matmul_rows(L.ffn_up, nff, 2 * nff, x, nt, st.ffn_b.data(), nff, st);
  }
  float* a = st.ffn_a.data();
  const float* b = st.ffn_b.data();
  const size_t n = (size_t)nt * nff;
  const bool gelu = m.arch->ffn_act == FfnAct::GeluTanh;
  pool_of(st).parallel_for((int64_t)n, 4096, [&](int64_t i0, int64_t i1) {
    if (gelu) {
      for (int64_t i = i0; i < i1; ++i) a[i] = gelu_tanh(a[i]) * b[i];
    } else {
      for (int64_t i = i0; i < i1; ++i) a[i] = silu(a[i]) * b[i];
    }
  });
  trace(st, "ffn_act", il, a, nt, nff);
  matmul(L.ffn_down, a, nt, out, st);
}

}  // namespace slim
