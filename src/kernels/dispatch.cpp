// CPUID detection, SLIM_ISA parsing and the per-ISA kernel tables.
#include "kernels/dispatch.h"

#include <cpuid.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include "base/fp16.h"
#include "kernels/kernels_isa.h"
#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {
namespace {

struct CpuFeatures {
  bool avx2 = false, avx512 = false;
};

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
             f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE and AVX state saved by the OS
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;          // plus opmask and ZMM state
  if (!os_ymm || __get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31), vnni = c & (1u << 11);
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  const bool bf16 = a1 & (1u << 5);
  f.avx2 = avx2 && fma && f16c && bmi2;
  f.avx512 = f.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl && vnni && bf16;
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

// Scalar tile, the slow twin of every vec_dot_multi: one scalar vec_dot per token.
struct MultiFallback {
  static VecDotFn fns[(size_t)GgmlType::COUNT];
  template <size_t I>
  static void call(int64_t n, float* out, const void* x, const void* y, size_t y_stride, int nc) {
    for (int c = 0; c < nc; ++c) fns[I](n, out + c, x, (const char*)y + c * y_stride);
  }
};
VecDotFn MultiFallback::fns[(size_t)GgmlType::COUNT];

template <size_t... I>
constexpr auto make_fallbacks(std::index_sequence<I...>) {
  return std::array<VecDotMultiFn, sizeof...(I)>{&MultiFallback::call<I>...};
}

// Scalar attention loops: the slow twins of fill_attn_*.
template <class E, float (*Cvt)(E)>
void attn_scores_ref(int64_t n_keys, int64_t dim, const void* q, const void* k, size_t stride, float* s) {
  const E* qv = (const E*)q;
  for (int64_t j = 0; j < n_keys; ++j) {
    const E* kv = (const E*)((const char*)k + j * stride);
    float sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += Cvt(qv[i]) * Cvt(kv[i]);
    s[j] = sum;
  }
}

template <class E, float (*Cvt)(E)>
void attn_mix_ref(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out) {
  for (int64_t j = 0; j < n_keys; ++j) {
    const E* vv = (const E*)((const char*)v + j * stride);
    for (int64_t i = 0; i < dim; ++i) out[i] += w[j] * Cvt(vv[i]);
  }
}

// Q8_0 cache: each score is the type table's Q8_0 x Q8_0 dot (ggml's
// vec_dot_q8_0_q8_0); each V row is dequantized as dequantize_row_q8_0 does.
void attn_scores_q8_0_ref(int64_t n_keys, int64_t dim, const void* q, const void* k, size_t stride, float* s) {
  for (int64_t j = 0; j < n_keys; ++j) vec_dot_q8_0_q8_0(dim, s + j, (const char*)k + j * stride, q);
}

void attn_mix_q8_0_ref(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out) {
  for (int64_t j = 0; j < n_keys; ++j) {
    const BlockQ8_0* vb = (const BlockQ8_0*)((const char*)v + j * stride);
    for (int64_t b = 0; b < dim / kQK; ++b) {
      const float d = fp16_to_fp32(vb[b].d);
      for (int i = 0; i < kQK; ++i) out[b * kQK + i] += w[j] * (vb[b].qs[i] * d);
    }
  }
}

}  // namespace

void attn_softmax_ref(int64_t n, float* s, float scale, float cap) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    float t = s[j] * scale;
    if (cap > 0) t = cap * std::tanh(t / cap);
    s[j] = t;
    mx = std::max(mx, t);
  }
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) { s[j] = std::exp(s[j] - mx); sum += s[j]; }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
}

void swiglu_ref(int64_t n, const float* gate, const float* up, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

namespace {

inline float cvt_f32(float x) { return x; }
inline float cvt_f16(uint16_t x) { return fp16_to_fp32(x); }

KernelTable build(Isa isa) {
  KernelTable t;
  t.isa = isa;
  static const auto fallbacks = make_fallbacks(std::make_index_sequence<(size_t)GgmlType::COUNT>{});
  for (size_t i = 0; i < (size_t)GgmlType::COUNT; ++i) {
    static_cast<TypeTraits&>(t.rows[i]) = type_traits((GgmlType)i);
    MultiFallback::fns[i] = type_traits((GgmlType)i).vec_dot;
    if (t.rows[i].vec_dot) t.rows[i].vec_dot_multi = fallbacks[i];
  }
  t.attn_f32 = {attn_scores_ref<float, cvt_f32>, attn_mix_ref<float, cvt_f32>, attn_softmax_ref};
  t.attn_f16 = {attn_scores_ref<uint16_t, cvt_f16>, attn_mix_ref<uint16_t, cvt_f16>, attn_softmax_ref};
  t.attn_q8_0 = {attn_scores_q8_0_ref, attn_mix_q8_0_ref, attn_softmax_ref};
  if (isa == Isa::avx2) fill_rows_avx2(t.rows), fill_repacked_avx2(t.rows), fill_float_avx2(t);
  if (isa == Isa::avx512) fill_rows_avx512(t.rows), fill_repacked_avx512(t.rows), fill_float_avx512(t);
  // after fill_float_*: the Q8_0 loops reuse that ISA's softmax
  if (isa == Isa::avx2) fill_attn_q8_avx2(t);
  if (isa == Isa::avx512) fill_attn_q8_avx512(t);
  return t;
}

std::atomic<const KernelTable*> g_active{nullptr};
std::once_flag g_init_once;
Status g_init_status;

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return features().avx2;
    case Isa::avx512: return features().avx512;
  }
  return false;
}

Isa best_isa() {
  if (isa_available(Isa::avx512)) return Isa::avx512;
  if (isa_available(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

Result<Isa> parse_isa(const char* name) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(name, isa_name(isa)) != 0) continue;
    if (!isa_available(isa))
      return Status::error(format("SLIM_ISA=%s: this CPU does not support %s (best available: %s)",
                                  name, name, isa_name(best_isa())));
    return isa;
  }
  return Status::error(format("SLIM_ISA=%s: unknown ISA (use scalar, avx2 or avx512)", name));
}

const KernelTable& kernel_table(Isa isa) {
  // built once each; the avx2/avx512 tables are only built when asked for
  static const KernelTable scalar = build(Isa::scalar);
  if (isa == Isa::avx2) {
    static const KernelTable t = build(Isa::avx2);
    return t;
  }
  if (isa == Isa::avx512) {
    static const KernelTable t = build(Isa::avx512);
    return t;
  }
  return scalar;
}

Status init_kernels() {
  std::call_once(g_init_once, [] {
    Isa isa = best_isa();
    const char* env = std::getenv("SLIM_ISA");
    if (env && *env) {
      Result<Isa> r = parse_isa(env);
      if (r.ok()) isa = *r;
      else g_init_status = Status::error(r.error());
    }
    g_active.store(&kernel_table(isa));
  });
  return g_init_status;
}

const KernelTable& kernels() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t) return *t;
  static std::once_flag warned;
  Status s = init_kernels();
  if (!s.ok()) std::call_once(warned, [&] { std::fprintf(stderr, "slim: %s\n", s.message().c_str()); });
  return *g_active.load();
}

void set_active_isa(Isa isa) {
  init_kernels();
  g_active.store(&kernel_table(isa_available(isa) ? isa : Isa::scalar));
}

}  // namespace slim
