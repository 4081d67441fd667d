// The training ops: each forward with the backward that goes with it, written
// out by hand (no autograd), as templates instantiated for float (training)
// and double (the finite-difference checks in tests/train/ops_test.cpp).
//
// Layout: activations are row-major [rows][n], a row a token. Backward
// functions ADD their input gradients into dx / dw (so a residual stream's
// gradient accumulates where several paths meet); the caller zeroes what must
// start at zero. Saved values a backward needs (rstd, the inputs) are named
// in each signature.
//
// Threads: a non-null pool splits rows (or heads) across threads; every output
// value is still computed by one thread in one order, so results do not
// depend on the thread count.
#pragma once

#include <cstdint>

#include "model/hparams.h"

namespace slim {
class ThreadPool;
}

namespace slim::train {

// y = x W^T: x [rows][in], W [out][in], y [rows][out]. Float goes through the
// dispatched loops (loops.h), double through plain loops.
template <class T>
void matmul_fwd(const T* x, const T* W, T* y, int rows, int in, int out, ThreadPool* pool);
// dx += dy W (skipped when dx is null); dW += dy^T x. `scratch` holds
// rows * out values (dy transposed).
template <class T>
void matmul_bwd(const T* x, const T* W, const T* dy, T* dx, T* dW, int rows, int in, int out, T* scratch,
                ThreadPool* pool);

// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row (saved for the backward).
template <class T>
void rms_norm_fwd(const T* x, const T* w, T* y, T* rstd, int rows, int n, T eps, ThreadPool* pool);
template <class T>
void rms_norm_bwd(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, int rows, int n,
                  ThreadPool* pool);

// Rotary position embedding in place on x [rows][n_head * head_dim], row r at
// position pos[r]; the first n_rot dims of each head rotate, pairs (2i, 2i+1)
// (Normal) or (i, i + n_rot/2) (Neox), angle pos * base^(-2i/n_rot) / factors[i]
// (factors may be null). The backward is the inverse rotation of the gradient
// (inverse = true): a rotation's transpose is its inverse.
template <class T>
void rope(T* x, const int32_t* pos, int rows, int n_head, int head_dim, int n_rot, float freq_base,
          RopeType type, const float* factors, bool inverse, ThreadPool* pool);

// Causal self-attention of n_seq sequences of n_tok tokens each, with grouped
// query heads: query head h reads KV head h / (n_head / n_head_kv).
// q [n_seq * n_tok][n_head * hd], k, v [n_seq * n_tok][n_head_kv * hd], out like q.
struct AttnShape {
  int n_seq = 1, n_tok = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 0;  // usually 1 / sqrt(head_dim)
};
template <class T>
void attention_fwd(const T* q, const T* k, const T* v, T* out, const AttnShape& s, ThreadPool* pool);
// The probabilities are recomputed from q and k (a [n_tok][n_tok] scratch a
// thread, allocated inside) instead of being kept: memory stays linear in the
// context. dq, dk, dv are added to.
template <class T>
void attention_bwd(const T* q, const T* k, const T* v, const T* dout, T* dq, T* dk, T* dv, const AttnShape& s,
                   ThreadPool* pool);

// h = silu(g) * u, silu(x) = x / (1 + e^-x). The backward writes (not adds) dg, du.
template <class T>
void swiglu_fwd(const T* g, const T* u, T* h, int64_t n, ThreadPool* pool);
template <class T>
void swiglu_bwd(const T* g, const T* u, const T* dh, T* dg, T* du, int64_t n, ThreadPool* pool);

// x[r] = E[tok[r]]; the backward adds dx[r] into dE[tok[r]] (one thread, in row
// order: tokens repeat).
template <class T>
void embedding_fwd(const T* E, const int32_t* tok, T* x, int rows, int n);
template <class T>
void embedding_bwd(const T* dx, const int32_t* tok, T* dE, int rows, int n);

// Cross-entropy of the rows of logits [rows][n_vocab] against targets:
// returns sum over rows of -log softmax(z)[target]; writes dz = scale * (softmax(z) - onehot).
template <class T>
double cross_entropy(const T* logits, const int32_t* target, T* dlogits, int rows, int n_vocab, T scale,
                     ThreadPool* pool);

// The teacher's next-token distribution at a temperature, truncated to its
// top k tokens and renormalised: ids [rows][k], probs [rows][k].
struct TeacherTopK {
  int k = 0;
  const int32_t* ids = nullptr;
  const float* probs = nullptr;
};

struct DistillLoss {
  double kl = 0;  // sum over rows of KL(p_teacher,tau || q_student,tau)
  double ce = 0;  // sum over rows of -log q_student(target) at temperature 1
};

// loss = alpha * tau^2 * KL(p_tau || q_tau) + (1 - alpha) * CE (Hinton et al.; the
// tau^2 keeps the soft term's gradient on the scale of the hard one's as tau
// changes). dz = scale * (alpha * tau * (q_tau - p_tau) + (1 - alpha) * (q - onehot)).
// The KL over the truncated teacher counts only its k tokens (the others have p = 0).
template <class T>
DistillLoss distill_loss(const T* logits, const TeacherTopK& teacher, const int32_t* target, T* dlogits, int rows,
                         int n_vocab, float tau, float alpha, T scale, ThreadPool* pool);

// Softmax at temperature tau of each row of logits, its top k (all when k >=
// n_vocab) renormalised: what the teacher gives distill_loss.
void teacher_top_k(const float* logits, int rows, int n_vocab, float tau, int k, int32_t* ids, float* probs,
                   ThreadPool* pool);

}  // namespace slim::train
