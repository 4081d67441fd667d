// Template lexer (see lexer.h). The whitespace rules follow jinja2 3.1 with
// trim_blocks and lstrip_blocks on: a block or comment tag eats one newline
// after it, whitespace before a block or comment tag at the start of a
// line is dropped, `-` strips all whitespace on that side, `+` keeps it.
#include "chat/lexer.h"

#include <cerrno>
#include <cstdlib>

#include "chat/py_string.h"
#include "chat/value.h"

namespace slim::jinja {

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

namespace {

[[noreturn]] void syntax_error(std::string message, size_t offset) {
  throw Error{ErrorKind::syntax, std::move(message), offset};
}

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Length of the whitespace run at s[pos] (Python's \s*).
size_t whitespace_run(std::string_view s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    size_t j = i;
    if (!py_isspace(next_code_point(s, j))) break;
    i = j;
  }
  return i - pos;
}

std::string_view rstrip_whitespace(std::string_view s) {
  auto offs = code_point_offsets(s);
  size_t e = offs.size() - 1;
  while (e > 0) {
    size_t t = offs[e - 1];
    if (!py_isspace(next_code_point(s, t))) break;
    --e;
  }
  return s.substr(0, offs[e]);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's "unicode-escape" decoding of a string literal body.
std::string decode_string(std::string_view body, size_t offset) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out += c;
      continue;
    }
    char e = body[++i];
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          int h = i + 1 + k < body.size() ? hex_value(body[i + 1 + k]) : -1;
          if (h < 0) syntax_error(std::string("truncated \\") + e + " escape in string literal", offset);
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10FFFF) syntax_error("illegal Unicode character in string literal", offset);
        i += digits;
        append_utf8(out, cp);
        break;
      }
      case 'N': syntax_error("named unicode escapes (\\N{...}) are not supported", offset);
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            cp = cp * 8 + static_cast<uint32_t>(body[++i] - '0');
          append_utf8(out, cp);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      if (tag == std::string_view::npos) {
        emit_text(src_.substr(pos_), pos_);
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      size_t inner = tag + 2 + (sign ? 1 : 0);
      size_t raw_body = kind == '%' ? match_raw_begin(inner) : std::string_view::npos;
      emit_text(strip_before(src_.substr(pos_, tag - pos_), sign, kind != '{'), pos_);
      if (kind == '#') {
        lex_comment(inner);
      } else if (raw_body != std::string_view::npos) {
        pos_ = raw_body;
        line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
        lex_raw(tag);
      } else {
        lex_tag(tag, inner, kind);
      }
    }
    out_.push_back(Token{TokenType::eof, "", 0, 0, src_.size()});
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  // The text before a tag loses trailing whitespace on `-`, and with
  // lstrip_blocks the spaces/tabs of a line that holds only the tag.
  std::string_view strip_before(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return rstrip_whitespace(text);
    if (sign == '+' || !lstrip_applies) return text;
    size_t nl = text.rfind('\n');
    size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
    if (line_start == 0 && !line_starting_) return text;
    if (whitespace_run(text, line_start) != text.size() - line_start) return text;
    return text.substr(0, line_start);
  }

  void emit_text(std::string_view text, size_t offset) {
    if (!text.empty()) out_.push_back(Token{TokenType::text, std::string(text), 0, 0, offset});
  }

  // After a tag end: `-` strips all following whitespace, `+` keeps it,
  // otherwise (trim_blocks) one newline goes.
  void finish_tag(size_t after_end, char end_sign, bool trim_newline) {
    pos_ = after_end;
    if (end_sign == '-')
      pos_ += whitespace_run(src_, pos_);
    else if (end_sign != '+' && trim_newline && pos_ < src_.size() && src_[pos_] == '\n')
      ++pos_;
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  void lex_comment(size_t inner) {
    size_t end = src_.find("#}", inner);
    if (end == std::string_view::npos) syntax_error("Missing end of comment tag", inner);
    char sign = end > inner && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    finish_tag(end + 2, sign, true);
  }

  // `{% raw %}` (optionally `-`): returns the offset of the raw body, or npos.
  size_t match_raw_begin(size_t inner) const {
    size_t p = inner + whitespace_run(src_, inner);
    if (src_.compare(p, 3, "raw") != 0) return std::string_view::npos;
    p += 3;
    if (p < src_.size() && is_name_char(src_[p])) return std::string_view::npos;
    p += whitespace_run(src_, p);
    if (src_.compare(p, 3, "-%}") == 0) return p + 3 + whitespace_run(src_, p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string_view::npos;
  }

  void lex_raw(size_t tag_offset) {
    for (size_t b = src_.find("{%", pos_); b != std::string_view::npos; b = src_.find("{%", b + 1)) {
      size_t p = b + 2;
      char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (sign) ++p;
      p += whitespace_run(src_, p);
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      p += whitespace_run(src_, p);
      char end_sign;
      size_t after;
      if (src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 3, "+%}") == 0) {
        end_sign = src_[p];
        after = p + 3;
      } else if (src_.compare(p, 2, "%}") == 0) {
        end_sign = 0;
        after = p + 2;
      } else {
        continue;
      }
      emit_text(strip_before(src_.substr(pos_, b - pos_), sign, true), pos_);
      finish_tag(after, end_sign, true);
      return;
    }
    syntax_error("Missing end of raw directive", tag_offset);
  }

  void lex_tag(size_t tag, size_t inner, char kind) {
    bool block = kind == '%';
    out_.push_back(Token{block ? TokenType::block_begin : TokenType::var_begin, "", 0, 0, tag});
    std::string balance;  // expected closing brackets
    size_t p = inner;
    while (true) {
      if (p >= src_.size())
        syntax_error(block ? "unexpected end of template, expected end of statement block '%}'"
                           : "unexpected end of template, expected end of print statement '}}'",
                     tag);
      // End tags only count outside brackets: `{{ {'a': {}} }}` is one expression.
      if (balance.empty()) {
        std::string_view close = block ? "%}" : "}}";
        char sign = src_[p] == '-' || (block && src_[p] == '+') ? src_[p] : 0;
        if (src_.compare(p + (sign ? 1 : 0), 2, close) == 0) {
          out_.push_back(Token{block ? TokenType::block_end : TokenType::var_end, "", 0, 0, p});
          finish_tag(p + (sign ? 3 : 2), sign, block);
          return;
        }
      }
      size_t ws = whitespace_run(src_, p);
      if (ws) {
        p += ws;
        continue;
      }
      char c = src_[p];
      if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        size_t s = p;
        while (p < src_.size() && is_name_char(src_[p])) ++p;
        out_.push_back(Token{TokenType::name, std::string(src_.substr(s, p - s)), 0, 0, s});
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        p = lex_operator(p, balance);
      }
    }
  }

  size_t scan_digits(size_t p) const {  // \d+(_\d+)*
    if (p >= src_.size() || !is_digit(src_[p])) return p;
    while (p < src_.size()) {
      if (is_digit(src_[p])) {
        ++p;
      } else if (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1])) {
        p += 2;
      } else {
        break;
      }
    }
    return p;
  }

  size_t lex_number(size_t start) {
    size_t p = scan_digits(start);
    bool is_float = false;
    bool after_dot = start > 0 && src_[start - 1] == '.';  // `x.0.1` is attribute access
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      p = scan_digits(p + 1);
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        p = scan_digits(q);
        is_float = true;
      }
    }
    std::string digits;
    for (size_t i = start; i < p; ++i)
      if (src_[i] != '_') digits += src_[i];
    Token t{is_float ? TokenType::floating : TokenType::integer, digits, 0, 0, start};
    if (is_float) {
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      int base = 10;
      size_t q = p;
      if (digits == "0" && p < src_.size()) {
        char b = static_cast<char>(src_[p] | 0x20);
        base = b == 'x' ? 16 : b == 'o' ? 8 : b == 'b' ? 2 : 10;
        if (base != 10) {
          digits.clear();
          for (q = p + 1; q < src_.size() && (hex_value(src_[q]) >= 0 || src_[q] == '_'); ++q)
            if (src_[q] != '_') digits += src_[q];
          if (digits.empty()) syntax_error("invalid integer literal", start);
          p = q;
        }
      }
      errno = 0;
      char* end = nullptr;
      t.int_value = std::strtoll(digits.c_str(), &end, base);
      if (errno == ERANGE) syntax_error("integer literal too large", start);
      if (*end != '\0') syntax_error("invalid integer literal", start);
    }
    out_.push_back(std::move(t));
    return p;
  }

  size_t lex_string(size_t start) {
    char quote = src_[start];
    size_t p = start + 1;
    while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
    if (p >= src_.size()) syntax_error("unexpected end of string literal", start);
    out_.push_back(
        Token{TokenType::string, decode_string(src_.substr(start + 1, p - start - 1), start), 0, 0, start});
    return p + 1;
  }

  size_t lex_operator(size_t p, std::string& balance) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo) {
      if (src_.compare(p, 2, op) == 0) {
        out_.push_back(Token{TokenType::op, op, 0, 0, p});
        return p + 2;
      }
    }
    char c = src_[p];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      size_t q = p;
      next_code_point(src_, q);
      syntax_error("unexpected char " + py_repr_string(src_.substr(p, q - p)), p);
    }
    if (c == '(' || c == '[' || c == '{') {
      balance += c == '(' ? ')' : c == '[' ? ']' : '}';
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) syntax_error(std::string("unexpected '") + c + "'", p);
      if (balance.back() != c) syntax_error(std::string("unexpected '") + c + "', expected '" + balance.back() + "'", p);
      balance.pop_back();
    }
    out_.push_back(Token{TokenType::op, std::string(1, c), 0, 0, p});
    return p + 1;
  }

  std::string_view src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view normalized_source) { return Lexer(normalized_source).run(); }

}  // namespace slim::jinja
