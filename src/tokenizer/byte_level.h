// GPT-2's byte-level alphabet: every byte has a printable code point stand-in,
// so byte-level BPE vocabularies store tokens as readable UTF-8 strings.
// Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls,
// space, DEL, NBSP, soft hyphen) are shifted to U+0100..U+0143 in byte order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace slim::byte_level {

// UTF-8 of the stand-in code point of byte b.
const std::string& encode_byte(uint8_t b);
// The byte a stand-in code point stands for, or -1 when cp is not one.
int decode_code_point(uint32_t cp);
// Raw bytes -> stand-in text (what a byte-level vocabulary stores).
std::string encode(std::string_view bytes);
// Stand-in text -> raw bytes, appended to out. Code points outside the
// alphabet (a malformed vocabulary) are copied through unchanged.
void decode(std::string_view text, std::string& out);

}  // namespace slim::byte_level
