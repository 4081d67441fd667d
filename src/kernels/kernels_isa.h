// Internal: entry points of the per-ISA kernel files. Each fills the rows it
// has SIMD kernels for, over a table already holding the scalar rows.
#pragma once

#include "kernels/dispatch.h"

namespace slim {

void fill_rows_avx2(KernelRow* rows);
void fill_repacked_avx2(KernelRow* rows);
void fill_rows_avx512(KernelRow* rows);
void fill_repacked_avx512(KernelRow* rows);  // after fill_rows_avx512: uses its vec_dots
void fill_float_avx2(KernelTable& t);
void fill_float_avx512(KernelTable& t);
// The float loops: attention over F32/F16 caches, softmax, SwiGLU.
// The Q8_0-cache attention loops (attn_q8_*.cpp); after fill_float_*, whose softmax they take.
void fill_attn_q8_avx2(KernelTable& t);
void fill_attn_q8_avx512(KernelTable& t);

}  // namespace slim
