// AVX2 + FMA training loops: loops_body.inc over 8-float vectors.
#include "train/loops.h"

namespace slim::train {
namespace avx2 {

typedef float Vec __attribute__((vector_size(32)));
constexpr int kLanes = 8;
#include "train/loops_body.inc"

}  // namespace avx2

void fill_gemm_avx2(GemmLoops& t) {
  t.gemm_nt = avx2::gemm_nt;
  t.gemm_nn = avx2::gemm_nn;
}

}  // namespace slim::train
