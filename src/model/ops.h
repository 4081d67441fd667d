// The operations a forward pass is made of, on plain float rows. Each family's
// layer function calls these in order; none of them knows about architectures.
#pragma once

#include <cstdint>

#include "kernels/matmul.h"
#include "model/hparams.h"
#include "model/model.h"

namespace slim {

class ThreadPool;
// The state's pool, or a one-thread pool when it has none.
ThreadPool& pool_of(ForwardState& st);

// y[t][r] = dot(w row r, x[t]) for t < n_tokens: x is [n_tokens][w.ne0], y [n_tokens][w.ne1].
// Activations are converted once to the weight type's dot partner, as ggml does.
void matmul(const Weight& w, const float* x, int n_tokens, float* y, ForwardState& st);
// Same for rows [r0, r1) of w only; y is [n_tokens][ldy].
void matmul_rows(const Weight& w, int64_t r0, int64_t r1, const float* x, int n_tokens, float* y,
                 int64_t ldy, ForwardState& st);
// Several products of the same x (Q, K, V; gate and up) in one dispatch of the
// pool: for one token, one barrier instead of one a product.
void matmul_many(const MatmulPart* parts, int n_parts, const float* x, int n_tokens, ForwardState& st);

void rms_norm(const float* x, const float* w, float* y, int n, float eps);
void add_bias(float* y, const float* b, int n_tokens, int n);
// RoPE in two steps. rope_angles: the n_rot / 2 cosines and sines of the
// angles pos * freq_scale * freq_base^(-2i/n_rot) (divided by freq_factors[i]
// when given), scaled by mscale (LongRoPE's attention factor, 1 otherwise);
// every layer with the same parameters shares them. rope_rotate: rotates
// each head's first n_rot values by them.
void rope_angles(int pos, int n_rot, float freq_base, float freq_scale, const float* freq_factors, float mscale,
                 float* cs, float* sn);
void rope_rotate(float* v, int n_head, int head_dim, int n_rot, RopeType type, const float* cs, const float* sn);
float gelu_tanh(float x);         // ggml's table form: input and output rounded through F16
void softcap(float* x, int n, float cap);  // cap * tanh(x / cap)

}  // namespace slim
