// matmul against a naive reference: dequantize the weights, convert the
// activations to the dot partner type with the scalar reference, dot in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/matmul.h"

namespace slim {
namespace {

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct Reference {
  std::vector<double> y;    // [t][r]
  std::vector<double> mag;  // sum |w*x| per output, for the tolerance
};

Reference naive(GgmlType type, const std::vector<uint8_t>& wq, int64_t rows, int64_t cols,
                const std::vector<float>& x, int n_tokens) {
  const TypeTraits& tr = type_traits(type);
  const TypeTraits& at = type_traits(tr.vec_dot_type);
  std::vector<float> w((size_t)(rows * cols));
  tr.to_float(wq.data(), w.data(), rows * cols);
  std::vector<float> xa((size_t)(n_tokens * cols));
  std::vector<uint8_t> tmp(row_size(tr.vec_dot_type, cols));
  for (int t = 0; t < n_tokens; ++t) {
    at.from_float(x.data() + t * cols, tmp.data(), cols);
    at.to_float(tmp.data(), xa.data() + t * cols, cols);
  }
  Reference ref;
  ref.y.resize((size_t)(rows * n_tokens));
  ref.mag.resize(ref.y.size());
  for (int t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0, m = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double p = (double)w[(size_t)(r * cols + c)] * xa[(size_t)(t * cols + c)];
        s += p;
        m += std::fabs(p);
      }
      ref.y[(size_t)(t * rows + r)] = s;
      ref.mag[(size_t)(t * rows + r)] = m;
    }
  return ref;
}

TEST(Matmul, MatchesNaiveReferenceOnEveryIsa) {
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                            GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                            GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                            GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};
  ThreadPool pool(2);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    const KernelTable& kt = kernel_table(isa);
    for (GgmlType type : types) {
      const int64_t bs = type_traits(type).block_size;
      const int64_t cols = bs == 256 ? 512 : (bs == 32 ? 160 : 200);
      const int64_t rows = 37;  // not a multiple of any chunk or tile
      auto wf = random_values(rows * cols, 3);
      std::vector<uint8_t> wq(row_size(type, cols) * rows);
      type_traits(type).from_float(wf.data(), wq.data(), rows * cols);
      Weight w{type, cols, rows, wq.data(), "test"};
      ASSERT_TRUE(matmul_check(w).ok());
      for (int n_tokens : {1, 2, 3, 4, 5, 6, 7, 16, 21, 33}) {  // 16+: the panel GEMM where there is one
        SCOPED_TRACE(std::string(isa_name(isa)) + " " + type_name(type) + " tokens=" + std::to_string(n_tokens));
        auto x = random_values(cols * n_tokens, 100 + n_tokens);
        Reference ref = naive(type, wq, rows, cols, x, n_tokens);
        std::vector<float> y((size_t)(rows * n_tokens), NAN);
        matmul(w, x.data(), n_tokens, y.data(), pool, kt);
        for (size_t i = 0; i < y.size(); ++i) {
          // SIMD activation rounding may move one quant by a step: allow 1/127 of a block's share
          // Q4_1/Q5_1 use the fp16-rounded s = d*sum(q) of Q8_1 blocks (as ggml does)
          const double q81 = type_traits(type).vec_dot_type == GgmlType::Q8_1 ? 1e-3 * ref.mag[i] : 0.0;
          const double tol = 1e-5 * ref.mag[i] + 1e-5 + q81 +
                             (isa == Isa::scalar ? 0.0 : 0.01 * ref.mag[i] / std::sqrt((double)cols));
          ASSERT_NEAR(y[i], ref.y[i], tol) << "output " << i;
        }
      }
    }
  }
}

TEST(Matmul, LargerShapesAgreeAcrossIsasAndThreadCounts) {
  const int64_t rows = 301, cols = 1024;
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16}) {
    auto wf = random_values(rows * cols, 9);
    std::vector<uint8_t> wq(row_size(type, cols) * rows);
    type_traits(type).from_float(wf.data(), wq.data(), rows * cols);
    Weight w{type, cols, rows, wq.data(), "test"};
    const int n_tokens = 13;
    auto x = random_values(cols * n_tokens, 10);
    ThreadPool one(1);
    std::vector<float> base((size_t)(rows * n_tokens));
    matmul(w, x.data(), n_tokens, base.data(), one, kernel_table(Isa::scalar));
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
      if (!isa_available(isa)) continue;
      for (int nt : {1, 2, 3}) {
        ThreadPool pool(nt);
        std::vector<float> y((size_t)(rows * n_tokens));
        matmul(w, x.data(), n_tokens, y.data(), pool, kernel_table(isa));
        double err = 0, norm = 0;
        for (size_t i = 0; i < y.size(); ++i) {
          err += (y[i] - base[i]) * (double)(y[i] - base[i]);
          norm += (double)base[i] * base[i];
        }
        EXPECT_LT(std::sqrt(err / norm), isa == Isa::scalar ? 1e-7 : 2e-3)
            << type_name(type) << " " << isa_name(isa) << " threads " << nt;
      }
    }
  }
}

// A row slice (fused QKV / gate|up) written with its own stride equals the
// same rows of the full product.
TEST(Matmul, RowSliceMatchesFullProduct) {
  const int64_t rows = 96, cols = 256;
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F32}) {
    auto wf = random_values(rows * cols, 21);
    std::vector<uint8_t> wq(row_size(type, cols) * rows);
    type_traits(type).from_float(wf.data(), wq.data(), rows * cols);
    Weight w{type, cols, rows, wq.data(), "test"};
    const int n_tokens = 5;
    auto x = random_values(cols * n_tokens, 22);
    std::vector<float> full((size_t)(rows * n_tokens));
    matmul(w, x.data(), n_tokens, full.data(), pool);
    const int64_t r0 = 37, r1 = 81, ldy = 50;
    std::vector<float> part((size_t)(ldy * n_tokens), -7.0f);
    matmul_rows(w, r0, r1, x.data(), n_tokens, part.data(), ldy, pool, kernels());
    for (int t = 0; t < n_tokens; ++t) {
      for (int64_t r = r0; r < r1; ++r)
        ASSERT_EQ(part[(size_t)(t * ldy + r - r0)], full[(size_t)(t * rows + r)]) << type_name(type);
      for (int64_t j = r1 - r0; j < ldy; ++j) ASSERT_EQ(part[(size_t)(t * ldy + j)], -7.0f);  // untouched
    }
  }
}

TEST(Matmul, CheckRejectsBadShapesAndTypes) {
  std::vector<uint8_t> buf(1 << 16);
  EXPECT_FALSE(matmul_check(Weight{GgmlType::Q4_K, 100, 4, buf.data(), "w"}).ok());
  EXPECT_FALSE(matmul_check(Weight{GgmlType::IQ2_XXS, 256, 4, buf.data(), "w"}).ok());
  EXPECT_FALSE(matmul_check(Weight{GgmlType::F32, 256, 4, nullptr, "w"}).ok());
  EXPECT_TRUE(matmul_check(Weight{GgmlType::Q4_K, 256, 4, buf.data(), "w"}).ok());
}

}  // namespace
}  // namespace slim
