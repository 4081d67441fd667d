// GGUF reader: parses the header, metadata and tensor infos of a mapped file.
// Every length, count, offset and size is checked against the bytes that are
// really there before it is used, so a truncated or hostile file gives an error
// naming the problem instead of a crash or a huge allocation.
#include <cstring>
#include <limits>

#include "base/mapped_file.h"
#include "gguf/gguf.h"

namespace slim {
namespace {

constexpr int kMaxArrayDepth = 8;

struct Cursor {
  const uint8_t* base;
  size_t size;
  size_t pos = 0;
  std::string err;

  size_t left() const { return size - pos; }
  bool fail(std::string m) {
    if (err.empty()) err = std::move(m);
    return false;
  }
  template <class T>
  bool read(T& v, const char* what) {
    if (left() < sizeof(T)) return fail(format("truncated file: cannot read %s at offset %zu", what, pos));
    std::memcpy(&v, base + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
  bool read_string(std::string& s, const char* what) {
    uint64_t n;
    if (!read(n, what)) return false;
    if (n > left())
      return fail(format("corrupt file: %s length %llu at offset %zu exceeds the file size", what,
                         (unsigned long long)n, pos - 8));
    s.assign(reinterpret_cast<const char*>(base + pos), (size_t)n);
    pos += (size_t)n;
    return true;
  }
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= (uint32_t)GgufType::FLOAT64; }

bool read_scalar(Cursor& c, GgufType t, int64_t* iv, double* fv) {
  switch (t) {
    case GgufType::UINT8: { uint8_t v; if (!c.read(v, "u8")) return false; *iv = v; return true; }
    case GgufType::INT8: { int8_t v; if (!c.read(v, "i8")) return false; *iv = v; return true; }
    case GgufType::BOOL: {
      uint8_t v;
      if (!c.read(v, "bool")) return false;
      if (v > 1) return c.fail(format("corrupt file: bool value %u at offset %zu", v, c.pos - 1));
      *iv = v;
      return true;
    }
    case GgufType::UINT16: { uint16_t v; if (!c.read(v, "u16")) return false; *iv = v; return true; }
    case GgufType::INT16: { int16_t v; if (!c.read(v, "i16")) return false; *iv = v; return true; }
    case GgufType::UINT32: { uint32_t v; if (!c.read(v, "u32")) return false; *iv = v; return true; }
    case GgufType::INT32: { int32_t v; if (!c.read(v, "i32")) return false; *iv = v; return true; }
    case GgufType::UINT64: { uint64_t v; if (!c.read(v, "u64")) return false; *iv = (int64_t)v; return true; }
    case GgufType::INT64: { int64_t v; if (!c.read(v, "i64")) return false; *iv = v; return true; }
    case GgufType::FLOAT32: { float v; if (!c.read(v, "f32")) return false; *fv = v; return true; }
    case GgufType::FLOAT64: { double v; if (!c.read(v, "f64")) return false; *fv = v; return true; }
    default: return false;
  }
}

bool read_value(Cursor& c, GgufType t, GgufValue& out, int depth);

bool read_array(Cursor& c, GgufArray& a, int depth) {
  if (depth > kMaxArrayDepth) return c.fail("corrupt file: arrays nested too deeply");
  uint32_t et;
  uint64_t n;
  if (!c.read(et, "array type") || !c.read(n, "array length")) return false;
  if (!valid_type(et)) return c.fail(format("corrupt file: unknown array element type %u at offset %zu", et, c.pos - 12));
  a.elem_type = (GgufType)et;
  // Each element takes at least this many bytes, so the count is bounded by the bytes left.
  size_t min_elem = a.elem_type == GgufType::STRING ? 8 : a.elem_type == GgufType::ARRAY ? 12 : scalar_size(a.elem_type);
  if (n > c.left() / min_elem)
    return c.fail(format("corrupt file: array of %llu elements at offset %zu exceeds the file size",
                         (unsigned long long)n, c.pos - 12));
  switch (a.elem_type) {
    case GgufType::STRING:
      a.strings.resize((size_t)n);
      for (auto& s : a.strings)
        if (!c.read_string(s, "array string")) return false;
      return true;
    case GgufType::ARRAY:
      a.arrays.resize((size_t)n);
      for (auto& v : a.arrays)
        if (!read_value(c, GgufType::ARRAY, v, depth + 1)) return false;
      return true;
    case GgufType::FLOAT32:
    case GgufType::FLOAT64:
      a.floats.resize((size_t)n);
      for (auto& f : a.floats) {
        int64_t unused;
        if (!read_scalar(c, a.elem_type, &unused, &f)) return false;
      }
      return true;
    default:
      a.ints.resize((size_t)n);
      for (auto& i : a.ints) {
        double unused;
        if (!read_scalar(c, a.elem_type, &i, &unused)) return false;
      }
      return true;
  }
}

bool read_value(Cursor& c, GgufType t, GgufValue& out, int depth) {
  out.type = t;
  if (t == GgufType::STRING) return c.read_string(out.s, "string value");
  if (t == GgufType::ARRAY) {
    out.arr = std::make_shared<GgufArray>();
    return read_array(c, *out.arr, depth);
  }
  return read_scalar(c, t, &out.i, &out.f);
}

}  // namespace

Result<std::shared_ptr<GgufFile>> parse_gguf(std::shared_ptr<GgufFile> f, const std::string& path) {
  auto fail = [&](const std::string& m) { return Status::error(path + ": " + m); };
  const uint8_t* base = f->map_->data();
  Cursor c{base, f->file_size_, 0, {}};
  if (f->file_size_ < 4 || std::memcmp(base, "GGUF", 4) != 0) return fail("not a GGUF file (bad magic)");
  c.pos = 4;
  uint32_t version;
  uint64_t n_tensors, n_kv;
  if (!c.read(version, "version")) return fail(c.err);
  if (version == 1) return fail("GGUF version 1 is not supported (re-convert the model)");
  if (version != 2 && version != 3) return fail(format("unsupported GGUF version %u", version));
  f->version_ = version;
  if (!c.read(n_tensors, "tensor count") || !c.read(n_kv, "metadata count")) return fail(c.err);
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info 8+4+8+4+8.
  if (n_kv > c.left() / 13) return fail(format("corrupt header: metadata count %llu is larger than the file allows", (unsigned long long)n_kv));
  if (n_tensors > c.left() / 32) return fail(format("corrupt header: tensor count %llu is larger than the file allows", (unsigned long long)n_tensors));

  f->kv_.reserve((size_t)n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    uint32_t t;
    if (!c.read_string(key, "metadata key") || !c.read(t, "metadata type")) return fail(c.err);
    if (!valid_type(t)) return fail(format("corrupt metadata: key '%s' has unknown type %u", key.c_str(), t));
    GgufValue v;
    if (!read_value(c, (GgufType)t, v, 0)) return fail(c.err + " (in key '" + key + "')");
    if (f->kv_index_.count(key)) return fail("corrupt metadata: duplicate key '" + key + "'");
    f->kv_index_[key] = f->kv_.size();
    f->kv_.emplace_back(std::move(key), std::move(v));
  }

  if (auto a = f->get_int("general.alignment")) {
    if (*a <= 0 || *a > (1 << 24) || (*a & (*a - 1)) != 0)
      return fail(format("corrupt metadata: general.alignment %lld is not a power of two", (long long)*a));
    f->alignment_ = (uint32_t)*a;
  }

  f->tensors_.reserve((size_t)n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    uint32_t n_dims, type;
    if (!c.read_string(ti.name, "tensor name") || !c.read(n_dims, "tensor dimension count")) return fail(c.err);
    if (n_dims == 0 || n_dims > 4) return fail(format("corrupt tensor info: '%s' has %u dimensions", ti.name.c_str(), n_dims));
    ti.n_dims = (int)n_dims;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne;
      if (!c.read(ne, "tensor dimension")) return fail(c.err);
      if (ne == 0 || ne > (uint64_t)std::numeric_limits<int64_t>::max() / 4)
        return fail(format("corrupt tensor info: '%s' has dimension %llu", ti.name.c_str(), (unsigned long long)ne));
      ti.ne[d] = (int64_t)ne;
    }
    if (!c.read(type, "tensor type") || !c.read(ti.offset, "tensor offset")) return fail(c.err);
    if (!type_known(type)) return fail(format("unsupported tensor type %u in tensor '%s'", type, ti.name.c_str()));
    ti.type = (GgmlType)type;
    if (f->tensor_index_.count(ti.name)) return fail("corrupt tensor info: duplicate tensor '" + ti.name + "'");
    f->tensor_index_[ti.name] = f->tensors_.size();
    f->tensors_.push_back(std::move(ti));
  }

  size_t a = f->alignment_;
  f->data_offset_ = (c.pos + a - 1) / a * a;
  for (auto& ti : f->tensors_) {
    const auto& tr = type_traits(ti.type);
    if (ti.ne[0] % tr.block_size != 0)
      return fail(format("corrupt tensor info: '%s' row of %lld values is not a multiple of the %s block size %lld",
                         ti.name.c_str(), (long long)ti.ne[0], tr.name, (long long)tr.block_size));
    // Overflow-safe size: rows * row bytes, each bounded by the file size.
    unsigned __int128 rows = (unsigned __int128)ti.ne[1] * ti.ne[2] * ti.ne[3];
    unsigned __int128 bytes = rows * row_size(ti.type, ti.ne[0]);
    if (ti.offset % a != 0)
      return fail(format("corrupt tensor info: '%s' offset %llu is not aligned to %zu", ti.name.c_str(), (unsigned long long)ti.offset, a));
    unsigned __int128 end = (unsigned __int128)f->data_offset_ + ti.offset + bytes;
    if (end > f->file_size_)
      return fail(format("truncated file: tensor '%s' (%s, offset %llu) ends past the end of the file (%zu bytes)",
                         ti.name.c_str(), tr.name, (unsigned long long)ti.offset, f->file_size_));
    ti.nbytes = (size_t)bytes;
    ti.data = base + f->data_offset_ + ti.offset;
  }
  return f;
}

Result<std::shared_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  auto m = MappedFile::open(path);
  if (!m) return Status::error(m.error());
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->map_ = std::move(m.value());
  f->file_size_ = f->map_->size();
  return parse_gguf(std::move(f), path);
}

GgufFile::~GgufFile() = default;

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v || !v->is_int()) return std::nullopt;
  return v->i;
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_int()) return (double)v->i;
  return std::nullopt;
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v || !v->is_int()) return std::nullopt;
  return v->i != 0;
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::STRING) return std::nullopt;
  return v->s;
}

const GgufArray* GgufFile::get_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::ARRAY) return nullptr;
  return v->arr.get();
}

const TensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace slim
