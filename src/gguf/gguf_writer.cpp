// GGUF v3 writer: serialises metadata and tensors into one buffer-free stream
// written through a temporary file and renamed into place.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <unistd.h>

#include "gguf/gguf.h"

namespace slim {
namespace {

struct Sink {
  FILE* fp;
  uint64_t written = 0;
  bool ok = true;
  void bytes(const void* p, size_t n) {
    if (n && fwrite(p, 1, n, fp) != n) ok = false;
    written += n;
  }
  template <class T>
  void pod(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) { pod<uint64_t>(s.size()); bytes(s.data(), s.size()); }
  void pad_to(uint64_t a) {
    static const uint8_t zeros[64] = {};
    while (written % a) bytes(zeros, std::min<uint64_t>(a - written % a, sizeof zeros));
  }
};

void write_scalar(Sink& s, GgufType t, int64_t i, double f) {
  switch (t) {
    case GgufType::UINT8: s.pod<uint8_t>((uint8_t)i); break;
    case GgufType::INT8: s.pod<int8_t>((int8_t)i); break;
    case GgufType::BOOL: s.pod<uint8_t>(i ? 1 : 0); break;
    case GgufType::UINT16: s.pod<uint16_t>((uint16_t)i); break;
    case GgufType::INT16: s.pod<int16_t>((int16_t)i); break;
    case GgufType::UINT32: s.pod<uint32_t>((uint32_t)i); break;
    case GgufType::INT32: s.pod<int32_t>((int32_t)i); break;
    case GgufType::UINT64: s.pod<uint64_t>((uint64_t)i); break;
    case GgufType::INT64: s.pod<int64_t>(i); break;
    case GgufType::FLOAT32: s.pod<float>((float)f); break;
    case GgufType::FLOAT64: s.pod<double>(f); break;
    default: break;
  }
}

void write_value(Sink& s, const GgufValue& v);

void write_array(Sink& s, const GgufArray& a) {
  s.pod<uint32_t>((uint32_t)a.elem_type);
  s.pod<uint64_t>(a.size());
  switch (a.elem_type) {
    case GgufType::STRING: for (auto& x : a.strings) s.str(x); break;
    case GgufType::ARRAY: for (auto& x : a.arrays) write_array(s, x.arr ? *x.arr : GgufArray{}); break;
    case GgufType::FLOAT32: case GgufType::FLOAT64: for (double x : a.floats) write_scalar(s, a.elem_type, 0, x); break;
    default: for (int64_t x : a.ints) write_scalar(s, a.elem_type, x, 0); break;
  }
}

void write_value(Sink& s, const GgufValue& v) {
  if (v.type == GgufType::STRING) s.str(v.s);
  else if (v.type == GgufType::ARRAY) write_array(s, v.arr ? *v.arr : GgufArray{});
  else write_scalar(s, v.type, v.i, v.f);
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  if (key == "general.alignment" && value.is_int() && value.i > 0) alignment_ = (uint32_t)value.i;
  for (auto& kv : kv_)
    if (kv.first == key) { kv.second = std::move(value); return; }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::remove(const std::string& key) {
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
}

void GgufWriter::copy_metadata_from(const GgufFile& f) {
  for (const auto& [k, v] : f.metadata()) set(k, v);
}

Status GgufWriter::check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                                size_t* nbytes) const {
  if (ne.empty() || ne.size() > 4) return Status::error("tensor '" + name + "': 1 to 4 dimensions expected");
  const auto& tr = type_traits(type);
  if (!tr.name) return Status::error("tensor '" + name + "': unknown type");
  if (ne[0] % tr.block_size) return Status::error("tensor '" + name + "': row not a multiple of the block size");
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  *nbytes = row_size(type, ne[0]) * (size_t)rows;
  for (auto& t : tensors_)
    if (t.name == name) return Status::error("duplicate tensor '" + name + "'");
  return Status();
}

Status GgufWriter::copy_tensors_from(const GgufFile& f, const std::vector<std::string>& skip) {
  for (const auto& t : f.tensors()) {
    if (std::find(skip.begin(), skip.end(), t.name) != skip.end()) continue;
    SLIM_RETURN_IF_ERROR(add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes));
  }
  return Status();
}

Status GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                              const void* data, size_t nbytes) {
  size_t want = 0;
  SLIM_RETURN_IF_ERROR(check_tensor(name, type, ne, &want));
  if (want != nbytes) return Status::error(format("tensor '%s': %zu bytes given, %zu expected", name.c_str(), nbytes, want));
  const uint8_t* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, type, std::move(ne), std::vector<uint8_t>(p, p + nbytes), nbytes, false});
  return Status();
}

Status GgufWriter::declare_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne) {
  size_t nbytes = 0;
  SLIM_RETURN_IF_ERROR(check_tensor(name, type, ne, &nbytes));
  tensors_.push_back({name, type, std::move(ne), {}, nbytes, true});
  return Status();
}

Status GgufWriter::write(const std::string& path) const {
  return write(path, [](size_t i, uint8_t*, size_t) {
    return Status::error(format("tensor %zu was declared without data and no fill function was given", i));
  });
}

Status GgufWriter::write(const std::string& path, const FillFn& fill) const {
  std::random_device rd;
  std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(rd());
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) return Status::error(tmp + ": cannot create file");
  Sink s{fp};
  s.bytes("GGUF", 4);
  s.pod<uint32_t>(3);
  s.pod<uint64_t>(tensors_.size());
  s.pod<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    s.str(k);
    s.pod<uint32_t>((uint32_t)v.type);
    write_value(s, v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    s.str(t.name);
    s.pod<uint32_t>((uint32_t)t.ne.size());
    for (int64_t d : t.ne) s.pod<uint64_t>((uint64_t)d);
    s.pod<uint32_t>((uint32_t)t.type);
    s.pod<uint64_t>(offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  s.pad_to(alignment_);
  std::vector<uint8_t> buf;  // one deferred tensor at a time
  Status fill_status;
  for (size_t i = 0; i < tensors_.size() && s.ok && fill_status.ok(); ++i) {
    const auto& t = tensors_[i];
    if (t.deferred) {
      buf.resize(t.nbytes);
      fill_status = fill(i, buf.data(), t.nbytes);
      if (fill_status.ok()) s.bytes(buf.data(), t.nbytes);
    } else {
      s.bytes(t.data.data(), t.data.size());
    }
    s.pad_to(alignment_);
  }
  bool ok = s.ok && fill_status.ok() && std::fflush(fp) == 0 && fsync(fileno(fp)) == 0;
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    if (!fill_status.ok()) return fill_status;
    return Status::error(path + ": write failed");
  }
  return Status();
}

}  // namespace slim
