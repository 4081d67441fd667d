// Row-interleaved ("repacked") weights: the layout decode and prefill read
// when the ISA has kernels for it, made once when a model is loaded.
//
// Why: a matrix x vector product over GGUF rows needs a horizontal sum per
// row and re-gathers every block's quants and scale; at two cores that costs
// more than reading the bytes from memory. Interleaving 16 rows puts row l's
// values in lane l of a 512-bit vector: one broadcast activation word meets
// 16 rows in one VNNI step, the 16 scales are one load, and the 16 results
// come out as one vector. The bytes per weight are those of the GGUF type
// (Q4_K: +2.8 % for its unpacked 6-bit scales), so decode still reads each
// weight byte once.
//
// A panel is 16 consecutive rows (missing rows of the last panel are zeros);
// a panel holds cols / block_values block columns of block_bytes each. Within
// a 32-value group, step s (0..7) is values 4s..4s+3: lane l (bytes 4l..4l+3)
// of a step vector holds row l's four values as unsigned bytes u, the value
// being scale * (u - offset) (- min for Q4_K). Per block column:
//   Q8_0  544 B: 8 step vectors of u = q + 128; 16 fp16 d
//   Q4_0  288 B: 4 vectors, byte = u(step k) | u(step k + 4) << 4; 16 fp16 d
//   Q5_0  352 B: Q4_0's 4 nibble vectors (low 4 bits); 64 B with bit s of
//                byte i = bit 4 of step s's byte i; 16 fp16 d
//   Q4_K 2368 B: per 32-value sub-block j (8): Q4_0's 4 nibble vectors;
//                then 8 x 16 scales (u8, sub-block j's at 16 j), 8 x 16 mins,
//                16 fp16 d, 16 fp16 dmin
//   Q6_K 3360 B: per 32 values j (8): 4 nibble vectors (low 4 bits) and two
//                64 B vectors of the top two bits (bits 2s, 2s+1 of byte i:
//                step s of the first four, then of the last four); then
//                16 x 16 int8 scales (16-value sub-block k's at 16 k), 16 fp16 d
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/types.h"

namespace slim {

constexpr int kRepackRows = 16;

struct RepackFormat {
  int64_t block_values = 0;  // 0: the type has no repacked form
  size_t block_bytes = 0;    // one block column of a 16-row panel
  size_t panel_bytes(int64_t cols) const { return (size_t)(cols / block_values) * block_bytes; }
};
RepackFormat repack_format(GgmlType t);

// Rows (row_bytes apart, n_rows <= 16, GGUF blocks) to one panel. The
// scalar reference; KernelRow::repack (kernels/dispatch.h) is the fast twin.
void repack_panel(GgmlType t, const void* rows, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel);
// The inverse: row r of a panel back to its GGUF blocks (tests, and the
// statement of the layout the kernels rely on).
void unpack_panel_row(GgmlType t, const uint8_t* panel, int r, int64_t cols, void* row);

// A buffer of `bytes` for panels, owned by `owner`, on 2 MiB transparent
// huge pages where the system grants them (a hint; else 4 KiB pages).
uint8_t* panel_buffer(size_t bytes, std::unique_ptr<uint8_t[]>& owner);

}  // namespace slim
