// Internal: entry points of the per-ISA kernel files. Each fills the rows it
// has SIMD kernels for, over a table already holding the scalar rows.
#pragma once

#include "kernels/dispatch.h"

namespace slim {

void fill_rows_avx2(KernelRow* rows);
void fill_rows_avx512(KernelRow* rows);
void fill_attn_avx2(KernelTable& t);
void fill_attn_avx512(KernelTable& t);

}  // namespace slim
