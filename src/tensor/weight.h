// A weight matrix or vector that lives in memory someone else owns (usually
// the mapped GGUF): ne0 values per row, ne1 rows, of one tensor type.
// This is what kernels (matmul) and models pass around.
#pragma once

#include <cstdint>

#include "tensor/types.h"

namespace slim {

struct Weight {
  GgmlType type = GgmlType::F32;
  int64_t ne0 = 0, ne1 = 0;
  const uint8_t* data = nullptr;
  const char* name = nullptr;   // for error messages and traces
  // The same rows interleaved 16 at a time (kernels/repack.h) when the model
  // was repacked for the active ISA; matmul prefers it, data stays valid.
  const uint8_t* repacked = nullptr;
  explicit operator bool() const { return data != nullptr; }
  size_t row_bytes() const { return row_size(type, ne0); }
  const uint8_t* row(int64_t r) const { return data + r * row_bytes(); }
};

}  // namespace slim
