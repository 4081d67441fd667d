// Every backward op against central finite differences of its forward, in
// double (the F64 reference), and the vector matmul loops of every available
// ISA against their scalar twins.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "train/loops.h"
#include "train/ops.h"

namespace slim::train {
namespace {

using Vec = std::vector<double>;

Vec random_vec(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-scale, scale);
  Vec v(n);
  for (double& x : v) x = d(rng);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic[i] == d loss / d x[i] for loss = f(x), by central differences.
void expect_gradient(const char* what, Vec& x, const Vec& analytic, const std::function<double()>& f,
                     double tol = 1e-6) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const double h = 1e-5;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    const double numeric = (up - down) / (2 * h);
    const double err = std::abs(numeric - analytic[i]) / std::max(1.0, std::abs(numeric));
    EXPECT_LT(err, tol) << what << "[" << i << "]: analytic " << analytic[i] << " numeric " << numeric;
    if (err >= tol) return;  // one line per broken op is enough
  }
  EXPECT_GT(x.size(), 0u) << what;
}

class OpsGrad : public ::testing::TestWithParam<int> {  // parameter: threads (1: no pool)
 protected:
  void SetUp() override {
    if (GetParam() > 1) pool_ = std::make_unique<ThreadPool>(GetParam());
  }
  ThreadPool* pool() { return pool_.get(); }
  std::unique_ptr<ThreadPool> pool_;
};

TEST_P(OpsGrad, Matmul) {
  const int rows = 5, in = 7, out = 6;
  Vec x = random_vec(rows * in, 1), W = random_vec(out * in, 2), R = random_vec(rows * out, 3);
  auto loss = [&] {
    Vec y(rows * out);
    matmul_fwd(x.data(), W.data(), y.data(), rows, in, out, pool());
    return dot(y, R);
  };
  Vec dx(rows * in, 0.0), dW(out * in, 0.0), scratch(rows * out);
  matmul_bwd(x.data(), W.data(), R.data(), dx.data(), dW.data(), rows, in, out, scratch.data(), pool());
  expect_gradient("matmul dx", x, dx, loss);
  expect_gradient("matmul dW", W, dW, loss);
}

TEST_P(OpsGrad, RmsNorm) {
  const int rows = 4, n = 9;
  Vec x = random_vec(rows * n, 4), w = random_vec(n, 5), R = random_vec(rows * n, 6);
  auto loss = [&] {
    Vec y(rows * n), rstd(rows);
    rms_norm_fwd(x.data(), w.data(), y.data(), rstd.data(), rows, n, 1e-5, pool());
    return dot(y, R);
  };
  Vec y(rows * n), rstd(rows), dx(rows * n, 0.0), dw(n, 0.0);
  rms_norm_fwd(x.data(), w.data(), y.data(), rstd.data(), rows, n, 1e-5, pool());
  rms_norm_bwd(x.data(), w.data(), rstd.data(), R.data(), dx.data(), dw.data(), rows, n, pool());
  expect_gradient("rms_norm dx", x, dx, loss);
  expect_gradient("rms_norm dw", w, dw, loss);
}

TEST_P(OpsGrad, RopeBothLayoutsAndFactors) {
  const int rows = 5, n_head = 3, head_dim = 8;
  std::vector<int32_t> pos = {0, 1, 2, 7, 300};
  const float factors[3] = {1.0f, 2.5f, 8.0f};
  for (RopeType type : {RopeType::Normal, RopeType::Neox})
    for (int n_rot : {8, 6})
      for (const float* f : {(const float*)nullptr, factors}) {
        if (f && n_rot != 6) continue;
        Vec x = random_vec(rows * n_head * head_dim, 7), R = random_vec(x.size(), 8);
        auto loss = [&] {
          Vec y = x;
          rope(y.data(), pos.data(), rows, n_head, head_dim, n_rot, 10000.0f, type, f, false, pool());
          return dot(y, R);
        };
        Vec dx = R;
        rope(dx.data(), pos.data(), rows, n_head, head_dim, n_rot, 10000.0f, type, f, true, pool());
        expect_gradient(type == RopeType::Neox ? "rope neox dx" : "rope normal dx", x, dx, loss);
      }
}

TEST_P(OpsGrad, AttentionGqa) {
  for (int n_head_kv : {1, 2, 4}) {
    const AttnShape s{2, 5, 4, n_head_kv, 3, 0.7f};
    const size_t nq = (size_t)s.n_seq * s.n_tok * s.n_head * s.head_dim;
    const size_t nkv = (size_t)s.n_seq * s.n_tok * s.n_head_kv * s.head_dim;
    Vec q = random_vec(nq, 9), k = random_vec(nkv, 10), v = random_vec(nkv, 11), R = random_vec(nq, 12);
    auto loss = [&] {
      Vec out(nq);
      attention_fwd(q.data(), k.data(), v.data(), out.data(), s, pool());
      return dot(out, R);
    };
    Vec dq(nq, 0.0), dk(nkv, 0.0), dv(nkv, 0.0);
    attention_bwd(q.data(), k.data(), v.data(), R.data(), dq.data(), dk.data(), dv.data(), s, pool());
    expect_gradient("attention dq", q, dq, loss);
    expect_gradient("attention dk", k, dk, loss);
    expect_gradient("attention dv", v, dv, loss);
  }
}

TEST(OpsForward, AttentionIsCausal) {
  // Changing a later token's key or value never changes an earlier output.
  const AttnShape s{1, 6, 2, 1, 4, 0.5f};
  Vec q = random_vec(6 * 8, 1), k = random_vec(6 * 4, 2), v = random_vec(6 * 4, 3);
  Vec a(6 * 8), b(6 * 8);
  attention_fwd(q.data(), k.data(), v.data(), a.data(), s, nullptr);
  for (int i = 16; i < 24; ++i) k[i] += 1.0, v[i] -= 2.0;  // token 4
  attention_fwd(q.data(), k.data(), v.data(), b.data(), s, nullptr);
  for (int i = 0; i < 4 * 8; ++i) EXPECT_EQ(a[i], b[i]) << i;
  EXPECT_NE(a[4 * 8], b[4 * 8]);
}

TEST_P(OpsGrad, Swiglu) {
  const int n = 40;
  Vec g = random_vec(n, 13, 4.0), u = random_vec(n, 14), R = random_vec(n, 15);
  auto loss = [&] {
    Vec h(n);
    swiglu_fwd(g.data(), u.data(), h.data(), n, pool());
    return dot(h, R);
  };
  Vec dg(n), du(n);
  swiglu_bwd(g.data(), u.data(), R.data(), dg.data(), du.data(), n, pool());
  expect_gradient("swiglu dg", g, dg, loss);
  expect_gradient("swiglu du", u, du, loss);
}

TEST_P(OpsGrad, EmbeddingWithRepeatedTokens) {
  const int V = 6, n = 5, rows = 7;
  std::vector<int32_t> tok = {3, 1, 3, 0, 5, 3, 1};
  Vec E = random_vec(V * n, 16), R = random_vec(rows * n, 17);
  auto loss = [&] {
    Vec x(rows * n);
    embedding_fwd(E.data(), tok.data(), x.data(), rows, n);
    return dot(x, R);
  };
  Vec dE(V * n, 0.0);
  embedding_bwd(R.data(), tok.data(), dE.data(), rows, n);
  expect_gradient("embedding dE", E, dE, loss);
}

TEST_P(OpsGrad, CrossEntropy) {
  const int rows = 4, V = 11;
  std::vector<int32_t> target = {0, 10, 3, 3};
  Vec z = random_vec(rows * V, 18, 3.0);
  const double scale = 0.25;
  auto loss = [&] { return scale * cross_entropy(z.data(), target.data(), (double*)nullptr, rows, V, scale, pool()); };
  Vec dz(rows * V);
  const double sum = cross_entropy(z.data(), target.data(), dz.data(), rows, V, scale, pool());
  expect_gradient("cross_entropy dz", z, dz, loss);
  // the value itself: sum over rows of log sum_j e^z_j - z_target
  double want = 0;
  for (int r = 0; r < rows; ++r) {
    double se = 0;
    for (int j = 0; j < V; ++j) se += std::exp(z[r * V + j]);
    want += std::log(se) - z[r * V + target[r]];
  }
  EXPECT_NEAR(sum, want, 1e-12 * rows * V);
}

TEST_P(OpsGrad, DistillLossTruncatedTeacher) {
  const int rows = 3, V = 9, k = 4;
  std::vector<int32_t> target = {2, 8, 0};
  // A teacher from its own logits, truncated to its top 4 at the temperature.
  std::vector<float> tz(rows * V);
  {
    Vec t = random_vec(rows * V, 19, 3.0);
    for (int i = 0; i < rows * V; ++i) tz[i] = (float)t[i];
  }
  for (float tau : {1.0f, 2.0f})
    for (float alpha : {0.0f, 0.6f, 1.0f}) {
      std::vector<int32_t> ids(rows * k);
      std::vector<float> probs(rows * k);
      teacher_top_k(tz.data(), rows, V, tau, k, ids.data(), probs.data(), pool());
      const TeacherTopK teacher{k, ids.data(), probs.data()};
      Vec z = random_vec(rows * V, 20, 2.0);
      auto loss = [&] {
        DistillLoss d = distill_loss(z.data(), teacher, target.data(), (double*)nullptr, rows, V, tau, alpha, 1.0, pool());
        return alpha * tau * tau * d.kl + (1 - alpha) * d.ce;
      };
      Vec dz(rows * V);
      distill_loss(z.data(), teacher, target.data(), dz.data(), rows, V, tau, alpha, 1.0, pool());
      expect_gradient("distill dz", z, dz, loss);
    }
}

INSTANTIATE_TEST_SUITE_P(Threads, OpsGrad, ::testing::Values(1, 3));

TEST(OpsTeacher, TopKIsSortedRenormalisedAndFullWhenKIsVocab) {
  const int V = 7;
  const float z[V] = {0.5f, 2.0f, -1.0f, 2.0f, 0.0f, 3.0f, 1.0f};
  std::vector<int32_t> ids(3);
  std::vector<float> p(3);
  teacher_top_k(z, 1, V, 1.0f, 3, ids.data(), p.data(), nullptr);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 1, 3}));  // ties: the lower id first
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
  EXPECT_NEAR(p[0] / p[1], std::exp(1.0), 1e-5);
  std::vector<int32_t> all(V);
  std::vector<float> pa(V);
  teacher_top_k(z, 1, V, 2.0f, 100, all.data(), pa.data(), nullptr);
  double sum = 0, ref = 0;
  for (int j = 0; j < V; ++j) sum += pa[j], ref += std::exp(z[j] / 2.0);
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_NEAR(pa[0], std::exp(3.0 / 2.0) / ref, 1e-6);  // id 5, the largest, at tau 2
}

// The float path of each op against the double one (loops of the active ISA).
TEST(OpsFloat, MatmulFloatMatchesDouble) {
  const int rows = 37, in = 70, out = 45;
  Vec x = random_vec(rows * in, 21), W = random_vec(out * in, 22), R = random_vec(rows * out, 23);
  std::vector<float> xf(x.begin(), x.end()), Wf(W.begin(), W.end()), Rf(R.begin(), R.end());
  Vec y(rows * out), dx(rows * in, 0.0), dW(out * in, 0.0), scratch(rows * out);
  std::vector<float> yf(rows * out), dxf(rows * in, 0.0f), dWf(out * in, 0.0f), sf(rows * out);
  ThreadPool pool(2);
  matmul_fwd(x.data(), W.data(), y.data(), rows, in, out, nullptr);
  matmul_fwd(xf.data(), Wf.data(), yf.data(), rows, in, out, &pool);
  matmul_bwd(x.data(), W.data(), R.data(), dx.data(), dW.data(), rows, in, out, scratch.data(), nullptr);
  matmul_bwd(xf.data(), Wf.data(), Rf.data(), dxf.data(), dWf.data(), rows, in, out, sf.data(), &pool);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(yf[i], y[i], 1e-4) << i;
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dxf[i], dx[i], 1e-4) << i;
  for (size_t i = 0; i < dW.size(); ++i) EXPECT_NEAR(dWf[i], dW[i], 1e-4) << i;
}

// Every ISA's loops against the scalar reference, on sizes with tails.
TEST(TrainLoops, EveryIsaMatchesScalar) {
  int tested = 0;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    ++tested;
    const GemmLoops& t = gemm_loops(isa);
    EXPECT_EQ(t.isa, isa);
    for (int M : {1, 3, 16})
      for (int N : {1, 5, 17, 64})
        for (int K : {1, 7, 8, 33, 100}) {
          std::mt19937 rng(M * 1000 + N * 10 + K);
          std::uniform_real_distribution<float> d(-1, 1);
          const int lda = K + 3, ldb = K + 1, ldc = N + 2;
          std::vector<float> A(M * lda), B(N * ldb), C0(M * ldc), C1;
          for (float& v : A) v = d(rng);
          for (float& v : B) v = d(rng);
          for (float& v : C0) v = d(rng);
          A[0] = 0;  // a zero run must not be skipped wrongly in gemm_nn
          for (bool acc : {false, true}) {
            std::vector<float> ref = C0;
            C1 = C0;
            gemm_nt_ref(M, N, K, A.data(), lda, B.data(), ldb, ref.data(), ldc, acc);
            t.gemm_nt(M, N, K, A.data(), lda, B.data(), ldb, C1.data(), ldc, acc);
            for (int m = 0; m < M; ++m)
              for (int n = 0; n < N; ++n)
                ASSERT_NEAR(C1[m * ldc + n], ref[m * ldc + n], 1e-5 * K + 1e-6)
                    << isa_name(isa) << " nt " << M << "x" << N << "x" << K;
            // padding columns untouched
            for (int m = 0; m < M; ++m) ASSERT_EQ(C1[m * ldc + N], C0[m * ldc + N]);
          }
          // gemm_nn: A [M][K], B [K][N]
          std::vector<float> B2(K * (N + 1));
          for (float& v : B2) v = d(rng);
          std::vector<float> ref = C0, out = C0;
          gemm_nn_ref(M, N, K, A.data(), lda, B2.data(), N + 1, ref.data(), ldc);
          t.gemm_nn(M, N, K, A.data(), lda, B2.data(), N + 1, out.data(), ldc);
          for (int m = 0; m < M; ++m)
            for (int n = 0; n < N; ++n)
              ASSERT_NEAR(out[m * ldc + n], ref[m * ldc + n], 1e-5 * K + 1e-6)
                  << isa_name(isa) << " nn " << M << "x" << N << "x" << K;
        }
  }
  EXPECT_GE(tested, 1);
}

}  // namespace
}  // namespace slim::train
