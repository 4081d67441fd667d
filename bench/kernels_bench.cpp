// Micro-benchmarks of the kernels per ISA and type:
//   matvec/<isa>/<type>   one thread, rows x vec_dot over a 4096 x 4096 weight;
//                         bytes_per_second = weight bytes streamed (GB/s)
//   repacked/<isa>/<type> one thread, one token over the same weight in 16-row panels
//                         (kernels/repack.h; where the ISA has the kernels); it fits
//                         in a large L3, so this is the kernel's compute ceiling
//   repacked/<isa>/<type>/stream  the same over 256 MiB of copies of those panels,
//                         read from memory as decode reads them: compare with the
//                         one-thread read bandwidth of `slim bench`
//   matmul/<isa>/<type>/<tokens>  matmul() on the default pool; items = tokens
//   quantize/<isa>/<type> activation conversion of a 4096-float row
// Filter with --benchmark_filter, e.g. 'matvec/avx2/.*'.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/repack.h"
#include "kernels/threadpool.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace {

constexpr int64_t kRows = 4096, kCols = 4096;

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct Fixture {
  std::vector<uint8_t> w;
  std::vector<float> x;
};

// quantized weights of one type, built once (quantizing 16M values is slow)
const Fixture& fixture(GgmlType t) {
  static std::vector<Fixture> cache((size_t)GgmlType::COUNT);
  Fixture& f = cache[(size_t)t];
  if (f.w.empty()) {
    auto wf = random_values(kRows * kCols, 1);
    f.w.resize(row_size(t, kCols) * kRows);
    type_traits(t).from_float(wf.data(), f.w.data(), kRows * kCols);
    f.x = random_values(kCols * 128, 2);
  }
  return f;
}

void bm_matvec(benchmark::State& st, Isa isa, GgmlType t) {
  const KernelTable& kt = kernel_table(isa);
  const Fixture& f = fixture(t);
  const GgmlType vt = kt[t].vec_dot_type;
  std::vector<uint8_t> xq(row_size(vt, kCols));
  kt[vt].from_float(f.x.data(), xq.data(), kCols);
  const size_t rs = row_size(t, kCols);
  std::vector<float> y(kRows);
  for (auto _ : st) {
    for (int64_t r = 0; r < kRows; ++r) kt[t].vec_dot(kCols, &y[r], f.w.data() + r * rs, xq.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)f.w.size());
}

void bm_repacked(benchmark::State& st, Isa isa, GgmlType t, bool stream) {
  const KernelRow& k = kernel_table(isa)[t];
  const Fixture& f = fixture(t);
  const GgmlType vt = k.vec_dot_type;
  std::vector<uint8_t> xq(row_size(vt, kCols));
  kernel_table(isa)[vt].from_float(f.x.data(), xq.data(), kCols);
  const size_t pb = repack_format(t).panel_bytes(kCols), rs = row_size(t, kCols);
  const int64_t n_panels = kRows / kRepackRows;
  const int64_t copies = stream ? (int64_t)(((size_t)256 << 20) / (pb * n_panels)) : 1;
  const size_t matrix = pb * n_panels;
  std::unique_ptr<uint8_t[]> owner;
  uint8_t* panels = panel_buffer(matrix * copies, owner);  // as the model's: huge pages
  for (int64_t p = 0; p < n_panels; ++p)
    repack_panel(t, f.w.data() + p * kRepackRows * rs, rs, kRepackRows, kCols, panels + p * pb);
  for (int64_t c = 1; c < copies; ++c) std::memcpy(panels + c * matrix, panels, matrix);
  // the activation scale and quant sum per 32-value block (read by the Q8_0-activation kernels)
  const int64_t nb = kCols / 32;
  std::vector<float> dy(nb);
  std::vector<int32_t> sy(nb);
  if (vt == GgmlType::Q8_0)
    for (int64_t g = 0; g < nb; ++g) {
      const BlockQ8_0& b = ((const BlockQ8_0*)xq.data())[g];
      dy[g] = fp16_to_fp32(b.d);
      sy[g] = 0;
      for (int j = 0; j < 32; ++j) sy[g] += b.qs[j];
    }
  std::vector<float> y(kRows);
  for (auto _ : st) {
    for (int64_t p = 0; p < n_panels * copies; ++p)
      k.gemm_repacked(kCols, panels + p * pb, xq.data(), 0, dy.data(), sy.data(), nullptr, nb, 1,
                      y.data() + p % n_panels * kRepackRows, 0, kRepackRows);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)(matrix * copies));
}

void bm_matmul(benchmark::State& st, Isa isa, GgmlType t, int n_tokens) {
  static ThreadPool pool;
  const KernelTable& kt = kernel_table(isa);
  const Fixture& f = fixture(t);
  Weight w{t, kCols, kRows, f.w.data(), "bench"};
  std::vector<float> y((size_t)(kRows * n_tokens));
  for (auto _ : st) {
    matmul(w, f.x.data(), n_tokens, y.data(), pool, kt);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed((int64_t)st.iterations() * n_tokens);
  st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)f.w.size());
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * kRows * kCols * n_tokens * st.iterations() / 1e9,
                                             benchmark::Counter::kIsRate);
  st.counters["threads"] = pool.size();
}

void bm_quantize(benchmark::State& st, Isa isa, GgmlType t) {
  const KernelTable& kt = kernel_table(isa);
  auto x = random_values(kCols, 3);
  std::vector<uint8_t> q(row_size(t, kCols));
  for (auto _ : st) {
    kt[t].from_float(x.data(), q.data(), kCols);
    benchmark::DoNotOptimize(q.data());
  }
  st.SetBytesProcessed((int64_t)st.iterations() * kCols * 4);
}

// One decode step of one query head over n_keys cached keys and values (F16
// rows of a 2-KV-head cache, head dim 64, as qwen2.5-0.5b): scores, softmax,
// mix. Keys per second.
void bm_attention(benchmark::State& st, Isa isa, int n_keys) {
  const KernelTable& kt = kernel_table(isa);
  constexpr int kDim = 64, kRow = 2 * kDim;
  auto kf = random_values((int64_t)n_keys * kRow, 7), vf = random_values((int64_t)n_keys * kRow, 8);
  std::vector<uint16_t> k(kf.size()), v(vf.size()), q(kDim);
  for (size_t i = 0; i < kf.size(); ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
  for (int i = 0; i < kDim; ++i) q[i] = fp32_to_fp16(kf[i]);
  std::vector<float> s(n_keys), out(kDim);
  for (auto _ : st) {
    kt.attn_f16.scores(n_keys, kDim, q.data(), k.data(), kRow * 2, s.data());
    kt.attn_f16.softmax(n_keys, s.data(), 0.125f, 0.0f);
    std::fill(out.begin(), out.end(), 0.0f);
    kt.attn_f16.mix(n_keys, kDim, s.data(), v.data(), kRow * 2, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["keys/s"] = benchmark::Counter((double)st.iterations() * n_keys, benchmark::Counter::kIsRate);
}

int register_all() {
  const GgmlType weights[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,   GgmlType::Q8_0,
                              GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,   GgmlType::Q5_1,
                              GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                              GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (!isa_available(isa)) continue;
    const std::string in = isa_name(isa);
    for (GgmlType t : weights) {
      benchmark::RegisterBenchmark(("matvec/" + in + "/" + type_name(t)).c_str(), bm_matvec, isa, t)
          ->Unit(benchmark::kMillisecond)->MinTime(0.3);
      if (kernel_table(isa)[t].gemm_repacked)
        for (bool stream : {false, true})
          benchmark::RegisterBenchmark(("repacked/" + in + "/" + type_name(t) + (stream ? "/stream" : "")).c_str(),
                                       bm_repacked, isa, t, stream)
              ->Unit(benchmark::kMillisecond)->MinTime(0.3);
      if (isa == Isa::scalar) continue;  // the scalar matmul is the matvec above, times tokens
      for (int n : {1, 64})
        benchmark::RegisterBenchmark(("matmul/" + in + "/" + type_name(t) + "/" + std::to_string(n)).c_str(),
                                     bm_matmul, isa, t, n)
            ->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
    }
    for (int n : {128, 1024})
      benchmark::RegisterBenchmark(("attention/" + in + "/f16/" + std::to_string(n)).c_str(), bm_attention, isa, n)
          ->MinTime(0.2);
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::F16, GgmlType::BF16})
      benchmark::RegisterBenchmark(("quantize/" + in + "/" + type_name(t)).c_str(), bm_quantize, isa, t)
          ->MinTime(0.1);
  }
  return 0;
}

const int registered = register_all();

}  // namespace
}  // namespace slim

BENCHMARK_MAIN();
