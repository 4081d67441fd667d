// The training forward/backward (forward.h). The forward follows
// model/llama.cpp's pre-norm layer:
//   x += attn(rms_norm(x)) Wo;  x += (silu(rms_norm(x) Wg) * (rms_norm(x) Wu)) Wd
// with Qwen2's Q/K/V biases and Qwen3's per-head Q/K norms where the shape has them.
#include "train/forward.h"

#include <algorithm>
#include <cmath>

#include "kernels/threadpool.h"

namespace slim::train {

TrainBatch make_batch(const std::vector<const std::vector<int32_t>*>& seqs, int n_tok) {
  TrainBatch b;
  b.n_seq = (int)seqs.size();
  b.n_tok = n_tok;
  b.input.resize((size_t)b.n_seq * n_tok);
  b.target.resize((size_t)b.n_seq * n_tok);
  for (int s = 0; s < b.n_seq; ++s)
    for (int t = 0; t < n_tok; ++t) {
      b.input[(size_t)s * n_tok + t] = (*seqs[s])[t];
      b.target[(size_t)s * n_tok + t] = (*seqs[s])[t + 1];
    }
  return b;
}

namespace {

void zero(std::vector<float>& v, size_t n) { v.assign(n, 0.0f); }

void add_bias(float* y, const float* b, int rows, int n) {
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < n; ++i) y[(size_t)r * n + i] += b[i];
}

// db += sum over rows of dy.
void bias_grad(const float* dy, float* db, int rows, int n) {
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < n; ++i) db[i] += dy[(size_t)r * n + i];
}

}  // namespace

LossSums forward_backward(const TrainModel& m, const TrainBatch& b, const LossConfig& lc, float* grad, float scale,
                          Workspace& ws, ThreadPool* pool) {
  const Shape& s = m.shape;
  const int N = b.rows(), n = s.n_embd, nq = s.n_embd_q(), nkv = s.n_embd_kv(), ff = s.n_ff, V = s.n_vocab;
  const float eps = s.rms_eps;
  const float* W = m.w.data();
  auto w = [&](size_t off) { return W + off; };
  auto dw = [&](size_t off) { return grad + off; };
  const float* factors = m.rope_freqs.empty() ? nullptr : m.rope_freqs.data();
  const AttnShape as{b.n_seq, b.n_tok, s.n_head, s.n_head_kv, s.head_dim, 1.0f / std::sqrt((float)s.head_dim)};
  const size_t lm_head = s.tied ? m.tok_embd : m.output;

  ws.layers.resize(s.n_layer);
  ws.pos.resize(N);
  for (int r = 0; r < N; ++r) ws.pos[r] = r % b.n_tok;

  // ---------------------------------------------------------------- forward
  ws.x.resize((size_t)N * n);
  embedding_fwd(w(m.tok_embd), b.input.data(), ws.x.data(), N, n);
  for (int il = 0; il < s.n_layer; ++il) {
    const LayerOffsets& L = m.layers[il];
    Workspace::Layer& a = ws.layers[il];
    a.x_in = ws.x;
    a.xn1.resize((size_t)N * n), a.rstd1.resize(N);
    rms_norm_fwd(a.x_in.data(), w(L.attn_norm), a.xn1.data(), a.rstd1.data(), N, n, eps, pool);

    a.q.resize((size_t)N * nq), a.k.resize((size_t)N * nkv), a.v.resize((size_t)N * nkv);
    matmul_fwd(a.xn1.data(), w(L.wq), a.q.data(), N, n, nq, pool);
    matmul_fwd(a.xn1.data(), w(L.wk), a.k.data(), N, n, nkv, pool);
    matmul_fwd(a.xn1.data(), w(L.wv), a.v.data(), N, n, nkv, pool);
    if (s.qkv_bias) {
      add_bias(a.q.data(), w(L.bq), N, nq);
      add_bias(a.k.data(), w(L.bk), N, nkv);
      add_bias(a.v.data(), w(L.bv), N, nkv);
    }
    if (s.qk_norm) {  // per head, before RoPE; the pre-norm values are kept for the backward
      a.q_lin = a.q, a.k_lin = a.k;
      a.rstd_q.resize((size_t)N * s.n_head), a.rstd_k.resize((size_t)N * s.n_head_kv);
      rms_norm_fwd(a.q_lin.data(), w(L.q_norm), a.q.data(), a.rstd_q.data(), N * s.n_head, s.head_dim, eps, pool);
      rms_norm_fwd(a.k_lin.data(), w(L.k_norm), a.k.data(), a.rstd_k.data(), N * s.n_head_kv, s.head_dim, eps, pool);
    }
    rope(a.q.data(), ws.pos.data(), N, s.n_head, s.head_dim, s.n_rot, s.rope_freq_base, s.rope_type, factors, false, pool);
    rope(a.k.data(), ws.pos.data(), N, s.n_head_kv, s.head_dim, s.n_rot, s.rope_freq_base, s.rope_type, factors, false, pool);

    a.att.resize((size_t)N * nq);
    attention_fwd(a.q.data(), a.k.data(), a.v.data(), a.att.data(), as, pool);
    a.x_mid.resize((size_t)N * n);
    matmul_fwd(a.att.data(), w(L.wo), a.x_mid.data(), N, nq, n, pool);
    for (size_t i = 0; i < a.x_mid.size(); ++i) a.x_mid[i] += a.x_in[i];

    a.xn2.resize((size_t)N * n), a.rstd2.resize(N);
    rms_norm_fwd(a.x_mid.data(), w(L.ffn_norm), a.xn2.data(), a.rstd2.data(), N, n, eps, pool);
    a.g.resize((size_t)N * ff), a.u.resize((size_t)N * ff), a.h.resize((size_t)N * ff);
    matmul_fwd(a.xn2.data(), w(L.ffn_gate), a.g.data(), N, n, ff, pool);
    matmul_fwd(a.xn2.data(), w(L.ffn_up), a.u.data(), N, n, ff, pool);
    swiglu_fwd(a.g.data(), a.u.data(), a.h.data(), (int64_t)N * ff, pool);
    matmul_fwd(a.h.data(), w(L.ffn_down), ws.x.data(), N, ff, n, pool);
    for (size_t i = 0; i < ws.x.size(); ++i) ws.x[i] += a.x_mid[i];
  }
  ws.xf.resize((size_t)N * n), ws.rstdf.resize(N);
  rms_norm_fwd(ws.x.data(), w(m.output_norm), ws.xf.data(), ws.rstdf.data(), N, n, eps, pool);

  // ------------------------------------------- LM head and loss, in row chunks
  // The logits of a chunk are made, scored and differentiated before the next
  // chunk's: a large vocabulary never holds [N][n_vocab] floats at once.
  LossSums sums;
  sums.n_tokens = N;
  if (grad) zero(ws.dxf, (size_t)N * n);
  const int chunk = std::clamp((1 << 22) / std::max(V, 1), 16, std::max(N, 16));
  for (int r0 = 0; r0 < N; r0 += chunk) {
    const int rc = std::min(chunk, N - r0);
    ws.logits.resize((size_t)rc * V);
    const float* xf = ws.xf.data() + (size_t)r0 * n;
    matmul_fwd(xf, w(lm_head), ws.logits.data(), rc, n, V, pool);
    float* dl = nullptr;
    if (grad) ws.dlogits.resize((size_t)rc * V), dl = ws.dlogits.data();
    if (lc.distill) {
      const TeacherTopK tk{b.teacher_k, b.teacher_ids.data() + (size_t)r0 * b.teacher_k,
                           b.teacher_probs.data() + (size_t)r0 * b.teacher_k};
      const DistillLoss d = distill_loss(ws.logits.data(), tk, b.target.data() + r0, dl, rc, V, lc.temperature,
                                         lc.alpha, scale, pool);
      sums.kl += d.kl, sums.ce += d.ce;
      sums.loss += lc.alpha * lc.temperature * lc.temperature * d.kl + (1 - lc.alpha) * d.ce;
    } else {
      const double ce = cross_entropy(ws.logits.data(), b.target.data() + r0, dl, rc, V, scale, pool);
      sums.ce += ce, sums.loss += ce;
    }
    if (grad) {
      ws.scratch.resize((size_t)rc * V);
      matmul_bwd(xf, w(lm_head), dl, ws.dxf.data() + (size_t)r0 * n, dw(lm_head), rc, n, V, ws.scratch.data(), pool);
    }
  }
  if (!grad) return sums;

  // ---------------------------------------------------------------- backward
  // ws.dx is the gradient of the residual stream, carried down the layers.
  zero(ws.dx, (size_t)N * n);
  rms_norm_bwd(ws.x.data(), w(m.output_norm), ws.rstdf.data(), ws.dxf.data(), ws.dx.data(), dw(m.output_norm), N, n, pool);
  ws.scratch.resize((size_t)N * std::max({n, nq, ff}));
  for (int il = s.n_layer - 1; il >= 0; --il) {
    const LayerOffsets& L = m.layers[il];
    Workspace::Layer& a = ws.layers[il];
    // FFN: x_out = x_mid + h Wd^T
    zero(ws.dh, (size_t)N * ff);
    matmul_bwd(a.h.data(), w(L.ffn_down), ws.dx.data(), ws.dh.data(), dw(L.ffn_down), N, ff, n, ws.scratch.data(), pool);
    ws.dg.resize((size_t)N * ff), ws.du.resize((size_t)N * ff);
    swiglu_bwd(a.g.data(), a.u.data(), ws.dh.data(), ws.dg.data(), ws.du.data(), (int64_t)N * ff, pool);
    zero(ws.dxn, (size_t)N * n);
    matmul_bwd(a.xn2.data(), w(L.ffn_gate), ws.dg.data(), ws.dxn.data(), dw(L.ffn_gate), N, n, ff, ws.scratch.data(), pool);
    matmul_bwd(a.xn2.data(), w(L.ffn_up), ws.du.data(), ws.dxn.data(), dw(L.ffn_up), N, n, ff, ws.scratch.data(), pool);
    rms_norm_bwd(a.x_mid.data(), w(L.ffn_norm), a.rstd2.data(), ws.dxn.data(), ws.dx.data(), dw(L.ffn_norm), N, n, pool);

    // attention: x_mid = x_in + att Wo^T
    zero(ws.datt, (size_t)N * nq);
    matmul_bwd(a.att.data(), w(L.wo), ws.dx.data(), ws.datt.data(), dw(L.wo), N, nq, n, ws.scratch.data(), pool);
    zero(ws.dq, (size_t)N * nq), zero(ws.dk, (size_t)N * nkv), zero(ws.dv, (size_t)N * nkv);
    attention_bwd(a.q.data(), a.k.data(), a.v.data(), ws.datt.data(), ws.dq.data(), ws.dk.data(), ws.dv.data(), as, pool);
    rope(ws.dq.data(), ws.pos.data(), N, s.n_head, s.head_dim, s.n_rot, s.rope_freq_base, s.rope_type, factors, true, pool);
    rope(ws.dk.data(), ws.pos.data(), N, s.n_head_kv, s.head_dim, s.n_rot, s.rope_freq_base, s.rope_type, factors, true, pool);
    float* dq = ws.dq.data();
    float* dk = ws.dk.data();
    if (s.qk_norm) {
      zero(ws.dq_lin, (size_t)N * nq), zero(ws.dk_lin, (size_t)N * nkv);
      rms_norm_bwd(a.q_lin.data(), w(L.q_norm), a.rstd_q.data(), dq, ws.dq_lin.data(), dw(L.q_norm), N * s.n_head, s.head_dim, pool);
      rms_norm_bwd(a.k_lin.data(), w(L.k_norm), a.rstd_k.data(), dk, ws.dk_lin.data(), dw(L.k_norm), N * s.n_head_kv, s.head_dim, pool);
      dq = ws.dq_lin.data(), dk = ws.dk_lin.data();
    }
    if (s.qkv_bias) {
      bias_grad(dq, dw(L.bq), N, nq);
      bias_grad(dk, dw(L.bk), N, nkv);
      bias_grad(ws.dv.data(), dw(L.bv), N, nkv);
    }
    zero(ws.dxn, (size_t)N * n);
    matmul_bwd(a.xn1.data(), w(L.wq), dq, ws.dxn.data(), dw(L.wq), N, n, nq, ws.scratch.data(), pool);
    matmul_bwd(a.xn1.data(), w(L.wk), dk, ws.dxn.data(), dw(L.wk), N, n, nkv, ws.scratch.data(), pool);
    matmul_bwd(a.xn1.data(), w(L.wv), ws.dv.data(), ws.dxn.data(), dw(L.wv), N, n, nkv, ws.scratch.data(), pool);
    rms_norm_bwd(a.x_in.data(), w(L.attn_norm), a.rstd1.data(), ws.dxn.data(), ws.dx.data(), dw(L.attn_norm), N, n, pool);
  }
  embedding_bwd(ws.dx.data(), b.input.data(), dw(m.tok_embd), N, n);
  return sums;
}

}  // namespace slim::train
