// AVX-512 training loops: loops_body.inc over 16-float vectors.
#include "train/loops.h"

namespace slim::train {
namespace avx512 {

typedef float Vec __attribute__((vector_size(64)));
constexpr int kLanes = 16;
#include "train/loops_body.inc"

}  // namespace avx512

void fill_gemm_avx512(GemmLoops& t) {
  t.gemm_nt = avx512::gemm_nt;
  t.gemm_nn = avx512::gemm_nn;
}

}  // namespace slim::train
