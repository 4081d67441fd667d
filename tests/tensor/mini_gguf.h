// A deliberately tiny GGUF (v2/v3) tensor-directory reader for the tensor tests,
// so test_tensor can check bit-compatibility against llama.cpp-made files
// without linking the gguf module (a higher layer). Trusts its input: only
// for the known-good files in ../shared.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/types.h"

namespace slim::test {

struct MiniTensor {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t type = 0;
  uint64_t offset = 0;
  const uint8_t* data = nullptr;
  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

struct MiniGguf {
  std::string bytes;
  std::map<std::string, MiniTensor> tensors;
};

class MiniReader {
 public:
  explicit MiniReader(const std::string& b) : b_(b) {}
  template <class T> T get() {
    if (pos_ + sizeof(T) > b_.size()) throw std::runtime_error("gguf: truncated");
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    uint64_t n = get<uint64_t>();
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void skip_value(uint32_t type) {
    static const size_t kSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) { str(); return; }
    if (type == 9) {
      uint32_t et = get<uint32_t>();
      uint64_t n = get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) skip_value(et);
      return;
    }
    if (type > 12) throw std::runtime_error("gguf: bad value type");
    pos_ += kSize[type];
  }
  size_t pos() const { return pos_; }

 private:
  const std::string& b_;
  size_t pos_ = 0;
};

inline void parse_mini_gguf(MiniGguf& g) {
  MiniReader r(g.bytes);
  if (r.get<uint32_t>() != 0x46554747u) throw std::runtime_error("gguf: bad magic");
  r.get<uint32_t>();  // version
  const uint64_t n_tensors = r.get<uint64_t>(), n_kv = r.get<uint64_t>();
  uint64_t alignment = 32;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = r.str();
    uint32_t type = r.get<uint32_t>();
    if (key == "general.alignment" && type == 4) alignment = r.get<uint32_t>();
    else r.skip_value(type);
  }
  std::vector<MiniTensor> list;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    MiniTensor t;
    t.name = r.str();
    uint32_t nd = r.get<uint32_t>();
    for (uint32_t d = 0; d < nd; ++d) t.dims.push_back((int64_t)r.get<uint64_t>());
    t.type = r.get<uint32_t>();
    t.offset = r.get<uint64_t>();
    list.push_back(t);
  }
  const size_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  for (auto& t : list) {
    t.data = (const uint8_t*)g.bytes.data() + data_start + t.offset;
    g.tensors[t.name] = t;
  }
}

}  // namespace slim::test
