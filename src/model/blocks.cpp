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

// Writes one token's K or V row into its cache cell, converted to the cache's
// type (Q8_0 through the kernel table's quantizer: ggml's quantize_row_q8_0).
void store_row(const KvCache& kv, std::vector<uint8_t>& buf, int64_t cell, int64_t row, const float* src) {
  uint8_t* dst = buf.data() + cell * cache_row_bytes(kv.type, row);
  switch (kv.type) {
    case CacheType::F32:
      std::copy(src, src + row, reinterpret_cast<float*>(dst));
      break;
    case CacheType::F16: {
      uint16_t* d = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < row; ++i) d[i] = fp32_to_fp16(src[i]);
      break;
    }
    case CacheType::Q8_0:
      kernels()[GgmlType::Q8_0].from_float(src, dst, row);
      break;
  }
}

// One query head against the cached keys/values of one sequence, softmax in
// between. Runs on one thread; `scores` and `qbuf` are that thread's scratch.
// The loops over keys are the dispatched attention kernels (dispatch.h).
struct HeadAttention {
  const KvCache& kv;
  const AttnKernels& ak;  // for the cache's element type
  int head_dim, head_dim_v;
  float scale, softcap;

  void run(int il, int64_t base_cell, int first, int n_keys, int hk, const float* q, float* out,
           std::vector<float>& scores, std::vector<uint8_t>& qbuf) const {
    // As ggml, the query meets the keys in the cache's type: F16 keys an F16
    // query, Q8_0 keys a Q8_0 query (the Q8_0 x Q8_0 dot).
    const void* qv = q;
    if (kv.type == CacheType::F16) {
      qbuf.resize(cache_row_bytes(kv.type, head_dim));
      uint16_t* q16 = reinterpret_cast<uint16_t*>(qbuf.data());
      for (int i = 0; i < head_dim; ++i) q16[i] = fp32_to_fp16(q[i]);
      qv = qbuf.data();
    } else if (kv.type == CacheType::Q8_0) {
      qbuf.resize(cache_row_bytes(kv.type, head_dim));
      kernels()[GgmlType::Q8_0].from_float(q, qbuf.data(), head_dim);
      qv = qbuf.data();
    }
    scores.resize(n_keys);
    const size_t k_stride = cache_row_bytes(kv.type, kv.k_row), v_stride = cache_row_bytes(kv.type, kv.v_row);
    const uint8_t* k0 = kv.k[il].data() + (base_cell + first) * k_stride + cache_row_bytes(kv.type, (int64_t)hk * head_dim);
    ak.scores(n_keys, head_dim, qv, k0, k_stride, scores.data());
    ak.softmax(n_keys, scores.data(), scale, softcap);
    std::fill(out, out + head_dim_v, 0.0f);
    const uint8_t* v0 = kv.v[il].data() + (base_cell + first) * v_stride + cache_row_bytes(kv.type, (int64_t)hk * head_dim_v);
    ak.mix(n_keys, head_dim_v, scores.data(), v0, v_stride, out);
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
    const MatmulPart parts[] = {{&L.wqkv, 0, nq, st.q.data(), nq},
                                {&L.wqkv, nq, nq + nk, st.k.data(), nk},
                                {&L.wqkv, nq + nk, nq + nk + nv, st.v.data(), nv}};
    matmul_many(parts, 3, x, nt, st);
    if (L.bqkv) {
      const float* b = reinterpret_cast<const float*>(L.bqkv.data);
      add_bias(st.q.data(), b, nt, nq);
      add_bias(st.k.data(), b + nq, nt, nk);
      add_bias(st.v.data(), b + nq + nk, nt, nv);
    }
  } else {
    const MatmulPart parts[] = {{&L.wq, 0, L.wq.ne1, st.q.data(), L.wq.ne1},
                                {&L.wk, 0, L.wk.ne1, st.k.data(), L.wk.ne1},
                                {&L.wv, 0, L.wv.ne1, st.v.data(), L.wv.ne1}};
    matmul_many(parts, 3, x, nt, st);
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
  // The angles depend on the position and these parameters only: the first
  // layer computes them (a pow, cos and sin each) and the others reuse them.
  ForwardState::RopeAngles& ra = st.rope;
  const int half = hp.n_rot / 2;
  const int32_t* pos = in.batch->pos.data();
  const bool cached = ra.n_rot == hp.n_rot && ra.freq_base == p.freq_base && ra.freq_scale == p.freq_scale &&
                     ra.mscale == hp.rope_attn_factor && ra.factors == ff && ra.pos.size() == (size_t)nt &&
                     std::equal(ra.pos.begin(), ra.pos.end(), pos);
  if (!cached) {
    ra.pos.assign(pos, pos + nt);  // in place: no allocation per token
    ra.freq_base = p.freq_base, ra.freq_scale = p.freq_scale, ra.mscale = hp.rope_attn_factor;
    ra.factors = ff, ra.n_rot = hp.n_rot;
    ra.cs.resize((size_t)nt * half);
    ra.sn.resize((size_t)nt * half);
  }
  pool_of(st).parallel_for(nt, 8, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* cs = &ra.cs[(size_t)t * half];
      float* sn = &ra.sn[(size_t)t * half];
      if (!cached) rope_angles(pos[t], hp.n_rot, p.freq_base, p.freq_scale, ff, hp.rope_attn_factor, cs, sn);
      rope_rotate(&st.q[(size_t)t * nq], hp.n_head, hp.head_dim, hp.n_rot, hp.rope_type, cs, sn);
      rope_rotate(&st.k[(size_t)t * nk], hp.n_head_kv, hp.head_dim, hp.n_rot, hp.rope_type, cs, sn);
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
  const AttnKernels& ak = kv.type == CacheType::F32 ? kt.attn_f32 : kv.type == CacheType::F16 ? kt.attn_f16 : kt.attn_q8_0;
  const HeadAttention ha{kv, ak, hp.head_dim, hp.head_dim_v, scale, p.softcap};
  pool_of(st).parallel_for((int64_t)nt * hp.n_head, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    thread_local std::vector<uint8_t> qbuf;
    for (int64_t i = begin; i < end; ++i) {
      const int t = (int)(i / hp.n_head), h = (int)(i % hp.n_head);
      const int pos = in.batch->pos[t];
      const int first = p.window > 0 ? std::max(0, pos - p.window + 1) : 0;
      ha.run(il, (int64_t)in.batch->seq[t] * kv.n_ctx, first, pos - first + 1, h / group,
             &st.q[(size_t)t * nq + (size_t)h * hp.head_dim], &st.attn[((size_t)t * hp.n_head + h) * hp.head_dim_v],
             scores, qbuf);
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
    const MatmulPart parts[] = {{&L.ffn_gate, 0, nff, st.ffn_a.data(), nff}, {&L.ffn_up, 0, nff, st.ffn_b.data(), nff}};
    matmul_many(parts, 2, x, nt, st);
  } else {  // fused: the first n_ff rows of ffn_up are the gate
    const MatmulPart parts[] = {{&L.ffn_up, 0, nff, st.ffn_a.data(), nff}, {&L.ffn_up, nff, 2 * nff, st.ffn_b.data(), nff}};
    matmul_many(parts, 2, x, nt, st);
  }
  float* a = st.ffn_a.data();
  const float* b = st.ffn_b.data();
  const size_t n = (size_t)nt * nff;
  const bool gelu = m.arch->ffn_act == FfnAct::GeluTanh;
  const SwigluFn swiglu = kernels().swiglu;
  // one token's activation is cheaper than waking the pool for it
  pool_of(st).parallel_for((int64_t)n, 16384, [&](int64_t i0, int64_t i1) {
    if (gelu) {
      for (int64_t i = i0; i < i1; ++i) a[i] = gelu_tanh(a[i]) * b[i];
    } else {
      swiglu(i1 - i0, a + i0, b + i0, a + i0);
    }
  });
  trace(st, "ffn_act", il, a, nt, nff);
  matmul(L.ffn_down, a, nt, out, st);
}

}  // namespace slim
