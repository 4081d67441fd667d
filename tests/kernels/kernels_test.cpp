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
#include "kernels/repack.h"
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

namespace slim {
namespace {

// Normal random keys and values (n_keys rows of `row` values), a query of
// `dim`, and positive softmax-like weights summing to about 1.
struct AttnData {
  std::vector<float> k, v, q, w;
};
AttnData random_attn(int n_keys, int row, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  AttnData a{std::vector<float>((size_t)n_keys * row), std::vector<float>((size_t)n_keys * row),
             std::vector<float>(dim), std::vector<float>(n_keys)};
  for (auto* xs : {&a.k, &a.v, &a.q})
    for (auto& x : *xs) x = nd(rng);
  for (auto& x : a.w) x = std::fabs(nd(rng)) / n_keys;
  return a;
}

// The attention loops of every ISA against the scalar twins, F32 and F16
// caches, head dims with and without a SIMD tail, key counts below, at and
// past the 16-key groups, rows apart by a stride.
TEST(AttnKernels, MatchScalarOnEveryIsa) {
  const KernelTable& ref = kernel_table(Isa::scalar);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    const KernelTable& kt = kernel_table(isa);
    for (int dim : {64, 128, 80, 36, 320}) {
      for (int n_keys : {5, 16, 37, 301}) {
        for (bool f16 : {false, true}) {
          SCOPED_TRACE(std::string(isa_name(isa)) + " dim " + std::to_string(dim) + " keys " +
                       std::to_string(n_keys) + (f16 ? " f16" : " f32"));
          const int row = dim * 3;  // rows of 3 heads: stride > dim
          auto [kf, vf, q, w] = random_attn(n_keys, row, dim, dim * 1000 + n_keys);
          std::vector<uint16_t> k16(kf.size()), v16(vf.size()), q16(dim);
          for (size_t i = 0; i < kf.size(); ++i) k16[i] = fp32_to_fp16(kf[i]), v16[i] = fp32_to_fp16(vf[i]);
          for (int i = 0; i < dim; ++i) q16[i] = fp32_to_fp16(q[i]);
          const size_t elt = f16 ? 2 : 4, stride = row * elt;
          const void* kp = f16 ? (const void*)(k16.data() + dim) : (const void*)(kf.data() + dim);  // head 1
          const void* vp = f16 ? (const void*)(v16.data() + dim) : (const void*)(vf.data() + dim);
          const void* qp = f16 ? (const void*)q16.data() : (const void*)q.data();
          const AttnKernels& a = f16 ? kt.attn_f16 : kt.attn_f32;
          const AttnKernels& r = f16 ? ref.attn_f16 : ref.attn_f32;
          std::vector<float> s(n_keys), sr(n_keys);
          a.scores(n_keys, dim, qp, kp, stride, s.data());
          r.scores(n_keys, dim, qp, kp, stride, sr.data());
          for (int j = 0; j < n_keys; ++j) EXPECT_NEAR(s[j], sr[j], 1e-4 * std::sqrt((double)dim)) << j;
          // the scalar score of a middle key from its definition
          const int jm = n_keys / 2;
          double dm = 0;
          for (int i = 0; i < dim; ++i)
            dm += (double)(f16 ? fp16_to_fp32(q16[i]) : q[i]) *
                  (f16 ? fp16_to_fp32(k16[jm * row + dim + i]) : kf[jm * row + dim + i]);
          EXPECT_NEAR(sr[jm], dm, 1e-4 * std::sqrt((double)dim));
          std::vector<float> o(dim, 0.5f), orf(dim, 0.5f);  // accumulates onto what is there
          a.mix(n_keys, dim, w.data(), vp, stride, o.data());
          r.mix(n_keys, dim, w.data(), vp, stride, orf.data());
          for (int i = 0; i < dim; ++i) EXPECT_NEAR(o[i], orf[i], 1e-5) << i;
          double m3 = 0.5;
          for (int j = 0; j < n_keys; ++j)
            m3 += (double)w[j] * (f16 ? fp16_to_fp32(v16[j * row + dim + 3]) : vf[j * row + dim + 3]);
          EXPECT_NEAR(orf[3], m3, 1e-5);
        }
      }
    }
  }
}

}  // namespace
}  // namespace slim

namespace slim {
namespace {

// Softmax of every ISA against the scalar twin and a double-precision one,
// with and without soft-capping, lengths with and without a SIMD tail.
TEST(AttnKernels, SoftmaxMatchesScalar) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    for (int n : {1, 7, 16, 37, 300}) {
      for (float cap : {0.0f, 10.0f}) {
        SCOPED_TRACE(std::string(isa_name(isa)) + " n " + std::to_string(n) + " cap " + std::to_string(cap));
        auto x = random_values(n, n, 8.0f);
        x[0] = -200;  // underflows to 0 after the max is subtracted
        std::vector<float> s = x, r = x;
        kernel_table(isa).attn_f16.softmax(n, s.data(), 0.5f, cap);
        attn_softmax_ref(n, r.data(), 0.5f, cap);
        double mx = -1e30, sum = 0;
        std::vector<double> t(n);
        for (int j = 0; j < n; ++j) {
          t[j] = x[j] * 0.5;
          if (cap > 0) t[j] = cap * std::tanh(t[j] / cap);
          mx = std::max(mx, t[j]);
        }
        for (int j = 0; j < n; ++j) sum += std::exp(t[j] - mx);
        for (int j = 0; j < n; ++j) {
          const double want = std::exp(t[j] - mx) / sum;
          EXPECT_NEAR(r[j], want, 1e-6 + 1e-5 * want) << j;
          EXPECT_NEAR(s[j], want, 1e-6 + 1e-5 * want) << j;
        }
      }
    }
  }
}

// SwiGLU of every ISA against a double-precision silu(g) * u, in place and
// not, across the exp's range (both overflow ends) and lengths with a tail.
TEST(FloatKernels, SwigluMatchesDouble) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    for (int n : {1, 15, 16, 33, 4864}) {
      SCOPED_TRACE(std::string(isa_name(isa)) + " n " + std::to_string(n));
      auto g = random_values(n, 3 * n + 1, 12.0f), u = random_values(n, 3 * n + 2, 2.0f);
      g[0] = -200.0f;  // e^200 overflows: silu is -0
      if (n > 1) g[1] = 150.0f;
      std::vector<float> out(n), inplace = g;
      kernel_table(isa).swiglu(n, g.data(), u.data(), out.data());
      kernel_table(isa).swiglu(n, inplace.data(), u.data(), inplace.data());
      for (int i = 0; i < n; ++i) {
        const double want = (double)g[i] / (1.0 + std::exp(-(double)g[i])) * u[i];
        EXPECT_NEAR(out[i], want, 1e-6 + 4e-7 * std::fabs(want)) << i << " g " << g[i];
        EXPECT_EQ(inplace[i], out[i]) << i;
      }
    }
  }
}

// The row-interleaved layout: every row of a packed panel unpacks to its
// original GGUF blocks byte for byte (full and partial panels), and every
// ISA's panel kernel equals the scalar vec_dot of each row for 1..11 tokens.
TEST(Repacked, RoundTripAndKernelsMatchScalarVecDot) {
  int checked = 0;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    // every SIMD table has the kernels for every repacked type
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
      if (!isa_available(isa)) continue;
      EXPECT_NE(kernel_table(isa)[t].gemm_repacked, nullptr) << isa_name(isa) << " " << type_name(t);
    }
    const RepackFormat f = repack_format(t);
    ASSERT_GT(f.block_values, 0) << type_name(t);
    const GgmlType vt = type_traits(t).vec_dot_type;
    for (int64_t cols : {f.block_values, 3 * f.block_values, 7 * f.block_values}) {
      for (int n_rows : {16, 5}) {
        SCOPED_TRACE(std::string(type_name(t)) + " cols " + std::to_string(cols) + " rows " + std::to_string(n_rows));
        const size_t rs = row_size(t, cols);
        auto wf = random_values(n_rows * cols, (uint32_t)(cols * 3 + n_rows));
        for (size_t i = 0; i < wf.size(); i += 61) wf[i] *= 30.0f;
        std::vector<uint8_t> wq(rs * n_rows);
        type_traits(t).from_float(wf.data(), wq.data(), n_rows * cols);
        std::vector<uint8_t> panel(f.panel_bytes(cols));
        repack_panel(t, wq.data(), rs, n_rows, cols, panel.data());
        std::vector<uint8_t> back(rs);
        for (int r = 0; r < n_rows; ++r) {
          unpack_panel_row(t, panel.data(), r, cols, back.data());
          ASSERT_EQ(0, std::memcmp(back.data(), wq.data() + r * rs, rs)) << "row " << r;
        }
        const int nc = 11;
        const size_t xs = row_size(vt, cols);
        auto xf = random_values(nc * cols, (uint32_t)(cols + 5), 2.0f);
        std::vector<uint8_t> xq(xs * nc);
        type_traits(vt).from_float(xf.data(), xq.data(), nc * cols);
        const int64_t nb = cols / 32;
        std::vector<float> dy(nc * nb);
        std::vector<int32_t> sy(nc * nb);
        if (vt == GgmlType::Q8_0)
          for (int c = 0; c < nc; ++c)
            for (int64_t g = 0; g < nb; ++g) {
              const BlockQ8_0& b = ((const BlockQ8_0*)(xq.data() + c * xs))[g];
              int s = 0;
              for (int j = 0; j < 32; ++j) s += b.qs[j];
              dy[c * nb + g] = fp16_to_fp32(b.d);
              sy[c * nb + g] = s;
            }
        for (Isa isa : available_isas()) {
          const KernelRow& k = kernel_table(isa)[t];
          if (!k.gemm_repacked) continue;
          for (int n : {1, 2, 3, nc}) {  // every tile width up to 4 (11 = 4 + 4 + 3)
            const int64_t ldy = 17;
            std::vector<float> y(n * ldy, -9.0f);
            k.gemm_repacked(cols, panel.data(), xq.data(), xs, dy.data(), sy.data(), nullptr, nb, n, y.data(), ldy,
                            n_rows);
            for (int c = 0; c < n; ++c)
              for (int r = 0; r < ldy; ++r) {
                if (r >= n_rows) {
                  EXPECT_EQ(y[c * ldy + r], -9.0f);  // rows past the panel's are not written
                  continue;
                }
                float want;
                type_traits(t).vec_dot(cols, &want, wq.data() + r * rs, xq.data() + c * xs);
                const double tol = 1e-5 * magnitude(t, wq.data() + r * rs, vt, xq.data() + c * xs, cols) + 1e-6;
                EXPECT_NEAR(y[c * ldy + r], want, tol) << isa_name(isa) << " tokens " << n << " c " << c << " r " << r;
                ++checked;
              }
          }
        }
      }
    }
  }
  if (isa_available(Isa::avx2)) {
    EXPECT_GT(checked, 0);  // the SIMD tables have the repacked kernels
  }
}

// An ISA's packing equals the scalar repack_panel byte for byte, for full
// and partial panels, on random bytes (every bit of every field, scales and
// top bits included, reaches the panel).
void expect_packing_matches_scalar(Isa isa) {
  std::mt19937 rng(7);
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    const KernelRow& k = kernel_table(isa)[t];
    ASSERT_NE(k.repack, nullptr) << isa_name(isa) << " " << type_name(t);
    const RepackFormat f = repack_format(t);
    const std::vector<int64_t> widths = f.block_values == kQKK ? std::vector<int64_t>{256, 512, 2048 + 256}
                                                                : std::vector<int64_t>{32, 96, 4096};
    for (int64_t cols : widths) {
      const size_t rs = row_size(t, cols);
      std::vector<uint8_t> rows(rs * kRepackRows);
      for (auto& b : rows) b = (uint8_t)rng();
      for (int n_rows = 1; n_rows <= kRepackRows; ++n_rows) {
        SCOPED_TRACE(std::string(type_name(t)) + " cols " + std::to_string(cols) + " rows " + std::to_string(n_rows));
        std::vector<uint8_t> want(f.panel_bytes(cols)), got(f.panel_bytes(cols), 0xA5);
        repack_panel(t, rows.data(), rs, n_rows, cols, want.data());
        k.repack(rows.data(), rs, n_rows, cols, got.data());
        size_t first = 0;
        while (first < want.size() && want[first] == got[first]) ++first;
        ASSERT_EQ(first, want.size()) << "first difference at byte " << first << " of block column "
                                      << first / f.block_bytes << " (offset " << first % f.block_bytes << ")";
      }
    }
  }
}

TEST(Repacked, Avx512PackingMatchesScalar) {
  if (!isa_available(Isa::avx512)) GTEST_SKIP() << "no AVX-512";
  expect_packing_matches_scalar(Isa::avx512);
}

TEST(Repacked, Avx2PackingMatchesScalar) {
  if (!isa_available(Isa::avx2)) GTEST_SKIP() << "no AVX2";
  expect_packing_matches_scalar(Isa::avx2);
}

// The panel GEMM of every ISA that has one: packed panels equal the scalar
// packing byte for byte, and the products match the scalar twin and the
// type's own vec_dot, for full and partial panels and token tiles.
TEST(PanelGemm, MatchesScalarTwinAndVecDot) {
  int checked = 0;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    const KernelTable& kt = kernel_table(isa);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q4_K,
                       GgmlType::Q5_K, GgmlType::Q6_K}) {
      const KernelRow& k = kt[t];
      if (!k.gemm_panel) continue;
      const PanelFormat f = panel_format(t);
      ASSERT_EQ(k.panel.group, f.group);
      ASSERT_EQ(k.panel.mins, f.mins);
      const GgmlType vt = type_traits(t).vec_dot_type;
      for (int n_rows : {16, 5}) {
        for (int nc : {8, 3}) {
          SCOPED_TRACE(std::string(isa_name(isa)) + " " + type_name(t) + " rows " + std::to_string(n_rows) +
                       " tokens " + std::to_string(nc));
          const int64_t cols = 512;
          const size_t w_rs = row_size(t, cols), x_rs = row_size(vt, cols);
          auto wf = random_values(n_rows * cols, 11);
          auto xf = random_values(nc * cols, 12);
          std::vector<uint8_t> wq(w_rs * n_rows), xq(x_rs * nc);
          type_traits(t).from_float(wf.data(), wq.data(), n_rows * cols);
          type_traits(vt).from_float(xf.data(), xq.data(), nc * cols);
          const int64_t ng = cols / f.group;
          std::vector<float> dy(nc * ng), my(nc * ng);
          std::vector<int32_t> sy(nc * ng);
          for (int c = 0; c < nc; ++c)
            for (int64_t g = 0; g < ng; ++g) {
              std::vector<float> deq(cols);  // group sums from the dequantized activations
              if (vt == GgmlType::Q8_0) {
                const BlockQ8_0& blk = ((const BlockQ8_0*)(xq.data() + c * x_rs))[g];
                dy[c * ng + g] = fp16_to_fp32(blk.d);
                int s = 0;
                for (int i = 0; i < 32; ++i) s += blk.qs[i];
                sy[c * ng + g] = s;
              } else {
                const BlockQ8_K& blk = ((const BlockQ8_K*)(xq.data() + c * x_rs))[g * f.group / 256];
                int s = 0;
                for (int i = 0; i < f.group; ++i) s += blk.qs[(g * f.group) % 256 + i];
                dy[c * ng + g] = blk.d;
                my[c * ng + g] = blk.d * s;
              }
            }
          std::vector<uint8_t> p(cols / 32 * f.block_bytes()), pr(p.size());
          k.pack_panel(wq.data(), w_rs, n_rows, cols, p.data());
          pack_panel_ref(t, wq.data(), w_rs, n_rows, cols, pr.data());
          ASSERT_EQ(p, pr);
          const int64_t ldy = 20;
          std::vector<float> y(nc * ldy, -1.0f), yr(nc * ldy, -1.0f);
          k.gemm_panel(cols, p.data(), xq.data(), x_rs, dy.data(), sy.data(), my.data(), ng, nc, y.data(), ldy,
                       n_rows);
          gemm_panel_ref(t, cols, pr.data(), xq.data(), x_rs, dy.data(), sy.data(), my.data(), ng, nc, yr.data(), ldy,
                         n_rows);
          for (int c = 0; c < nc; ++c)
            for (int r = 0; r < ldy; ++r) {
              if (r >= n_rows) {  // rows past the panel's are not written
                EXPECT_EQ(y[c * ldy + r], -1.0f);
                continue;
              }
              float want;
              type_traits(t).vec_dot(cols, &want, wq.data() + r * w_rs, xq.data() + c * x_rs);
              const double tol = 2e-4 * (std::sqrt((double)cols) + std::fabs(want));
              EXPECT_NEAR(yr[c * ldy + r], want, tol) << c << " " << r;
              EXPECT_NEAR(y[c * ldy + r], yr[c * ldy + r], tol) << c << " " << r;
              ++checked;
            }
        }
      }
    }
  }
  if (isa_available(Isa::avx512)) {
    EXPECT_GT(checked, 0);  // the AVX-512 table has panel kernels
  }
}

}  // namespace
}  // namespace slim

namespace slim {
namespace {

// The Q8_0-cache attention loops of every ISA against the scalar twins: odd
// key counts (the 4-key steps' tails), head dims of 1 to 8 blocks (every
// accumulator chunking of mix), rows of 3 heads apart by a stride.
TEST(AttnKernels, Q8_0MatchesScalarOnEveryIsa) {
  const KernelTable& ref = kernel_table(Isa::scalar);
  const TypeTraits& q8 = type_traits(GgmlType::Q8_0);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    const KernelTable& kt = kernel_table(isa);
    for (int dim : {64, 128, 256, 32, 96, 224}) {
      for (int n_keys : {1, 3, 5, 37, 301}) {
        SCOPED_TRACE(std::string(isa_name(isa)) + " dim " + std::to_string(dim) + " keys " + std::to_string(n_keys));
        const int row = dim * 3;
        const size_t stride = row_size(GgmlType::Q8_0, row), head = row_size(GgmlType::Q8_0, dim);
        auto [kf, vf, q, w] = random_attn(n_keys, row, dim, dim * 1000 + n_keys);
        std::vector<uint8_t> kq((size_t)n_keys * stride), vq((size_t)n_keys * stride), qq(head);
        for (int j = 0; j < n_keys; ++j) {
          q8.from_float(&kf[(size_t)j * row], &kq[j * stride], row);
          q8.from_float(&vf[(size_t)j * row], &vq[j * stride], row);
        }
        q8.from_float(q.data(), qq.data(), dim);
        const uint8_t* kp = kq.data() + head;  // head 1
        const uint8_t* vp = vq.data() + head;
        // Dequantized rows: the definition the scalar twins are checked against.
        auto deq = [&](const std::vector<uint8_t>& b, int j) {
          std::vector<float> x(dim);
          q8.to_float(b.data() + j * stride + head, x.data(), dim);
          return x;
        };
        std::vector<float> qd(dim);
        q8.to_float(qq.data(), qd.data(), dim);

        std::vector<float> s(n_keys), sr(n_keys);
        kt.attn_q8_0.scores(n_keys, dim, qq.data(), kp, stride, s.data());
        ref.attn_q8_0.scores(n_keys, dim, qq.data(), kp, stride, sr.data());
        for (int j = 0; j < n_keys; ++j) {
          const std::vector<float> kd = deq(kq, j);
          double want = 0, mag = 0;
          for (int i = 0; i < dim; ++i) want += (double)qd[i] * kd[i], mag += std::fabs((double)qd[i] * kd[i]);
          EXPECT_NEAR(sr[j], want, 1e-5 * mag) << j;
          EXPECT_NEAR(s[j], sr[j], 1e-5 * mag) << j;
        }

        std::vector<float> o(dim, 0.5f), orf(dim, 0.5f);  // accumulates onto what is there
        kt.attn_q8_0.mix(n_keys, dim, w.data(), vp, stride, o.data());
        ref.attn_q8_0.mix(n_keys, dim, w.data(), vp, stride, orf.data());
        std::vector<double> want(dim, 0.5), mag(dim, 0.5);
        for (int j = 0; j < n_keys; ++j) {
          const std::vector<float> vd = deq(vq, j);
          for (int i = 0; i < dim; ++i) want[i] += (double)w[j] * vd[i], mag[i] += std::fabs((double)w[j] * vd[i]);
        }
        for (int i = 0; i < dim; ++i) {
          EXPECT_NEAR(orf[i], want[i], 1e-6 * mag[i]) << i;
          EXPECT_NEAR(o[i], orf[i], 1e-6 * mag[i]) << i;
        }
      }
    }
    EXPECT_EQ(kt.attn_q8_0.softmax, kt.attn_f32.softmax) << isa_name(isa);
  }
}

// A key row of zeros (scale 0) scores 0, and a V row of zeros adds nothing.
TEST(AttnKernels, Q8_0ZeroRows) {
  const int dim = 64, n_keys = 5;
  const size_t stride = row_size(GgmlType::Q8_0, dim);
  std::vector<float> zeros((size_t)n_keys * dim, 0.0f), q = random_values(dim, 3);
  std::vector<uint8_t> kq((size_t)n_keys * stride), qq(stride);
  type_traits(GgmlType::Q8_0).from_float(zeros.data(), kq.data(), (int64_t)zeros.size());
  type_traits(GgmlType::Q8_0).from_float(q.data(), qq.data(), dim);
  for (Isa isa : available_isas()) {
    const AttnKernels& a = kernel_table(isa).attn_q8_0;
    std::vector<float> s(n_keys, 1.0f), o(dim, 0.25f), w(n_keys, 0.2f);
    a.scores(n_keys, dim, qq.data(), kq.data(), stride, s.data());
    a.mix(n_keys, dim, w.data(), kq.data(), stride, o.data());
    for (float x : s) EXPECT_EQ(x, 0.0f) << isa_name(isa);
    for (float x : o) EXPECT_EQ(x, 0.25f) << isa_name(isa);
  }
}

}  // namespace
}  // namespace slim
