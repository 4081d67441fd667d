// Internal: the software prefetch of the decode kernels over panels
// (repack_avx2.cpp, repack_avx512.cpp), one distance for every ISA.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace slim {
namespace {  // internal linkage: each ISA's file keeps its own copy, built with its own flags

// Decode reads each weight byte once and the kernels outrun what the
// out-of-order window keeps in flight: prefetch a fixed distance ahead
// (8 KiB measured best at 2 threads on qwen2.5-0.5b Q4_0: 200 tokens/s
// against 173 without, 193 at 4 KiB and 190 at 16 KiB).
constexpr size_t kPrefetchAhead = 8192;

// Part i of kParts of a kBytes block, that distance ahead of the block at p.
// The K-quant kernels call it once per sub-block: a whole block's 37 (Q4_K)
// or 53 (Q6_K) lines asked for at once fill the core's miss buffers in a
// burst. One thread streaming 512 MiB of Q6_K panels read 38.0 GB/s that way
// and 41.4 GB/s with the requests spread (43.0 is the probe's figure); Q4_K
// stayed at 41.
template <size_t kBytes, int kParts = 1>
inline void prefetch_part(const uint8_t* p, int i = 0) {
  constexpr size_t part = (kBytes + kParts - 1) / kParts;
  for (size_t o = 0; o < part; o += 64)
    _mm_prefetch((const char*)p + kPrefetchAhead + part * i + o, _MM_HINT_T0);
}

}  // namespace
}  // namespace slim
