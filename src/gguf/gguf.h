// GGUF files: a read-only memory-mapped reader (v2, v3) and a writer.
// The reader validates every count, offset and size against the file length
// before touching it, and never copies tensor data: TensorInfo::data points
// into the mapping, which lives as long as the GgufFile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/types.h"

namespace slim {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

struct GgufArray;

// One metadata value. Integers (and bools) are kept in `i` (uint64 bit-cast),
// floats in `f`; the original type is kept so a written file reads back identically.
struct GgufValue {
  GgufType type = GgufType::UINT32;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<GgufArray> arr;

  static GgufValue u32(uint32_t v) { GgufValue x; x.type = GgufType::UINT32; x.i = v; return x; }
  static GgufValue i32(int32_t v) { GgufValue x; x.type = GgufType::INT32; x.i = v; return x; }
  static GgufValue u64(uint64_t v) { GgufValue x; x.type = GgufType::UINT64; x.i = (int64_t)v; return x; }
  static GgufValue f32(float v) { GgufValue x; x.type = GgufType::FLOAT32; x.f = v; return x; }
  static GgufValue boolean(bool v) { GgufValue x; x.type = GgufType::BOOL; x.i = v; return x; }
  static GgufValue str(std::string v) { GgufValue x; x.type = GgufType::STRING; x.s = std::move(v); return x; }
  static GgufValue array_of(GgufArray a);

  bool is_int() const;    // any integer type or bool
  bool is_float() const;  // FLOAT32 / FLOAT64
  bool is_array() const { return type == GgufType::ARRAY; }
  bool operator==(const GgufValue& o) const;
};

// An array keeps its element type; elements live in the vector matching it.
struct GgufArray {
  GgufType elem_type = GgufType::UINT32;
  std::vector<int64_t> ints;              // integer and bool elements
  std::vector<double> floats;             // FLOAT32 / FLOAT64 elements
  std::vector<std::string> strings;       // STRING elements
  std::vector<GgufValue> arrays;          // nested ARRAY elements (each with type ARRAY)
  size_t size() const;
  bool operator==(const GgufArray& o) const;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;           // relative to the data section
  const uint8_t* data = nullptr; // into the mapping (reader) or caller memory (writer)
  size_t nbytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class MappedFile;

class GgufFile {
 public:
  static Result<std::shared_ptr<GgufFile>> open(const std::string& path);
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return file_size_; }
  size_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  // Typed getters: nullopt when the key is missing or of an incompatible type.
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // ints convert too
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  const GgufArray* get_array(const std::string& key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;

 private:
  GgufFile() = default;
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  size_t file_size_ = 0;
  size_t data_offset_ = 0;
  std::unique_ptr<MappedFile> map_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  friend Result<std::shared_ptr<GgufFile>> parse_gguf(std::shared_ptr<GgufFile>, const std::string&);
};

// Builds a GGUF v3 file. Tensor data is copied in at add time, so the caller's
// buffers may go away; the file is written to PATH.tmp.* and renamed into place.
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);  // replaces an existing key in place
  void remove(const std::string& key);
  Status add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                    const void* data, size_t nbytes);
  void set_alignment(uint32_t a) { set("general.alignment", GgufValue::u32(a)); }
  Status write(const std::string& path) const;

  // Streaming, for files too large to hold in memory: declare a tensor's name,
  // type and shape now (no data), then write(path, fill) asks for the bytes of
  // each declared tensor in declaration order, fill(index, buf, nbytes) filling
  // a buffer of exactly that tensor's size (reused between tensors). Tensors
  // added with add_tensor() are written as usual; index counts all tensors.
  Status declare_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne);
  using FillFn = std::function<Status(size_t index, uint8_t* buf, size_t nbytes)>;
  Status write(const std::string& path, const FillFn& fill) const;
  // Copies all metadata (optionally) from an existing file.
  void copy_metadata_from(const GgufFile& f);
  // Adds every tensor of `f` (as it is) except those named in `skip`.
  Status copy_tensors_from(const GgufFile& f, const std::vector<std::string>& skip = {});

 private:
  struct PendingTensor {
    std::string name; GgmlType type; std::vector<int64_t> ne; std::vector<uint8_t> data;
    size_t nbytes = 0; bool deferred = false;  // deferred: bytes come from write()'s fill
  };
  Status check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne, size_t* nbytes) const;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace slim
