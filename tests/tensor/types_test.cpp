// Tests of the scalar type table: sizes and names, quantize/dequantize
// round-trip error per type, vec_dot against a double dot of the dequantized
// rows, and bit-compatibility with files quantized by llama.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "mini_gguf.h"
#include "tensor/quant_blocks.h"
#include "tensor/quants.h"
#include "tensor/types.h"
#include "test_util.h"

namespace slim {
namespace {

using test::MiniGguf;
using test::MiniTensor;

const GgmlType kComputed[] = {GgmlType::F32,  GgmlType::F16,    GgmlType::BF16,  GgmlType::Q8_0,
                              GgmlType::Q8_1, GgmlType::Q4_0,   GgmlType::Q4_1,  GgmlType::Q5_0,
                              GgmlType::Q5_1, GgmlType::Q2_K,   GgmlType::Q3_K,  GgmlType::Q4_K,
                              GgmlType::Q5_K, GgmlType::Q6_K,   GgmlType::Q8_K,  GgmlType::IQ4_NL,
                              GgmlType::IQ4_XS};

std::vector<float> random_values(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_size(t, (int64_t)x.size()));
  type_traits(t).from_float(x.data(), q.data(), (int64_t)x.size());
  return q;
}

std::vector<float> dequantize(GgmlType t, const void* q, int64_t n) {
  std::vector<float> y((size_t)n);
  type_traits(t).to_float(q, y.data(), n);
  return y;
}

double rel_rmse(const float* a, const float* b, int64_t n) {
  double e = 0, s = 0;
  for (int64_t i = 0; i < n; ++i) {
    e += (double)(a[i] - b[i]) * (a[i] - b[i]);
    s += (double)a[i] * a[i];
  }
  return std::sqrt(e / (s > 0 ? s : 1));
}

// Relative RMS error a correct quantizer reaches on Gaussian data (about 1.5x
// the typical value, so a wrong bit layout or a lost scale fails clearly).
double round_trip_bound(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 5e-4;
    case GgmlType::BF16: return 4e-3;
    case GgmlType::Q8_0: case GgmlType::Q8_1: case GgmlType::Q8_K: return 0.012;
    case GgmlType::Q6_K: return 0.03;
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q5_K: return 0.06;
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q4_K: return 0.12;
    case GgmlType::IQ4_NL: case GgmlType::IQ4_XS: return 0.11;
    case GgmlType::Q3_K: return 0.25;
    case GgmlType::Q2_K: return 0.45;
    default: return 0;
  }
}

TEST(TypeTable, SizesMatchGgml) {
  struct Row { GgmlType t; int64_t bs; size_t ts; };
  const Row rows[] = {
      {GgmlType::F32, 1, 4},       {GgmlType::F16, 1, 2},       {GgmlType::BF16, 1, 2},
      {GgmlType::Q4_0, 32, 18},    {GgmlType::Q4_1, 32, 20},    {GgmlType::Q5_0, 32, 22},
      {GgmlType::Q5_1, 32, 24},    {GgmlType::Q8_0, 32, 34},    {GgmlType::Q8_1, 32, 36},
      {GgmlType::Q2_K, 256, 84},   {GgmlType::Q3_K, 256, 110},  {GgmlType::Q4_K, 256, 144},
      {GgmlType::Q5_K, 256, 176},  {GgmlType::Q6_K, 256, 210},  {GgmlType::Q8_K, 256, 292},
      {GgmlType::IQ4_NL, 32, 18},  {GgmlType::IQ4_XS, 256, 136}, {GgmlType::IQ2_XXS, 256, 66},
      {GgmlType::IQ2_XS, 256, 74}, {GgmlType::IQ2_S, 256, 82},  {GgmlType::IQ3_XXS, 256, 98},
      {GgmlType::IQ3_S, 256, 110}, {GgmlType::IQ1_S, 256, 50},  {GgmlType::IQ1_M, 256, 56},
      {GgmlType::TQ1_0, 256, 54},  {GgmlType::TQ2_0, 256, 66},  {GgmlType::MXFP4, 32, 17},
      {GgmlType::I8, 1, 1},        {GgmlType::I16, 1, 2},       {GgmlType::I32, 1, 4},
      {GgmlType::I64, 1, 8},       {GgmlType::F64, 1, 8},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(type_name(r.t));
    EXPECT_TRUE(type_known((uint32_t)r.t));
    EXPECT_EQ(type_traits(r.t).block_size, r.bs);
    EXPECT_EQ(type_traits(r.t).type_size, r.ts);
    EXPECT_EQ(row_size(r.t, r.bs * 7), r.ts * 7);
  }
  // ids that were removed from ggml or never existed
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u}) EXPECT_FALSE(type_known(id)) << id;
  EXPECT_EQ(type_traits((GgmlType)4).block_size, 0);
  EXPECT_FALSE(type_supported(GgmlType::IQ2_XXS));
  EXPECT_EQ(type_traits(GgmlType::IQ2_XXS).to_float, nullptr);
}

TEST(TypeTable, NamesRoundTrip) {
  for (uint32_t id = 0; id < (uint32_t)GgmlType::COUNT; ++id) {
    if (!type_known(id)) continue;
    const char* n = type_name((GgmlType)id);
    auto back = type_from_name(n);
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ((uint32_t)*back, id);
  }
  EXPECT_EQ(type_from_name("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(type_from_name("iq4_xs"), GgmlType::IQ4_XS);
  EXPECT_EQ(type_from_name("Bf16"), GgmlType::BF16);
  EXPECT_FALSE(type_from_name("Q4").has_value());
  EXPECT_FALSE(type_from_name("Q4_K_M").has_value());
  EXPECT_FALSE(type_from_name("").has_value());
  EXPECT_STREQ(type_name((GgmlType)5), "unknown");
}

TEST(TypeTable, SupportedTypesHaveEveryFunction) {
  for (GgmlType t : kComputed) {
    SCOPED_TRACE(type_name(t));
    const TypeTraits& tr = type_traits(t);
    EXPECT_TRUE(type_supported(t));
    EXPECT_NE(tr.to_float, nullptr);
    EXPECT_NE(tr.from_float, nullptr);
    EXPECT_NE(tr.vec_dot, nullptr);
  }
  // ggml's CPU pairing of weight type and activation type
  EXPECT_EQ(type_traits(GgmlType::F32).vec_dot_type, GgmlType::F32);
  EXPECT_EQ(type_traits(GgmlType::F16).vec_dot_type, GgmlType::F16);
  EXPECT_EQ(type_traits(GgmlType::BF16).vec_dot_type, GgmlType::BF16);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::IQ4_NL})
    EXPECT_EQ(type_traits(t).vec_dot_type, GgmlType::Q8_0) << type_name(t);
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_1})
    EXPECT_EQ(type_traits(t).vec_dot_type, GgmlType::Q8_1) << type_name(t);
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                     GgmlType::IQ4_XS})
    EXPECT_EQ(type_traits(t).vec_dot_type, GgmlType::Q8_K) << type_name(t);
}

TEST(Quantize, RoundTripErrorWithinTypeBound) {
  for (GgmlType t : kComputed) {
    SCOPED_TRACE(type_name(t));
    const int64_t n = 256 * 13;
    auto x = random_values(n, 7, 0.5f);
    auto q = quantize(t, x);
    auto y = dequantize(t, q.data(), n);
    const double err = rel_rmse(x.data(), y.data(), n);
    EXPECT_LE(err, round_trip_bound(t));
    if (t != GgmlType::F32) {
      EXPECT_GT(err, 0.0);
    }
  }
}

TEST(Quantize, ZeroAndConstantBlocks) {
  for (GgmlType t : kComputed) {
    SCOPED_TRACE(type_name(t));
    const int64_t n = 512;
    std::vector<float> x((size_t)n, 0.0f);
    for (int64_t i = 256; i < n; ++i) x[(size_t)i] = 0.75f;  // a constant block
    auto y = dequantize(t, quantize(t, x).data(), n);
    for (int64_t i = 0; i < 256; ++i) ASSERT_EQ(y[(size_t)i], 0.0f) << i;
    for (int64_t i = 256; i < n; ++i) ASSERT_NEAR(y[(size_t)i], 0.75f, 0.75f * 0.1f) << i;
  }
}

// Q8_0, Q8_1, Q8_K quantize activations: check ggml's reference rounding on
// hand-computed values (roundf half away from zero for Q8_0, ties-to-even for Q8_K).
TEST(Quantize, ActivationRoundingMatchesGgml) {
  std::vector<float> x(256, 0.0f);
  x[0] = 127.0f;  // scale 1 exactly
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;
  BlockQ8_0 b0[8];
  quantize_row_q8_0(x.data(), b0, 256);
  EXPECT_EQ(fp16_to_fp32(b0[0].d), 1.0f);
  EXPECT_EQ(b0[0].qs[1], 3);
  EXPECT_EQ(b0[0].qs[2], -3);
  EXPECT_EQ(b0[0].qs[3], 4);
  BlockQ8_1 b1[8];
  quantize_row_q8_1(x.data(), b1, 256);
  EXPECT_EQ(fp16_to_fp32(b1[0].s), 127.0f + 3 - 3 + 4);
  // Q8_K scales by -127/max (ggml's choice): a positive max lands on -127, d < 0
  BlockQ8_K bk;
  quantize_row_q8_k(x.data(), &bk, 256);
  EXPECT_FLOAT_EQ(bk.d, -1.0f);
  EXPECT_EQ(bk.qs[0], -127);
  EXPECT_EQ(bk.qs[1], -2);  // -2.5 ties to even
  EXPECT_EQ(bk.qs[2], 2);
  EXPECT_EQ(bk.qs[3], -4);  // -3.5 ties to even
  EXPECT_EQ(bk.bsums[0], -127 - 2 + 2 - 4);
  x[0] = -127.0f;
  quantize_row_q8_k(x.data(), &bk, 256);
  EXPECT_FLOAT_EQ(bk.d, 1.0f);
  EXPECT_EQ(bk.qs[0], -127);
}

// Every vec_dot equals the dot of the dequantized rows (the integer sums are
// exact, so only float rounding of the per-block scale products remains).
TEST(VecDot, MatchesDotOfDequantizedRows) {
  for (GgmlType t : kComputed) {
    SCOPED_TRACE(type_name(t));
    const TypeTraits& tr = type_traits(t);
    for (int64_t blocks : {1, 3, 8, 17}) {
      const int64_t n = blocks * (tr.block_size == 1 ? 256 : tr.block_size) + (tr.block_size == 1 ? 3 : 0);
      auto x = random_values(n, 100 + (uint32_t)blocks);
      auto a = random_values(n, 200 + (uint32_t)blocks, 2.0f);
      auto qx = quantize(t, x);
      auto qa = quantize(tr.vec_dot_type, a);
      auto dx = dequantize(t, qx.data(), n);
      auto da = dequantize(tr.vec_dot_type, qa.data(), n);
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref += (double)dx[(size_t)i] * da[(size_t)i];
        mag += std::fabs((double)dx[(size_t)i] * da[(size_t)i]);
      }
      float got = 0;
      tr.vec_dot(n, &got, qx.data(), qa.data());
      // Q4_1/Q5_1 use Q8_1's s = fp16(d * sum(q)) for their offset term, as
      // ggml does: allow for that one fp16 rounding per block (|m| * |s| * 2^-11)
      double tol = 2e-5 * mag + 1e-5;
      if (tr.vec_dot_type == GgmlType::Q8_1 && t != GgmlType::Q8_1) {
        for (int64_t b = 0; b < n / kQK; ++b) {
          uint16_t m;  // Q4_1 and Q5_1 both keep m right after d
          std::memcpy(&m, qx.data() + (size_t)b * tr.type_size + 2, 2);
          const BlockQ8_1* yb = (const BlockQ8_1*)qa.data() + b;
          tol += std::fabs(fp16_to_fp32(m) * fp16_to_fp32(yb->s)) * (1.0 / 2048);
        }
      }
      EXPECT_NEAR(got, ref, tol) << "n=" << n;
    }
  }
}

// The dot of a quantized weight row with quantized activations approximates
// the exact float dot as well as the type allows.
TEST(VecDot, ApproximatesFloatDot) {
  for (GgmlType t : kComputed) {
    SCOPED_TRACE(type_name(t));
    const TypeTraits& tr = type_traits(t);
    const int64_t n = 4096;
    double err = 0, norm = 0;
    for (uint32_t trial = 0; trial < 16; ++trial) {
      auto x = random_values(n, 300 + trial);
      auto a = random_values(n, 400 + trial);
      double exact = 0;
      for (int64_t i = 0; i < n; ++i) exact += (double)x[(size_t)i] * a[(size_t)i];
      float got = 0;
      tr.vec_dot(n, &got, quantize(t, x).data(), quantize(tr.vec_dot_type, a).data());
      err += (got - exact) * (got - exact);
      norm += n;  // E[exact^2] = n for unit Gaussians
    }
    const double bound = round_trip_bound(t) * 1.5 + 0.02;
    EXPECT_LE(std::sqrt(err / norm), bound);
  }
}

// ---- bit compatibility with llama.cpp-made files ----

MiniGguf load(const std::string& rel) {
  MiniGguf g;
  g.bytes = test::read_file(test::shared_path(rel));
  test::parse_mini_gguf(g);
  return g;
}

struct FileCheck {
  const char* file;
  double max_rel_rmse;  // of every tensor against the F32 file
};

class LlamaFile : public ::testing::TestWithParam<FileCheck> {};

TEST_P(LlamaFile, DequantizesCloseToF32AndReQuantizesLikeLlamaCpp) {
  const FileCheck fc = GetParam();
  SLIM_SHARED_FILE(f32_path, "models/synthetic/llama-F32.gguf");
  SLIM_SHARED_FILE(q_path, std::string("models/synthetic/") + fc.file);
  MiniGguf ref = load("models/synthetic/llama-F32.gguf");
  MiniGguf q = load(std::string("models/synthetic/") + fc.file);
  ASSERT_EQ(ref.tensors.size(), q.tensors.size());
  int n_checked = 0;
  for (const auto& [name, t] : q.tensors) {
    SCOPED_TRACE(name + " " + type_name((GgmlType)t.type));
    auto it = ref.tensors.find(name);
    ASSERT_NE(it, ref.tensors.end());
    const MiniTensor& r = it->second;
    ASSERT_EQ(r.type, (uint32_t)GgmlType::F32);
    ASSERT_EQ(t.dims, r.dims);
    const GgmlType type = (GgmlType)t.type;
    ASSERT_TRUE(type_supported(type));
    const int64_t n = t.n_elements();
    const size_t bytes = row_size(type, t.dims[0]) * (size_t)(n / t.dims[0]);
    ASSERT_LE((size_t)(t.data - (const uint8_t*)q.bytes.data()) + bytes, q.bytes.size());
    const float* rf = (const float*)r.data;
    auto deq = dequantize(type, t.data, n);
    double err = rel_rmse(rf, deq.data(), n);
    if (type == GgmlType::F32) {
      EXPECT_EQ(err, 0.0);
      continue;
    }
    ++n_checked;
    EXPECT_LE(err, fc.max_rel_rmse);
    if (std::getenv("SLIM_TEST_VERBOSE")) std::printf("%s %s err %.5f\n", fc.file, name.c_str(), err);
    // our quantizer on the same F32 data
    std::vector<float> src(rf, rf + n);
    auto ours = quantize(type, src);
    ASSERT_EQ(ours.size(), bytes);
    switch (type) {
      // ggml's reference rounding: llama-quantize without an imatrix writes exactly these bytes
      case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
      case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
        EXPECT_EQ(0, std::memcmp(ours.data(), t.data, bytes)) << "not bit-identical";
        break;
      default: {
        // searched scales: at least as good as llama.cpp's (small slack)
        auto back = dequantize(type, ours.data(), n);
        EXPECT_LE(rel_rmse(rf, back.data(), n), err * 1.05 + 1e-6);
      }
    }
  }
  EXPECT_GT(n_checked, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Synthetic, LlamaFile,
    ::testing::Values(FileCheck{"llama-F16.gguf", 5e-4}, FileCheck{"llama-BF16.gguf", 4e-3},
                      FileCheck{"llama-Q8_0.gguf", 0.01}, FileCheck{"llama-Q6_K.gguf", 0.03},
                      FileCheck{"llama-Q5_0.gguf", 0.06}, FileCheck{"llama-Q5_1.gguf", 0.06},
                      FileCheck{"llama-Q5_K_M.gguf", 0.06}, FileCheck{"llama-Q4_0.gguf", 0.12},
                      FileCheck{"llama-Q4_1.gguf", 0.12}, FileCheck{"llama-Q4_K_S.gguf", 0.12},
                      FileCheck{"llama-Q4_K_M.gguf", 0.12}, FileCheck{"llama-IQ4_NL.gguf", 0.12},
                      FileCheck{"llama-IQ4_XS.gguf", 0.12}, FileCheck{"llama-Q3_K_M.gguf", 0.25},
                      FileCheck{"llama-Q2_K.gguf", 0.45}),
    [](const auto& info) {
      std::string s = info.param.file;
      s = s.substr(6, s.size() - 11);
      return s;
    });

}  // namespace
}  // namespace slim
