// The scalar reference loops and the per-ISA table.
#include "train/loops.h"

namespace slim::train {

void gemm_nt_ref(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                 bool accumulate) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float s = 0;
      for (int k = 0; k < K; ++k) s += A[(size_t)m * lda + k] * B[(size_t)n * ldb + k];
      float& c = C[(size_t)m * ldc + n];
      c = accumulate ? c + s : s;
    }
}

void gemm_nn_ref(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) {
      const float a = A[(size_t)m * lda + k];
      for (int n = 0; n < N; ++n) C[(size_t)m * ldc + n] += a * B[(size_t)k * ldb + n];
    }
}

namespace {

GemmLoops build(Isa isa) {
  GemmLoops t;
  t.isa = isa;
  t.gemm_nt = gemm_nt_ref;
  t.gemm_nn = gemm_nn_ref;
  if (isa == Isa::avx2) fill_gemm_avx2(t);
  if (isa == Isa::avx512) fill_gemm_avx512(t);
  return t;
}

}  // namespace

const GemmLoops& gemm_loops(Isa isa) {
  static const GemmLoops tables[kIsaCount] = {build(Isa::scalar), build(Isa::avx2), build(Isa::avx512)};
  return tables[(int)isa];
}

const GemmLoops& gemm_loops() { return gemm_loops(kernels().isa); }

}  // namespace slim::train
