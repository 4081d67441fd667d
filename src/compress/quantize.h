// `slim quantize`: rewrites a GGUF model with its tensors in another type.
//
// plan_quantize decides every tensor's type (the recipe of recipe.h, or
// --pure, then the user's overrides, then the row-length fallback) without
// touching any data; quantize_file carries the plan out: rows in parallel on
// a thread pool, each quantized by the error-minimising search of
// block_quant.h (weighted by the importance matrix when one is given),
// streamed into a temporary file that is renamed into place only when
// complete. Metadata is copied; general.file_type and
// general.quantization_version are set as llama.cpp's tools expect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "compress/imatrix.h"
#include "compress/recipe.h"
#include "tensor/types.h"

namespace slim {

class GgufFile;

// --tensor-type PATTERN=TYPE: PATTERN is an ECMAScript regular expression
// searched anywhere in the tensor name (as llama-quantize does).
struct TensorTypeOverride {
  std::string pattern;
  GgmlType type = GgmlType::F32;
};

struct QuantizeParams {
  std::string ftype;                      // a kFileTypes name, e.g. "Q4_K_M"
  bool pure = false;                      // the base type for every matrix, no mix
  std::optional<GgmlType> output_type;    // the LM head (output.weight, or token_embd when tied)
  std::optional<GgmlType> token_embd_type;
  std::vector<TensorTypeOverride> overrides;  // first matching pattern wins
  const Imatrix* imatrix = nullptr;
  std::string imatrix_path;               // recorded in the output's metadata
  bool allow_requantize = false;
  int n_threads = 0;                      // 0: physical cores
};

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType from = GgmlType::F32, to = GgmlType::F32;
  bool convert = false;        // false: copied byte for byte
  bool importance = false;     // quantized with imatrix weights
  std::string note;            // why the type differs from what was asked (fallback), else empty
  size_t in_bytes = 0, out_bytes = 0;
  int64_t n_elements() const;
};

struct QuantizePlan {
  const FileType* ftype = nullptr;
  std::vector<TensorPlan> tensors;
  size_t in_bytes = 0, out_bytes = 0;  // tensor data
  int64_t n_elements = 0;
  // bits per weight of the tensor data (every tensor counted)
  double bpw() const { return n_elements ? 8.0 * (double)out_bytes / (double)n_elements : 0; }
};

// A tensor type name ("q4_k", "F16") slim can write; an error naming the
// allowed ones otherwise.
Result<GgmlType> parse_quant_type(const std::string& name);
// "PATTERN=TYPE" (the pattern must compile).
Result<TensorTypeOverride> parse_tensor_type_override(const std::string& spec);

Result<QuantizePlan> plan_quantize(const GgufFile& f, const QuantizeParams& p);

struct QuantizeProgress {
  size_t done_bytes = 0, total_bytes = 0;  // output tensor bytes
  int tensor = 0, n_tensors = 0;           // index of the tensor in progress
  const char* name = "";
};
// Called from whichever thread finished a piece of work, never two at once.
using QuantizeProgressFn = std::function<void(const QuantizeProgress&)>;

struct QuantizeResult {
  QuantizePlan plan;
  size_t file_bytes = 0;
  double seconds = 0;
};

// Quantizes IN into OUT (written as OUT.tmp.* and renamed; on any error
// nothing is left behind). Refuses OUT equal to IN.
Result<QuantizeResult> quantize_file(const std::string& in, const std::string& out, const QuantizeParams& p,
                                     const QuantizeProgressFn& progress = nullptr);

}  // namespace slim
