// Every SIMD kernel against its scalar twin on every ISA this machine has,
// the dispatch rules, and the activation quantizers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "kernels/dispatch.h"
#include "tensor/quant_blocks.h"
#include "tensor/types.h"

namespace slim {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                           GgmlType::Q8_1, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                           GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                           GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::IQ4_NL,
                           GgmlType::IQ4_XS};

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (isa_available(isa)) v.push_back(isa);
  return v;
}

std::vector<float> random_values(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> quantize_ref(GgmlType t, const float* x, int64_t n) {
  std::vector<uint8_t> q(row_size(t, n));
  type_traits(t).from_float(x, q.data(), n);
  return q;
}

// sum |x_i * y_i| of the dequantized rows: the scale a float-rounding tolerance is relative to
double magnitude(GgmlType tx, const void* x, GgmlType ty, const void* y, int64_t n) {
  std::vector<float> a((size_t)n), b((size_t)n);
  type_traits(tx).to_float(x, a.data(), n);
  type_traits(ty).to_float(y, b.data(), n);
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m += std::fabs((double)a[(size_t)i] * b[(size_t)i]);
  return m;
}

TEST(Dispatch, ScalarAlwaysAvailableAndBestIsAvailable) {
  EXPECT_TRUE(isa_available(Isa::scalar));
  EXPECT_TRUE(isa_available(best_isa()));
  if (isa_available(Isa::avx512)) {
    EXPECT_TRUE(isa_available(Isa::avx2));
  }
  std::printf("available ISAs:");
  for (Isa isa : available_isas()) std::printf(" %s", isa_name(isa));
  std::printf("\n");
}

TEST(Dispatch, ParseIsa) {
  for (Isa isa : available_isas()) {
    auto r = parse_isa(isa_name(isa));
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(*r, isa);
  }
  auto bad = parse_isa("sse9");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("unknown"), std::string::npos);
  for (Isa isa : {Isa::avx2, Isa::avx512}) {
    if (isa_available(isa)) continue;
    auto r = parse_isa(isa_name(isa));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("does not support"), std::string::npos) << r.error();
  }
}

TEST(Dispatch, ActiveTableFollowsEnvironment) {
  ASSERT_TRUE(init_kernels().ok() || std::getenv("SLIM_ISA"));
  const char* env = std::getenv("SLIM_ISA");
  auto want = env && *env && parse_isa(env).ok() ? *parse_isa(env) : best_isa();
  EXPECT_EQ(kernels().isa, want);
}

TEST(Dispatch, EveryTableHasEveryRowOfTheScalarTable) {
  for (Isa isa : available_isas()) {
    const KernelTable& kt = kernel_table(isa);
    EXPECT_EQ(kt.isa, isa);
    for (uint32_t id = 0; id < (uint32_t)GgmlType::COUNT; ++id) {
      const TypeTraits& ref = type_traits((GgmlType)id);
      const KernelRow& row = kt[(GgmlType)id];
      SCOPED_TRACE(std::string(isa_name(isa)) + " " + type_name((GgmlType)id));
      EXPECT_EQ(row.block_size, ref.block_size);
      EXPECT_EQ(row.type_size, ref.type_size);
      EXPECT_EQ(row.vec_dot_type, ref.vec_dot_type);
      EXPECT_EQ(row.to_float, ref.to_float);
      EXPECT_EQ(row.vec_dot == nullptr, ref.vec_dot == nullptr);
      EXPECT_EQ(row.vec_dot_multi == nullptr, ref.vec_dot == nullptr);
      EXPECT_EQ(row.from_float == nullptr, ref.from_float == nullptr);
    }
  }
  // the fast paths are really installed where the brief requires them
  for (Isa isa : {Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                       GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q2_K,
                       GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS})
      EXPECT_NE(kernel_table(isa)[t].vec_dot, type_traits(t).vec_dot) << isa_name(isa) << type_name(t);
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::F16, GgmlType::BF16})
      EXPECT_NE(kernel_table(isa)[t].from_float, type_traits(t).from_float) << isa_name(isa) << type_name(t);
  }
}

// vec_dot and every tile width of each ISA against the scalar vec_dot, on the
// same (scalar-quantized) inputs, odd lengths included.
TEST(Kernels, VecDotMatchesScalarTwinOnEveryIsa) {
  for (Isa isa : available_isas()) {
    const KernelTable& kt = kernel_table(isa);
    for (GgmlType t : kTypes) {
      const TypeTraits& ref = type_traits(t);
      const GgmlType vt = ref.vec_dot_type;
      const int64_t bs = ref.block_size == 1 ? 1 : ref.block_size;
      std::vector<int64_t> sizes = {bs, 3 * bs, 9 * bs, 17 * bs};
      if (bs == 1) sizes = {1, 7, 15, 16, 31, 33, 63, 257, 1001, 4096};
      else if (bs == 32) sizes.push_back(129 * bs);
      for (int64_t n : sizes) {
        SCOPED_TRACE(std::string(isa_name(isa)) + " " + type_name(t) + " n=" + std::to_string(n));
        auto xf = random_values(n, (uint32_t)(n * 7 + 1));
        auto qx = quantize_ref(t, xf.data(), n);
        const size_t ys = row_size(vt, n);
        std::vector<uint8_t> qy(ys * kMaxTileTokens);
        for (int c = 0; c < kMaxTileTokens; ++c) {
          auto yf = random_values(n, (uint32_t)(n * 13 + c), 1.0f + c);
          type_traits(vt).from_float(yf.data(), qy.data() + c * ys, n);
        }
        float want[kMaxTileTokens];
        double tol[kMaxTileTokens];
        for (int c = 0; c < kMaxTileTokens; ++c) {
          ref.vec_dot(n, &want[c], qx.data(), qy.data() + c * ys);
          tol[c] = 1e-5 * magnitude(t, qx.data(), vt, qy.data() + c * ys, n) + 1e-6;
        }
        float got = 0;
        kt[t].vec_dot(n, &got, qx.data(), qy.data());
        EXPECT_NEAR(got, want[0], tol[0]);
        for (int nc = 1; nc <= kMaxTileTokens; ++nc) {
          float out[kMaxTileTokens] = {};
          kt[t].vec_dot_multi(n, out, qx.data(), qy.data(), ys, nc);
          for (int c = 0; c < nc; ++c) EXPECT_NEAR(out[c], want[c], tol[c]) << "nc=" << nc << " c=" << c;
        }
      }
    }
  }
}

// Activation converters: Q8_K and the 16-bit floats are bit-identical to the
// scalar reference; Q8_0/Q8_1 may round exact ties to even (as ggml's SIMD
// path does) where the reference rounds away from zero: one step at most.
TEST(Kernels, ActivationQuantizersMatchScalarTwin) {
  for (Isa isa : available_isas()) {
    const KernelTable& kt = kernel_table(isa);
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::F16, GgmlType::BF16}) {
      const int64_t bs = type_traits(t).block_size;
      for (int64_t blocks : {1, 5, 16}) {
        const int64_t n = (bs == 1 ? 37 : bs) * blocks;
        SCOPED_TRACE(std::string(isa_name(isa)) + " " + type_name(t) + " n=" + std::to_string(n));
        auto x = random_values(n, (uint32_t)(blocks + 11), 3.0f);
        // exact ties for the Q8 roundings: block max 127 makes id = 1
        if (bs == 32) { x[0] = 127.0f; x[1] = 2.5f; x[2] = -0.5f; }
        auto want = quantize_ref(t, x.data(), n);
        std::vector<uint8_t> got(want.size());
        kt[t].from_float(x.data(), got.data(), n);
        if (t == GgmlType::Q8_0 || t == GgmlType::Q8_1) {
          const size_t head = t == GgmlType::Q8_0 ? 2 : 4;
          for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* w = want.data() + b * type_traits(t).type_size;
            const uint8_t* g = got.data() + b * type_traits(t).type_size;
            EXPECT_EQ(0, std::memcmp(w, g, 2)) << "scale of block " << b;
            for (int j = 0; j < 32; ++j) EXPECT_LE(std::abs((int8_t)w[head + j] - (int8_t)g[head + j]), 1);
          }
        } else {
          EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size()));
        }
      }
    }
  }
}

TEST(Kernels, ZeroRowsGiveZero) {
  for (Isa isa : available_isas()) {
    for (GgmlType t : kTypes) {
      const int64_t n = 512;
      std::vector<float> z((size_t)n, 0.0f);
      auto y = random_values(n, 5);
      auto qx = quantize_ref(t, z.data(), n);
      auto qy = quantize_ref(type_traits(t).vec_dot_type, y.data(), n);
      float got = 1;
      kernel_table(isa)[t].vec_dot(n, &got, qx.data(), qy.data());
      EXPECT_EQ(got, 0.0f) << isa_name(isa) << " " << type_name(t);
    }
  }
}

}  // namespace
}  // namespace slim
