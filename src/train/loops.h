// The two matrix loops every training matmul reduces to, one table per ISA
// (scalar reference, AVX2, AVX-512), chosen with the inference kernels' ISA
// (kernels/dispatch.h: SLIM_ISA forces a path for both).
//
//   gemm_nt: C[m][n] = (accumulate ? C[m][n] : 0) + sum_k A[m][k] B[n][k]   (A times B transposed)
//   gemm_nn: C[m][n] += sum_k A[m][k] B[k][n]
//
// A forward product y = x W^T is gemm_nt(x, W); the input gradient dx = dy W
// is gemm_nn(dy, W); the weight gradient dW += dy^T x is gemm_nn(dy^T, x).
// Row-major, leading dimensions in floats. The callers split M across
// threads, so each C row is computed by one call in one order: results do
// not depend on the thread count.
#pragma once

#include "kernels/dispatch.h"

namespace slim::train {

using GemmNtFn = void (*)(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                          int ldc, bool accumulate);
using GemmNnFn = void (*)(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                          int ldc);

struct GemmLoops {
  Isa isa = Isa::scalar;
  GemmNtFn gemm_nt = nullptr;
  GemmNnFn gemm_nn = nullptr;
};

// The plain loops (the twins the SIMD ones are tested against).
void gemm_nt_ref(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                 bool accumulate);
void gemm_nn_ref(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc);

// The table of an available ISA, and the one for the active inference ISA.
const GemmLoops& gemm_loops(Isa isa);
const GemmLoops& gemm_loops();

// Per-ISA files (loops_avx2.cpp, loops_avx512.cpp).
void fill_gemm_avx2(GemmLoops& t);
void fill_gemm_avx512(GemmLoops& t);

}  // namespace slim::train
