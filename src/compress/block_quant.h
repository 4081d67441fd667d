// Error-minimising quantization of weight rows into the GGUF block formats.
//
// The tensor/ reference quantizers round against a scale taken from the
// block's largest value (the legacy types) or a short grid of candidate
// scales (the K-quants). The file format only fixes how a block is decoded,
// so any choice of scales and indices is a valid block; these quantizers
// search for the one with the least weighted squared error
//     sum_j w_j (x_j - dequant(q)_j)^2
// — same bytes layout, lower error. The weights come from an importance
// matrix when there is one (row_weights).
//
//   single-scale blocks (Q4_0, Q5_0, Q8_0, IQ4_NL): an exact sweep over every
//     inverse scale at which some value changes its level, in a window around
//     the no-clipping scale, each assignment scored with its least-squares
//     scale; then alternating re-rounding / refitting, then the best of the
//     neighbouring fp16 scales, evaluated exactly as stored.
//   scale + offset blocks (Q4_1, Q5_1): the same sweep with a joint
//     least-squares fit of scale and offset.
//   super-blocks (Q2_K..Q6_K, IQ4_XS): the sweep per sub-block, then the
//     super-block scale(s) chosen by a weighted fit of the sub-block scales on
//     their integer grid, then every sub-block's integer scale (and min)
//     re-chosen among its neighbours by the actual error, then a least-squares
//     refit of the super-block scales over all 256 values, repeated twice.
#pragma once

#include <cstdint>

#include "tensor/types.h"

namespace slim {

// Whether quantize_row_search can write type t (every type slim quantize offers).
bool block_search_supported(GgmlType t);

// The per-value weights of one row of n values: sqrt(sigma^2 + x_j^2), with
// sigma^2 the row's mean square — uniform for the bulk of the values, growing
// like |x| for the outliers — times importance_j, the imatrix column mean for
// this row's columns (n values), when given (null: none). Uniform weights
// minimise the output error when activations are alike; x^2 (llama.cpp's
// Q6_K/Q3_K/IQ4 choice) protects the large weights that trained models
// depend on. The square root of the two was measured best on stories260K and
// within noise of uniform on the random-weight models (see the note).
void row_weights(const float* x, int64_t n, const float* importance, float* w);

// Quantizes n values (n a multiple of t's block size) to type t into dst,
// minimising the weighted squared error with weights w (n values; null: all
// ones). F32/F16/BF16 convert with the reference rounding.
void quantize_row_search(GgmlType t, const float* x, const float* w, void* dst, int64_t n);

// sum_j w_j (x_j - dequant_j)^2 of n quantized values (w null: all ones).
double weighted_sq_error(GgmlType t, const void* q, const float* x, const float* w, int64_t n);

}  // namespace slim
