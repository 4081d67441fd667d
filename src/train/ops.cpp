// The training ops (ops.h). Forward and backward sit side by side so each
// backward can be read against the forward it differentiates.
#include "train/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "kernels/threadpool.h"
#include "train/loops.h"

namespace slim::train {

namespace {

// Runs fn(begin, end) over [0, n) on the pool in chunks of `grain`, or inline.
template <class Fn>
void for_range(ThreadPool* pool, int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (!pool || pool->size() == 1 || n <= grain) return fn(int64_t(0), n);
  pool->parallel_for(n, grain, [&](int64_t b, int64_t e) { fn(b, e); });
}

// Tiles of a [M][N] output, each computed by one call: M split in blocks of
// 16 rows, N in blocks of 256 columns, so a few rows still use every thread.
constexpr int kTileRows = 16, kTileCols = 256;

template <class Fn>
void for_tiles(ThreadPool* pool, int M, int N, Fn&& fn) {
  const int mb = (M + kTileRows - 1) / kTileRows, nb = (N + kTileCols - 1) / kTileCols;
  for_range(pool, (int64_t)mb * nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int m0 = (int)(t / nb) * kTileRows, n0 = (int)(t % nb) * kTileCols;
      fn(m0, std::min(kTileRows, M - m0), n0, std::min(kTileCols, N - n0));
    }
  });
}

template <class T>
void gemm_nt(int M, int N, int K, const T* A, int lda, const T* B, int ldb, T* C, int ldc, bool acc) {
  if constexpr (std::is_same_v<T, float>) {
    gemm_loops().gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, acc);
  } else {
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        T s = 0;
        for (int k = 0; k < K; ++k) s += A[(size_t)m * lda + k] * B[(size_t)n * ldb + k];
        C[(size_t)m * ldc + n] = acc ? C[(size_t)m * ldc + n] + s : s;
      }
  }
}

template <class T>
void gemm_nn(int M, int N, int K, const T* A, int lda, const T* B, int ldb, T* C, int ldc) {
  if constexpr (std::is_same_v<T, float>) {
    gemm_loops().gemm_nn(M, N, K, A, lda, B, ldb, C, ldc);
  } else {
    for (int m = 0; m < M; ++m)
      for (int k = 0; k < K; ++k)
        for (int n = 0; n < N; ++n) C[(size_t)m * ldc + n] += A[(size_t)m * lda + k] * B[(size_t)k * ldb + n];
  }
}

}  // namespace

// ---------------------------------------------------------------- matmul

template <class T>
void matmul_fwd(const T* x, const T* W, T* y, int rows, int in, int out, ThreadPool* pool) {
  for_tiles(pool, rows, out, [&](int m0, int mr, int n0, int nr) {
    gemm_nt(mr, nr, in, x + (size_t)m0 * in, in, W + (size_t)n0 * in, in, y + (size_t)m0 * out + n0, out, false);
  });
}

template <class T>
void matmul_bwd(const T* x, const T* W, const T* dy, T* dx, T* dW, int rows, int in, int out, T* scratch,
                ThreadPool* pool) {
  if (dx)  // dx [rows][in] += dy [rows][out] W [out][in]
    for_tiles(pool, rows, in, [&](int m0, int mr, int n0, int nr) {
      gemm_nn(mr, nr, out, dy + (size_t)m0 * out, out, W + n0, in, dx + (size_t)m0 * in + n0, in);
    });
  // dW [out][in] += dy^T [out][rows] x [rows][in]
  for_range(pool, out, 64, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o)
      for (int r = 0; r < rows; ++r) scratch[(size_t)o * rows + r] = dy[(size_t)r * out + o];
  });
  for_tiles(pool, out, in, [&](int m0, int mr, int n0, int nr) {
    gemm_nn(mr, nr, rows, scratch + (size_t)m0 * rows, rows, x + n0, in, dW + (size_t)m0 * in + n0, in);
  });
}

// ---------------------------------------------------------------- RMSNorm

template <class T>
void rms_norm_fwd(const T* x, const T* w, T* y, T* rstd, int rows, int n, T eps, ThreadPool* pool) {
  for_range(pool, rows, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + (size_t)r * n;
      T ss = 0;
      for (int i = 0; i < n; ++i) ss += xr[i] * xr[i];
      const T rs = T(1) / std::sqrt(ss / n + eps);
      rstd[r] = rs;
      T* yr = y + (size_t)r * n;
      for (int i = 0; i < n; ++i) yr[i] = xr[i] * rs * w[i];
    }
  });
}

// With g = dy * w: dx = rstd * g - x * rstd^3 * mean(g * x); dw = sum over rows of dy * x * rstd.
template <class T>
void rms_norm_bwd(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, int rows, int n,
                  ThreadPool* pool) {
  for_range(pool, rows, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + (size_t)r * n;
      const T* dyr = dy + (size_t)r * n;
      const T rs = rstd[r];
      T dot = 0;
      for (int i = 0; i < n; ++i) dot += dyr[i] * w[i] * xr[i];
      const T c = dot * rs * rs * rs / n;
      T* dxr = dx + (size_t)r * n;
      for (int i = 0; i < n; ++i) dxr[i] += rs * dyr[i] * w[i] - xr[i] * c;
    }
  });
  // Rows in order on one thread: the sum is the same for any thread count.
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + (size_t)r * n;
    const T* dyr = dy + (size_t)r * n;
    const T rs = rstd[r];
    for (int i = 0; i < n; ++i) dw[i] += dyr[i] * xr[i] * rs;
  }
}

// ---------------------------------------------------------------- RoPE

template <class T>
void rope(T* x, const int32_t* pos, int rows, int n_head, int head_dim, int n_rot, float freq_base, RopeType type,
          const float* factors, bool inverse, ThreadPool* pool) {
  const int half = n_rot / 2;
  // Angle of pair i: theta_i = pos * base^(-2i / n_rot) / factor_i, as the inference forward computes it.
  std::vector<double> inv_freq(half);
  for (int i = 0; i < half; ++i)
    inv_freq[i] = std::pow((double)freq_base, -2.0 * i / n_rot) / (factors ? (double)factors[i] : 1.0);
  const int stride = type == RopeType::Neox ? half : 1;  // distance between a pair's two dims
  const int step = type == RopeType::Neox ? 1 : 2;       // from one pair's first dim to the next
  for_range(pool, rows, 32, [&](int64_t b, int64_t e) {
    std::vector<T> cs(half), sn(half);
    for (int64_t r = b; r < e; ++r) {
      for (int i = 0; i < half; ++i) {
        const double a = pos[r] * inv_freq[i];
        cs[i] = (T)std::cos(a);
        sn[i] = inverse ? -(T)std::sin(a) : (T)std::sin(a);
      }
      for (int h = 0; h < n_head; ++h) {
        T* xh = x + (size_t)r * n_head * head_dim + (size_t)h * head_dim;
        for (int i = 0; i < half; ++i) {
          T& a0 = xh[i * step];
          T& a1 = xh[i * step + stride];
          const T v0 = a0, v1 = a1;
          a0 = v0 * cs[i] - v1 * sn[i];
          a1 = v0 * sn[i] + v1 * cs[i];
        }
      }
    }
  });
}

// ---------------------------------------------------------------- attention

namespace {

// Softmax probabilities of query row i of head h over keys 0..i (causal).
template <class T>
void attn_probs(const T* qi, const T* k, int i, int kv_stride, int hd, T scale, T* p) {
  T mx = -INFINITY;
  for (int j = 0; j <= i; ++j) {
    const T* kj = k + (size_t)j * kv_stride;
    T s = 0;
    for (int d = 0; d < hd; ++d) s += qi[d] * kj[d];
    p[j] = s * scale;
    mx = std::max(mx, p[j]);
  }
  T sum = 0;
  for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
  const T inv = T(1) / sum;
  for (int j = 0; j <= i; ++j) p[j] *= inv;
}

}  // namespace

template <class T>
void attention_fwd(const T* q, const T* k, const T* v, T* out, const AttnShape& s, ThreadPool* pool) {
  const int hd = s.head_dim, group = s.n_head / s.n_head_kv;
  const int q_stride = s.n_head * hd, kv_stride = s.n_head_kv * hd;
  for_range(pool, (int64_t)s.n_seq * s.n_head_kv, 1, [&](int64_t b, int64_t e) {
    std::vector<T> p(s.n_tok);
    for (int64_t task = b; task < e; ++task) {
      const int seq = (int)(task / s.n_head_kv), g = (int)(task % s.n_head_kv);
      const size_t base = (size_t)seq * s.n_tok;
      const T* kg = k + base * kv_stride + (size_t)g * hd;
      const T* vg = v + base * kv_stride + (size_t)g * hd;
      for (int h = g * group; h < (g + 1) * group; ++h)
        for (int i = 0; i < s.n_tok; ++i) {
          const T* qi = q + (base + i) * q_stride + (size_t)h * hd;
          attn_probs(qi, kg, i, kv_stride, hd, (T)s.scale, p.data());
          T* oi = out + (base + i) * q_stride + (size_t)h * hd;
          std::fill(oi, oi + hd, T(0));
          for (int j = 0; j <= i; ++j) {
            const T* vj = vg + (size_t)j * kv_stride;
            for (int d = 0; d < hd; ++d) oi[d] += p[j] * vj[d];
          }
        }
    }
  });
}

// For each query row i: dp_j = dout_i . v_j, dv_j += p_j dout_i,
// ds_j = p_j (dp_j - sum_j' p_j' dp_j'), dq_i += scale sum_j ds_j k_j,
// dk_j += scale ds_j q_i. One task owns a sequence's KV head with all the query
// heads that read it, so its dk and dv rows have a single writer.
template <class T>
void attention_bwd(const T* q, const T* k, const T* v, const T* dout, T* dq, T* dk, T* dv, const AttnShape& s,
                   ThreadPool* pool) {
  const int hd = s.head_dim, group = s.n_head / s.n_head_kv;
  const int q_stride = s.n_head * hd, kv_stride = s.n_head_kv * hd;
  const T scale = (T)s.scale;
  for_range(pool, (int64_t)s.n_seq * s.n_head_kv, 1, [&](int64_t b, int64_t e) {
    std::vector<T> p(s.n_tok), dp(s.n_tok);
    for (int64_t task = b; task < e; ++task) {
      const int seq = (int)(task / s.n_head_kv), g = (int)(task % s.n_head_kv);
      const size_t base = (size_t)seq * s.n_tok;
      const size_t kv_off = base * kv_stride + (size_t)g * hd;
      for (int h = g * group; h < (g + 1) * group; ++h)
        for (int i = 0; i < s.n_tok; ++i) {
          const size_t q_off = (base + i) * q_stride + (size_t)h * hd;
          const T* qi = q + q_off;
          const T* doi = dout + q_off;
          attn_probs(qi, k + kv_off, i, kv_stride, hd, scale, p.data());
          T dsum = 0;
          for (int j = 0; j <= i; ++j) {
            const T* vj = v + kv_off + (size_t)j * kv_stride;
            T* dvj = dv + kv_off + (size_t)j * kv_stride;
            T d = 0;
            for (int c = 0; c < hd; ++c) {
              d += doi[c] * vj[c];
              dvj[c] += p[j] * doi[c];
            }
            dp[j] = d;
            dsum += p[j] * d;
          }
          T* dqi = dq + q_off;
          for (int j = 0; j <= i; ++j) {
            const T ds = p[j] * (dp[j] - dsum) * scale;
            const T* kj = k + kv_off + (size_t)j * kv_stride;
            T* dkj = dk + kv_off + (size_t)j * kv_stride;
            for (int c = 0; c < hd; ++c) {
              dqi[c] += ds * kj[c];
              dkj[c] += ds * qi[c];
            }
          }
        }
    }
  });
}

// ---------------------------------------------------------------- SwiGLU

template <class T>
void swiglu_fwd(const T* g, const T* u, T* h, int64_t n, ThreadPool* pool) {
  for_range(pool, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) h[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
  });
}

// d silu(g)/dg = sigma(g) (1 + g (1 - sigma(g))).
template <class T>
void swiglu_bwd(const T* g, const T* u, const T* dh, T* dg, T* du, int64_t n, ThreadPool* pool) {
  for_range(pool, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T sg = T(1) / (T(1) + std::exp(-g[i]));
      du[i] = dh[i] * g[i] * sg;
      dg[i] = dh[i] * u[i] * sg * (T(1) + g[i] * (T(1) - sg));
    }
  });
}

// ---------------------------------------------------------------- embeddings

template <class T>
void embedding_fwd(const T* E, const int32_t* tok, T* x, int rows, int n) {
  for (int r = 0; r < rows; ++r) std::copy(E + (size_t)tok[r] * n, E + (size_t)(tok[r] + 1) * n, x + (size_t)r * n);
}

template <class T>
void embedding_bwd(const T* dx, const int32_t* tok, T* dE, int rows, int n) {
  for (int r = 0; r < rows; ++r) {
    T* d = dE + (size_t)tok[r] * n;
    const T* s = dx + (size_t)r * n;
    for (int i = 0; i < n; ++i) d[i] += s[i];
  }
}

// ---------------------------------------------------------------- losses

namespace {

// log sum_j exp(z_j / tau), in double.
template <class T>
double log_sum_exp(const T* z, int n, double inv_tau) {
  double mx = -INFINITY;
  for (int j = 0; j < n; ++j) mx = std::max(mx, (double)z[j] * inv_tau);
  double s = 0;
  for (int j = 0; j < n; ++j) s += std::exp((double)z[j] * inv_tau - mx);
  return mx + std::log(s);
}

}  // namespace

template <class T>
double cross_entropy(const T* logits, const int32_t* target, T* dlogits, int rows, int n_vocab, T scale,
                     ThreadPool* pool) {
  std::vector<double> nll(rows);
  for_range(pool, rows, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* z = logits + (size_t)r * n_vocab;
      const double lse = log_sum_exp(z, n_vocab, 1.0);
      nll[r] = lse - (double)z[target[r]];
      if (!dlogits) continue;
      T* dz = dlogits + (size_t)r * n_vocab;
      for (int j = 0; j < n_vocab; ++j) dz[j] = scale * (T)std::exp((double)z[j] - lse);
      dz[target[r]] -= scale;
    }
  });
  return std::accumulate(nll.begin(), nll.end(), 0.0);
}

template <class T>
DistillLoss distill_loss(const T* logits, const TeacherTopK& teacher, const int32_t* target, T* dlogits, int rows,
                         int n_vocab, float tau, float alpha, T scale, ThreadPool* pool) {
  std::vector<double> kl(rows), ce(rows);
  const double inv_tau = 1.0 / tau;
  for_range(pool, rows, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* z = logits + (size_t)r * n_vocab;
      const int32_t* ids = teacher.ids + (size_t)r * teacher.k;
      const float* pk = teacher.probs + (size_t)r * teacher.k;
      const double lse_t = log_sum_exp(z, n_vocab, inv_tau);
      const double lse_1 = tau == 1.0f ? lse_t : log_sum_exp(z, n_vocab, 1.0);
      double klr = 0;
      for (int i = 0; i < teacher.k; ++i)
        if (pk[i] > 0) klr += pk[i] * (std::log((double)pk[i]) - ((double)z[ids[i]] * inv_tau - lse_t));
      kl[r] = klr;
      ce[r] = lse_1 - (double)z[target[r]];
      if (!dlogits) continue;
      T* dz = dlogits + (size_t)r * n_vocab;
      const double a = alpha * tau, c = 1.0 - alpha;
      for (int j = 0; j < n_vocab; ++j)
        dz[j] = (T)(scale * (a * std::exp((double)z[j] * inv_tau - lse_t) + c * std::exp((double)z[j] - lse_1)));
      for (int i = 0; i < teacher.k; ++i) dz[ids[i]] -= (T)(scale * a * pk[i]);
      dz[target[r]] -= (T)(scale * c);
    }
  });
  DistillLoss out;
  for (int r = 0; r < rows; ++r) out.kl += kl[r], out.ce += ce[r];
  return out;
}

void teacher_top_k(const float* logits, int rows, int n_vocab, float tau, int k, int32_t* ids, float* probs,
                   ThreadPool* pool) {
  k = std::min(k, n_vocab);
  for_range(pool, rows, 4, [&](int64_t b, int64_t e) {
    std::vector<int32_t> order(n_vocab);
    for (int64_t r = b; r < e; ++r) {
      const float* z = logits + (size_t)r * n_vocab;
      std::iota(order.begin(), order.end(), 0);
      // Larger logit first, lower id on ties: the same selection on every run.
      auto before = [z](int32_t a, int32_t c) { return z[a] > z[c] || (z[a] == z[c] && a < c); };
      if (k < n_vocab) std::nth_element(order.begin(), order.begin() + k, order.end(), before);
      std::sort(order.begin(), order.begin() + k, before);
      const double inv_tau = 1.0 / tau, mx = z[order[0]] * inv_tau;
      double sum = 0;
      std::vector<double> p(k);
      for (int i = 0; i < k; ++i) sum += (p[i] = std::exp(z[order[i]] * inv_tau - mx));
      for (int i = 0; i < k; ++i) {
        ids[(size_t)r * k + i] = order[i];
        probs[(size_t)r * k + i] = (float)(p[i] / sum);
      }
    }
  });
}

#define SLIM_TRAIN_OPS(T)                                                                                        \
  template void matmul_fwd<T>(const T*, const T*, T*, int, int, int, ThreadPool*);                              \
  template void matmul_bwd<T>(const T*, const T*, const T*, T*, T*, int, int, int, T*, ThreadPool*);            \
  template void rms_norm_fwd<T>(const T*, const T*, T*, T*, int, int, T, ThreadPool*);                          \
  template void rms_norm_bwd<T>(const T*, const T*, const T*, const T*, T*, T*, int, int, ThreadPool*);         \
  template void rope<T>(T*, const int32_t*, int, int, int, int, float, RopeType, const float*, bool,            \
                        ThreadPool*);                                                                           \
  template void attention_fwd<T>(const T*, const T*, const T*, T*, const AttnShape&, ThreadPool*);             \
  template void attention_bwd<T>(const T*, const T*, const T*, const T*, T*, T*, T*, const AttnShape&,          \
                                 ThreadPool*);                                                                  \
  template void swiglu_fwd<T>(const T*, const T*, T*, int64_t, ThreadPool*);                                    \
  template void swiglu_bwd<T>(const T*, const T*, const T*, T*, T*, int64_t, ThreadPool*);                      \
  template void embedding_fwd<T>(const T*, const int32_t*, T*, int, int);                                       \
  template void embedding_bwd<T>(const T*, const int32_t*, T*, int, int);                                       \
  template double cross_entropy<T>(const T*, const int32_t*, T*, int, int, T, ThreadPool*);                     \
  template DistillLoss distill_loss<T>(const T*, const TeacherTopK&, const int32_t*, T*, int, int, float, float, \
                                       T, ThreadPool*);

SLIM_TRAIN_OPS(float)
SLIM_TRAIN_OPS(double)

}  // namespace slim::train
