// GPT-2 byte <-> code point tables, built once on first use.
#include "tokenizer/byte_level.h"

#include <array>

#include "base/utf8.h"

namespace slim::byte_level {
namespace {

constexpr uint32_t kMaxStandIn = 256 + 68;

struct Tables {
  std::array<std::string, 256> to_text;
  std::array<int16_t, kMaxStandIn> to_byte;
  Tables() {
    to_byte.fill(-1);
    uint32_t next_shifted = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next_shifted++;
      utf8::append_code_point(to_text[b], cp);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& encode_byte(uint8_t b) { return tables().to_text[b]; }

int decode_code_point(uint32_t cp) { return cp < kMaxStandIn ? tables().to_byte[cp] : -1; }

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.to_text[static_cast<uint8_t>(c)];
  return out;
}

void decode(std::string_view text, std::string& out) {
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp;
    const size_t n = utf8::decode(text, i, cp);
    const int b = decode_code_point(cp);
    if (b >= 0 && utf8::classify(text, i) > 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
}

}  // namespace slim::byte_level
