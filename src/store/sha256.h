// SHA-256 (FIPS 180-4), streamed: the store names model files by digest and
// pull verifies downloads against the digest the server announces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace slim {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex();  // finishes the hash; the object must not be updated afterwards

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hashes a whole file (or its first `limit` bytes) into `h`.
Status sha256_update_file(Sha256& h, const std::string& path, uint64_t limit = UINT64_MAX);
Result<std::string> sha256_file(const std::string& path);
// Hex digest of bytes in memory.
std::string sha256_hex(const std::string& bytes);
bool is_sha256_hex(const std::string& s);

}  // namespace slim
