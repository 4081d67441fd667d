// Lexer: splits template source into text and tag tokens. It applies all of
// jinja2's whitespace rules (trim_blocks, lstrip_blocks, `-`/`+` markers,
// comments, raw blocks, keep_trailing_newline=False), so the parser only
// sees the final literal text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slim::jinja {

enum class TokenType : uint8_t { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof };

struct Token {
  TokenType type = TokenType::eof;
  std::string text;  // literal text, name, decoded string value or operator
  int64_t int_value = 0;
  double float_value = 0;
  size_t offset = 0;  // byte offset in the normalized source
};

// jinja2 reads templates with universal newlines and drops one trailing
// newline; offsets in tokens and errors refer to this normalized text.
std::string normalize_source(std::string_view source);

// Throws Error{syntax} on malformed input.
std::vector<Token> tokenize(std::string_view normalized_source);

}  // namespace slim::jinja
