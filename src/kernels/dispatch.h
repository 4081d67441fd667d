// Runtime choice of the kernel set: CPUID detection of scalar / AVX2 / AVX-512,
// the SLIM_ISA environment override, and one table per ISA with the same row
// layout as the scalar type table (tensor/types.h) plus a multi-token dot.
// Rows without a SIMD kernel fall back to the scalar reference, so every ISA
// table is complete for every supported type.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "tensor/types.h"

namespace slim {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };
constexpr int kIsaCount = 3;

const char* isa_name(Isa isa);
bool isa_available(Isa isa);  // CPU and OS support it (the binary always contains every path)
Isa best_isa();               // the fastest available
// Parses "scalar" / "avx2" / "avx512"; an error for other names or an ISA this CPU lacks.
Result<Isa> parse_isa(const char* name);

// Dot products of one weight row x with nc <= kMaxTileTokens activation rows
// y, y + y_stride, ... (bytes); out[c] = dot(x, y_c). The fast kernels unpack
// each weight block once and reuse it for every token: the prefill tile.
constexpr int kMaxTileTokens = 4;
using VecDotMultiFn = void (*)(int64_t n, float* out, const void* x, const void* y,
                               size_t y_stride, int nc);

// Prefill GEMM on row panels. pack_panel converts kPanelRows weight rows
// (missing rows: zeros) into a panel; per 32-value block: 8 chunks of 64 bytes
// — chunk s holds values 4s..4s+3 of row r in bytes 4r..4r+3, as unsigned
// bytes u = w + offset — then per group of `group` values (16 or 32) the 16 row
// scales as floats, then (types with mins) per group the 16 row mins. A row's
// value is scale * (u - offset) - min. gemm_panel multiplies a panel with nc <=
// kGemmTokens activation rows of the type's vec_dot_type (Q8_0 or Q8_K),
// `stride` bytes apart, given per token c and group g ([c * info_stride + g]):
// dy, the activation scale; sy, the sum of the group's quants (types without
// mins); my, dy times that sum (types with mins):
//   y[c * ldy + r] = sum_g dy * (scale_r,g * sum_i (u_r,i - offset) q_c,i) - min_r,g * my
// for r < n_rows. Null when the ISA has no GEMM for the type.
constexpr int kPanelRows = 16;
constexpr int kGemmTokens = 8;
struct PanelFormat {
  int group = 0;  // 32 or 16 values per scale; 0: the type has no panel form
  bool mins = false;
  int offset = 0;
  size_t block_bytes() const { return 512 + (size_t)(32 / group) * 64 * (mins ? 2 : 1); }
};
using PackPanelFn = void (*)(const void* w, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel);
using GemmPanelFn = void (*)(int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                             const int32_t* sy, const float* my, size_t info_stride, int nc, float* y, int64_t ldy,
                             int n_rows);

// A type-table row (block sizes, to_float, from_float, vec_dot, vec_dot_type)
// whose from_float / vec_dot point at this ISA's kernels, plus the tile dot
// and the optional panel GEMMs.
struct KernelRow : TypeTraits {
  VecDotMultiFn vec_dot_multi = nullptr;
  // The panel GEMM over row-interleaved weights (repack.h), for any number of
  // tokens (the pack argument, the mins `my`, is unused); null: not repacked.
  GemmPanelFn gemm_repacked = nullptr;
  // Rows to one panel of that layout, byte for byte repack_panel (the scalar
  // reference, used where this is null).
  PackPanelFn repack = nullptr;
  PackPanelFn pack_panel = nullptr;
  GemmPanelFn gemm_panel = nullptr;
  PanelFormat panel;
};

// The panel form of a type (group 0: none) and scalar twins of the panel
// kernels (tests compare the SIMD ones with these).
PanelFormat panel_format(GgmlType t);
void pack_panel_ref(GgmlType t, const void* w, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel);
void gemm_panel_ref(GgmlType t, int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                    const int32_t* sy, const float* my, size_t info_stride, int nc, float* y, int64_t ldy,
                    int n_rows);

// Attention inner loops over the cached keys / values of one KV head, rows
// `stride` bytes apart, elements of the cache's type (F32, F16 or Q8_0; the
// query is given in that same type):
//   scores: s[j] = dot(q, k_j) for j < n_keys                 (dim values each)
//   mix:    out[i] += sum over j of w[j] * v_j[i] (dim values each; the order of the adds is the kernel's)
// Q8_0 rows are ggml blocks (dim a multiple of 32): as ggml, the query meets
// the keys through the integer Q8_0 x Q8_0 dot (per block d_q * d_k * sum of
// the quant products), and V is dequantized (d * q) before it is weighted.
using AttnScoresFn = void (*)(int64_t n_keys, int64_t dim, const void* q, const void* k, size_t stride, float* s);
using AttnMixFn = void (*)(int64_t n_keys, int64_t dim, const float* w, const void* v, size_t stride, float* out);
//   softmax: s[j] = exp(t_j - max t) / sum over j, t_j = s[j] * scale, soft-capped
//            to cap * tanh(t_j / cap) when cap > 0
using AttnSoftmaxFn = void (*)(int64_t n, float* s, float scale, float cap);
struct AttnKernels {
  AttnScoresFn scores = nullptr;
  AttnMixFn mix = nullptr;
  AttnSoftmaxFn softmax = nullptr;
};

// The FFN's SwiGLU: out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x);
// out may be gate. The vector forms use a polynomial exp within a few ulp of
// expf, as ggml's vector silu does.
using SwigluFn = void (*)(int64_t n, const float* gate, const float* up, float* out);
void swiglu_ref(int64_t n, const float* gate, const float* up, float* out);
// The scalar softmax (the twin every ISA's is tested against).
void attn_softmax_ref(int64_t n, float* s, float scale, float cap);

struct KernelTable {
  Isa isa = Isa::scalar;
  AttnKernels attn_f32, attn_f16, attn_q8_0;  // by KV cache type
  SwigluFn swiglu = swiglu_ref;
  KernelRow rows[(size_t)GgmlType::COUNT];
  const KernelRow& operator[](GgmlType t) const { return rows[(size_t)t]; }
};

// The table of one ISA (must be available; tests walk every available ISA).
const KernelTable& kernel_table(Isa isa);

// Chooses the active ISA from SLIM_ISA (or the best available when unset).
// Returns an error naming the problem when SLIM_ISA is unknown or unavailable;
// then the best ISA stays active. Safe to call more than once.
Status init_kernels();
// The active table; calls init_kernels() on first use (an error is printed once to stderr).
const KernelTable& kernels();
// Overrides the active ISA (tests, benchmarks); the ISA must be available.
void set_active_isa(Isa isa);

}  // namespace slim
