// Matrix products of a weight matrix with a batch of activation rows — the
// one entry point the forward pass calls for every linear layer.
//
//   Weight w (tensor/weight.h): ne0 = cols (input features), ne1 = rows (outputs)
//   matmul(w, x, n_tokens, y, pool);   // y[t*ne1 + r] = dot(W[r, :], x[t*ne0 + :])
//
// x is n_tokens rows of ne0 floats, y n_tokens rows of ne1 floats
// (row-major, token-major, like ggml_mul_mat's result). Following ggml's CPU
// rules, x is first converted once per call to the weight type's vec_dot_type
// (Q8_0, Q8_1, Q8_K, F16, BF16 or F32) and the dot products run on those
// blocks, so results match llama.cpp to float rounding. Rows are split across
// the pool's threads in dynamically scheduled chunks. A weight with 16-row
// panels (Weight::repacked, kernels/repack.h) is read from them for any
// number of tokens when the table has the kernels; otherwise, with n_tokens > 1
// each weight block is unpacked once and used for several tokens, and a chunk
// of rows stays in cache while all tokens pass over it (prefill).
// The kernels come from kernels() (dispatch.h) unless a table is given.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "tensor/types.h"
#include "tensor/weight.h"

namespace slim {

// Checks that matmul can compute w: known, supported type and cols a multiple
// of its block size. Call once at load time; matmul itself only asserts.
Status matmul_check(const Weight& w);

void matmul(const Weight& w, const float* x, int n_tokens, float* y, ThreadPool& pool);
void matmul(const Weight& w, const float* x, int n_tokens, float* y, ThreadPool& pool,
            const KernelTable& table);

// Rows r0..r1-1 of w only (a slice of a fused QKV or gate|up matrix):
// y[t*ldy + (r - r0)] = dot(W[r, :], x[t*ne0 + :]).
void matmul_rows(const Weight& w, int64_t r0, int64_t r1, const float* x, int n_tokens, float* y,
                 int64_t ldy, ThreadPool& pool, const KernelTable& table);

// Same, for activations already converted to type_traits(w.type).vec_dot_type
// (n_tokens rows of row_size(vec_dot_type, ne0) bytes): lets a caller quantize
// once and reuse the blocks for several weights (Q, K and V of one layer).
void matmul_quantized(const Weight& w, int64_t r0, int64_t r1, const void* xq, int n_tokens,
                      float* y, int64_t ldy, ThreadPool& pool, const KernelTable& table);

// Several products of the same activations in one dispatch of the pool (Q, K
// and V; gate and up): one barrier instead of one a product, and each
// activation type converted once. Each part is a matmul_rows.
struct MatmulPart {
  const Weight* w = nullptr;
  int64_t r0 = 0, r1 = 0;
  float* y = nullptr;
  int64_t ldy = 0;
};
void matmul_many(const MatmulPart* parts, int n_parts, const float* x, int n_tokens, ThreadPool& pool,
                 const KernelTable& table);

// Converts n_tokens rows of cols floats to `type` (the dot partner), row after row.
void quantize_activations(GgmlType type, const float* x, int64_t cols, int n_tokens, void* out,
                          ThreadPool& pool, const KernelTable& table);

}  // namespace slim
