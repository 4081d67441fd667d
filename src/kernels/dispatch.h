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

// A type-table row (block sizes, to_float, from_float, vec_dot, vec_dot_type)
// whose from_float / vec_dot point at this ISA's kernels, plus the tile dot.
struct KernelRow : TypeTraits {
  VecDotMultiFn vec_dot_multi = nullptr;
};

struct KernelTable {
  Isa isa = Isa::scalar;
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
