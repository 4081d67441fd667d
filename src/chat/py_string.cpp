// Python str semantics on UTF-8 (see py_string.h). Case mapping covers the
// scripts with simple one-to-one case pairs (Latin, Greek, Cyrillic,
// Armenian, fullwidth Latin); other code points are left unchanged, which
// is also what Python does for scripts without case.
#include "chat/py_string.h"

#include "base/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace slim::jinja {

uint32_t next_code_point(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  int n;
  uint32_t cp;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 2;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 3;
    cp = b0 & 0x07;
  } else {
    ++i;
    return b0;
  }
  for (int k = 1; k <= n; ++k) {
    auto b = i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
    if ((b & 0xC0) != 0x80) {
      ++i;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += n + 1;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) { utf8::append_code_point(out, cp); }

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

size_t code_point_count(std::string_view s) {
  if (is_ascii(s)) return s.size();
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) next_code_point(s, i);
  return n;
}

std::vector<size_t> code_point_offsets(std::string_view s) {
  std::vector<size_t> offs;
  offs.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    offs.push_back(i);
    next_code_point(s, i);
  }
  offs.push_back(s.size());
  return offs;
}

std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    next_code_point(s, i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

bool py_isspace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool py_isdigit(uint32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 0x660 && cp <= 0x669) || (cp >= 0x6F0 && cp <= 0x6F9) ||
         (cp >= 0x966 && cp <= 0x96F) || (cp >= 0xFF10 && cp <= 0xFF19);
}

namespace {

// One-to-one case pairs. Ranges where upper and lower alternate (even/odd)
// or are offset by a constant.
struct CaseRange {
  uint32_t first, last;  // upper-case range
  int32_t delta;         // lower = upper + delta; 1 with alternate=true means pairs
  bool alternate;
};

constexpr CaseRange kCaseRanges[] = {
    {0x41, 0x5A, 32, false},     {0xC0, 0xD6, 32, false},     {0xD8, 0xDE, 32, false},
    {0x100, 0x12F, 1, true},     {0x132, 0x137, 1, true},     {0x139, 0x148, 1, true},
    {0x14A, 0x177, 1, true},     {0x179, 0x17E, 1, true},     {0x182, 0x185, 1, true},
    {0x1A0, 0x1A5, 1, true},     {0x1CD, 0x1DC, 1, true},     {0x1DE, 0x1EF, 1, true},
    {0x1F8, 0x21F, 1, true},     {0x222, 0x233, 1, true},     {0x386, 0x386, 38, false},
    {0x388, 0x38A, 37, false},   {0x38C, 0x38C, 64, false},   {0x38E, 0x38F, 63, false},
    {0x391, 0x3A1, 32, false},   {0x3A3, 0x3AB, 32, false},   {0x3D8, 0x3EF, 1, true},
    {0x400, 0x40F, 80, false},   {0x410, 0x42F, 32, false},   {0x460, 0x481, 1, true},
    {0x48A, 0x4BF, 1, true},     {0x4C1, 0x4CE, 1, true},     {0x4D0, 0x52F, 1, true},
    {0x531, 0x556, 48, false},   {0x10A0, 0x10C5, 7264, false}, {0x1E00, 0x1E95, 1, true},
    {0x1EA0, 0x1EFF, 1, true},   {0x1F08, 0x1F0F, -8, false}, {0x1F18, 0x1F1D, -8, false},
    {0x1F28, 0x1F2F, -8, false}, {0x1F38, 0x1F3F, -8, false}, {0x1F48, 0x1F4D, -8, false},
    {0x1F68, 0x1F6F, -8, false}, {0x2160, 0x216F, 16, false}, {0x24B6, 0x24CF, 26, false},
    {0x2C00, 0x2C2F, 48, false}, {0xFF21, 0xFF3A, 32, false}, {0x10400, 0x10427, 40, false},
};

bool lower_of(uint32_t cp, uint32_t& out) {
  for (const auto& r : kCaseRanges) {
    if (cp < r.first || cp > r.last) continue;
    if (r.alternate) {
      if ((cp - r.first) % 2 == 0) {
        out = cp + 1;
        return true;
      }
      return false;
    }
    out = static_cast<uint32_t>(static_cast<int64_t>(cp) + r.delta);
    return true;
  }
  if (cp >= 0x1C4 && cp <= 0x1CC && (cp - 0x1C4) % 3 != 2) {  // DŽ/Dž → dž, LJ/Lj → lj, NJ/Nj → nj
    out = 0x1C4 + (cp - 0x1C4) / 3 * 3 + 2;
    return true;
  }
  if (cp == 0x1F1 || cp == 0x1F2) {
    out = 0x1F3;
    return true;
  }
  switch (cp) {
    case 0x130: out = 'i'; return true;  // İ (append_lower adds the combining dot)
    case 0x178: out = 0xFF; return true;
    default: return false;
  }
}

bool upper_of(uint32_t cp, uint32_t& out) {
  for (const auto& r : kCaseRanges) {
    if (r.alternate) {
      if (cp < r.first || cp > r.last + 1) continue;
      if ((cp - r.first) % 2 == 1) {
        out = cp - 1;
        return true;
      }
      continue;
    }
    auto lo = static_cast<int64_t>(r.first) + r.delta, hi = static_cast<int64_t>(r.last) + r.delta;
    if (static_cast<int64_t>(cp) >= lo && static_cast<int64_t>(cp) <= hi) {
      out = static_cast<uint32_t>(static_cast<int64_t>(cp) - r.delta);
      return true;
    }
  }
  if (cp >= 0x1C5 && cp <= 0x1CC && (cp - 0x1C4) % 3 != 0) {
    out = 0x1C4 + (cp - 0x1C4) / 3 * 3;
    return true;
  }
  if (cp == 0x1F2 || cp == 0x1F3) {
    out = 0x1F1;
    return true;
  }
  switch (cp) {
    case 0xB5: out = 0x39C; return true;
    case 0xFF: out = 0x178; return true;
    case 0x131: out = 'I'; return true;
    case 0x17F: out = 'S'; return true;
    case 0x3C2: out = 0x3A3; return true;  // final sigma
    default: return false;
  }
}

}  // namespace

uint32_t py_to_upper(uint32_t cp) {
  uint32_t u;
  return upper_of(cp, u) ? u : cp;
}

uint32_t py_to_lower(uint32_t cp) {
  uint32_t l;
  return lower_of(cp, l) ? l : cp;
}

bool py_isupper_cp(uint32_t cp) {
  uint32_t l;
  return lower_of(cp, l);
}

bool py_islower_cp(uint32_t cp) {
  uint32_t u;
  return upper_of(cp, u) || cp == 0xDF || cp == 0x138 || cp == 0x149;
}

bool py_is_cased(uint32_t cp) { return py_isupper_cp(cp) || py_islower_cp(cp); }

bool py_isalpha(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (py_is_cased(cp)) return true;
  // Scripts without case: treat letters of the common blocks as alphabetic.
  return (cp >= 0xAA && cp != 0xD7 && cp != 0xF7 && cp < 0x2B0 && cp != 0xBB && cp > 0xBF) ||
         (cp >= 0x5D0 && cp <= 0x5EA) || (cp >= 0x620 && cp <= 0x64A) || (cp >= 0x904 && cp <= 0x939) ||
         (cp >= 0xE01 && cp <= 0xE30) || (cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x30A1 && cp <= 0x30FA) ||
         (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3134F);
}

bool py_isalnum(uint32_t cp) { return py_isalpha(cp) || py_isdigit(cp); }

bool py_isprintable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  if (cp >= 0x80 && cp <= 0xA0) return false;
  if (cp == 0xAD || (cp >= 0x600 && cp <= 0x605) || cp == 0x61C || cp == 0x6DD || cp == 0x70F ||
      cp == 0x180E || cp == 0x1680)
    return false;
  if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F))
    return false;
  if (cp == 0x3000 || (cp >= 0xD800 && cp <= 0xF8FF) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) ||
      cp == 0xFFFE || cp == 0xFFFF)
    return false;
  if (cp >= 0xE0000 && cp <= 0xE007F) return false;
  if (cp >= 0xF0000) return false;
  return true;
}

namespace {

template <class F>
std::string map_code_points(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t cp = next_code_point(s, i);
    if (i - start == 1 && cp >= 0x80) {  // invalid byte: keep as is
      out += s[start];
      continue;
    }
    f(out, cp);
  }
  return out;
}

void append_lower(std::string& out, uint32_t cp) {
  if (cp == 0x130) {  // İ → i + combining dot above
    out += "i\xCC\x87";
    return;
  }
  append_utf8(out, py_to_lower(cp));
}

void append_upper(std::string& out, uint32_t cp) {
  if (cp == 0xDF) {  // ß
    out += "SS";
    return;
  }
  append_utf8(out, py_to_upper(cp));
}

}  // namespace

std::string py_upper(std::string_view s) {
  if (is_ascii(s)) {
    std::string out(s);
    for (char& c : out)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    return out;
  }
  return map_code_points(s, append_upper);
}

std::string py_lower(std::string_view s) {
  if (is_ascii(s)) {
    std::string out(s);
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
  }
  return map_code_points(s, append_lower);
}

std::string py_swapcase(std::string_view s) {
  return map_code_points(s, [](std::string& out, uint32_t cp) {
    if (py_isupper_cp(cp))
      append_lower(out, cp);
    else
      append_upper(out, cp);
  });
}

std::string py_capitalize(std::string_view s) {
  bool first = true;
  return map_code_points(s, [&](std::string& out, uint32_t cp) {
    if (first)
      append_upper(out, cp);
    else
      append_lower(out, cp);
    first = false;
  });
}

std::string py_title(std::string_view s) {
  bool prev_cased = false;
  return map_code_points(s, [&](std::string& out, uint32_t cp) {
    bool cased = py_is_cased(cp);
    if (cased && !prev_cased)
      append_upper(out, cp);
    else if (cased)
      append_lower(out, cp);
    else
      append_utf8(out, cp);
    prev_cased = cased;
  });
}

bool py_islower(std::string_view s) {
  bool any = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_code_point(s, i);
    if (py_isupper_cp(cp)) return false;
    if (py_islower_cp(cp)) any = true;
  }
  return any;
}

bool py_isupper(std::string_view s) {
  bool any = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_code_point(s, i);
    if (py_islower_cp(cp)) return false;
    if (py_isupper_cp(cp)) any = true;
  }
  return any;
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars)
    for (size_t i = 0; i < chars->size();) set.push_back(next_code_point(*chars, i));
  auto strip_it = [&](uint32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : py_isspace(cp);
  };
  auto offs = code_point_offsets(s);
  size_t n = offs.size() - 1, b = 0, e = n;
  size_t tmp;
  if (left)
    while (b < e && strip_it((tmp = offs[b], next_code_point(s, tmp)))) ++b;
  if (right)
    while (e > b && strip_it((tmp = offs[e - 1], next_code_point(s, tmp)))) --e;
  return std::string(s.substr(offs[b], offs[e] - offs[b]));
}

namespace {

std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit) {
  std::vector<std::string> out;
  size_t i = 0;
  auto skip_ws = [&]() {
    while (i < s.size()) {
      size_t j = i;
      if (!py_isspace(next_code_point(s, j))) break;
      i = j;
    }
  };
  skip_ws();
  while (i < s.size()) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      // Python keeps the rest as is but strips trailing whitespace.
      out.push_back(py_strip(s.substr(i), std::nullopt, false, true));
      return out;
    }
    size_t start = i;
    while (i < s.size()) {
      size_t j = i;
      if (py_isspace(next_code_point(s, j))) break;
      i = j;
    }
    out.emplace_back(s.substr(start, i - start));
    skip_ws();
  }
  return out;
}

}  // namespace

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (!sep) return split_whitespace(s, maxsplit);
  std::vector<std::string> out;
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t hit = s.find(*sep, pos);
    if (hit == std::string_view::npos) break;
    out.emplace_back(s.substr(pos, hit - pos));
    pos = hit + sep->size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (maxsplit < 0) return py_split(s, sep, maxsplit);
  std::vector<std::string> out;
  if (!sep) {
    // Split from the right on whitespace runs.
    auto offs = code_point_offsets(s);
    size_t e = offs.size() - 1;
    auto ws_at = [&](size_t k) {
      size_t t = offs[k];
      return py_isspace(next_code_point(s, t));
    };
    while (e > 0 && ws_at(e - 1)) --e;
    while (e > 0) {
      if (static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(py_strip(s.substr(0, offs[e]), std::nullopt, true, false));
        break;
      }
      size_t b = e;
      while (b > 0 && !ws_at(b - 1)) --b;
      out.emplace_back(s.substr(offs[b], offs[e] - offs[b]));
      e = b;
      while (e > 0 && ws_at(e - 1)) --e;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  size_t end = s.size();
  while (static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep->size()) break;
    size_t hit = s.rfind(*sep, end - sep->size());
    if (hit == std::string_view::npos) break;
    out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
    end = hit;
  }
  out.emplace_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    size_t j = i;
    uint32_t cp = next_code_point(s, j);
    bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
               cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
    if (!brk) {
      i = j;
      continue;
    }
    size_t eol = j;
    if (cp == '\r' && eol < s.size() && s[eol] == '\n') ++eol;
    out.emplace_back(s.substr(start, (keepends ? eol : i) - start));
    start = i = eol;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts repl before every code point and at the end.
    int64_t done = 0;
    size_t i = 0;
    while (i <= s.size()) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i == s.size()) break;
      size_t j = i;
      next_code_point(s, j);
      out.append(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out += repl;
    pos = hit + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

namespace {

// Resolves Python slice bounds [start, end) over n code points.
void clamp_bounds(int64_t n, std::optional<int64_t> start, std::optional<int64_t> end, int64_t& b, int64_t& e) {
  b = start.value_or(0);
  e = end.value_or(n);
  if (b < 0) b = std::max<int64_t>(0, b + n);
  if (e < 0) e = std::max<int64_t>(0, e + n);
  b = std::min(b, n);
  e = std::min(e, n);
}

}  // namespace

int64_t py_find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
                bool reverse) {
  auto offs = code_point_offsets(s);
  int64_t n = static_cast<int64_t>(offs.size()) - 1, b, e;
  clamp_bounds(n, start, end, b, e);
  if (b > e) return -1;
  std::string_view window = s.substr(offs[b], offs[e] - offs[b]);
  size_t hit = reverse ? window.rfind(sub) : window.find(sub);
  if (hit == std::string_view::npos) return -1;
  size_t byte = offs[b] + hit;
  return std::lower_bound(offs.begin(), offs.end(), byte) - offs.begin();
}

int64_t py_count(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end) {
  auto offs = code_point_offsets(s);
  int64_t n = static_cast<int64_t>(offs.size()) - 1, b, e;
  clamp_bounds(n, start, end, b, e);
  if (b > e) return 0;
  std::string_view window = s.substr(offs[b], offs[e] - offs[b]);
  if (sub.empty()) return e - b + 1;
  int64_t c = 0;
  for (size_t pos = window.find(sub); pos != std::string_view::npos; pos = window.find(sub, pos + sub.size())) ++c;
  return c;
}

std::string py_repr_string(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos, has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t cp = next_code_point(s, i);
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x80 && py_isprintable(cp)) {
      out += static_cast<char>(cp);
    } else if (i - start == 1 && cp >= 0x80) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);  // undecodable byte
      out += buf;
    } else if (!py_isprintable(cp)) {
      if (cp <= 0xFF)
        std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      else if (cp <= 0xFFFF)
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += quote;
  return out;
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, res.ptr - buf);
  bool neg = false;
  if (!sci.empty() && sci[0] == '-') {
    neg = true;
    sci.remove_prefix(1);
  }
  size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits += c;
  int exp = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out.append(digits, 1, std::string::npos);
  }
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  out += eb;
  return out;
}

}  // namespace slim::jinja
