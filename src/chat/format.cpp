// Python str.format / format-spec / %-formatting (see format.h).
#include "chat/format.h"

#include <cmath>
#include <cstdio>

#include "base/status.h"
#include "chat/builtins.h"
#include "chat/py_string.h"

namespace slim::jinja {
namespace {

struct Spec {
  std::string fill = " ";
  char align = 0;  // < > = ^
  char sign = '-';
  bool alt = false;
  int64_t width = -1;
  char grouping = 0;
  int64_t precision = -1;
  char type = 0;
};

int64_t parse_number(std::string_view s, size_t& i) {
  int64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    n = n * 10 + (s[i++] - '0');
    if (n > 100000) fail("Too many decimal digits in format string");
  }
  return n;
}

Spec parse_spec(std::string_view s) {
  Spec sp;
  size_t i = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  if (!s.empty()) {
    size_t j = 0;
    next_code_point(s, j);
    if (j < s.size() && is_align(s[j])) {
      sp.fill = std::string(s.substr(0, j));
      sp.align = s[j];
      i = j + 1;
    } else if (is_align(s[0])) {
      sp.align = s[0];
      i = 1;
    }
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) sp.sign = s[i++];
  if (i < s.size() && s[i] == 'z') ++i;
  if (i < s.size() && s[i] == '#') {
    sp.alt = true;
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    if (!sp.align) {
      sp.fill.assign(1, '0');
      sp.align = '=';
    }
    ++i;
  }
  if (i < s.size() && s[i] >= '0' && s[i] <= '9') sp.width = parse_number(s, i);
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) sp.grouping = s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || s[i] < '0' || s[i] > '9') fail("Format specifier missing precision");
    sp.precision = parse_number(s, i);
  }
  if (i < s.size()) sp.type = s[i++];
  if (i != s.size()) fail("Invalid format specifier '" + std::string(s) + "'");
  return sp;
}

std::string group_digits(const std::string& digits, char sep, size_t every) {
  std::string out;
  size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    out += digits[i];
    size_t left = n - i - 1;
    if (left > 0 && left % every == 0) out += sep;
  }
  return out;
}

// Pads `body` (already without sign) to the spec width.
std::string apply_padding(const Spec& sp, const std::string& sign, const std::string& body, char default_align) {
  char align = sp.align ? sp.align : default_align;
  auto len = static_cast<int64_t>(code_point_count(sign) + code_point_count(body));
  int64_t marg = sp.width > len ? sp.width - len : 0;
  auto fill = [&](int64_t n) {
    std::string f;
    for (int64_t i = 0; i < n; ++i) f += sp.fill;
    return f;
  };
  switch (align) {
    case '<': return sign + body + fill(marg);
    case '^': return fill(marg / 2) + sign + body + fill(marg - marg / 2);
    case '=': return sign + fill(marg) + body;
    default: return fill(marg) + sign + body;
  }
}

std::string sign_of(bool negative, char sign) {
  if (negative) return "-";
  if (sign == '+') return "+";
  if (sign == ' ') return " ";
  return "";
}

std::string format_int(int64_t v, const Spec& sp) {
  bool neg = v < 0;
  uint64_t mag = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits, prefix;
  char t = sp.type ? sp.type : 'd';
  switch (t) {
    case 'd':
    case 'n': digits = std::to_string(mag); break;
    case 'b':
      do {
        digits.insert(digits.begin(), static_cast<char>('0' + (mag & 1)));
        mag >>= 1;
      } while (mag);
      prefix = "0b";
      break;
    case 'o':
    case 'x':
    case 'X': {
      char buf[32];
      std::snprintf(buf, sizeof buf, t == 'o' ? "%llo" : t == 'x' ? "%llx" : "%llX",
                    static_cast<unsigned long long>(mag));
      digits = buf;
      prefix = t == 'o' ? "0o" : t == 'x' ? "0x" : "0X";
      break;
    }
    case 'c': {
      std::string s;
      append_utf8(s, static_cast<uint32_t>(v));
      return apply_padding(sp, "", s, '<');
    }
    default: fail(std::string("Unknown format code '") + t + "' for object of type 'int'");
  }
  if (sp.grouping) digits = group_digits(digits, sp.grouping, (t == 'd' || t == 'n') ? 3 : 4);
  std::string sign = sign_of(neg, sp.sign);
  if (sp.alt) sign += prefix;
  return apply_padding(sp, sign, digits, '>');
}

std::string format_float(double v, const Spec& sp) {
  char t = sp.type;
  bool neg = std::signbit(v) && !std::isnan(v);
  double mag = std::fabs(v);
  std::string body;
  bool upper = t == 'F' || t == 'E' || t == 'G';
  if (std::isnan(v) || std::isinf(v)) {
    body = std::isnan(v) ? "nan" : "inf";
    if (upper) body = py_upper(body);
    if (t == '%') body += "%";
  } else {
    int p = static_cast<int>(sp.precision < 0 ? 6 : std::min<int64_t>(sp.precision, 300));
    switch (t) {
      case 0:
        if (sp.precision < 0) {
          body = py_float_repr(mag);
        } else {
          body = slim::format("%.*g", std::max(p, 1), mag);
          if (body.find_first_of(".e") == std::string::npos) body += ".0";
        }
        break;
      case 'f':
      case 'F': body = slim::format(sp.alt ? "%#.*f" : "%.*f", p, mag); break;
      case 'e':
      case 'E': body = slim::format(t == 'e' ? "%.*e" : "%.*E", p, mag); break;
      case 'g':
      case 'G':
      case 'n': body = slim::format(t == 'G' ? "%.*G" : "%.*g", std::max(p, 1), mag); break;
      case '%': body = slim::format("%.*f", p, mag * 100) + "%"; break;
      default: fail(std::string("Unknown format code '") + t + "' for object of type 'float'");
    }
    if (sp.grouping) {
      size_t end = body.find_first_not_of("0123456789");
      if (end == std::string::npos) end = body.size();
      body = group_digits(body.substr(0, end), sp.grouping, 3) + body.substr(end);
    }
  }
  return apply_padding(sp, sign_of(neg, sp.sign), body, '>');
}

}  // namespace

std::string format_value(const Value& v, std::string_view spec_text) {
  if (spec_text.empty()) return to_str(v);
  Spec sp = parse_spec(spec_text);
  switch (v.kind()) {
    case Value::string: {
      if (sp.type && sp.type != 's') fail(std::string("Unknown format code '") + sp.type + "' for object of type 'str'");
      if (sp.align == '=') fail("'=' alignment not allowed in string format specifier");
      std::string s = v.str();
      if (sp.precision >= 0) {
        auto offs = code_point_offsets(s);
        if (static_cast<size_t>(sp.precision) < offs.size() - 1) s = s.substr(0, offs[static_cast<size_t>(sp.precision)]);
      }
      return apply_padding(sp, "", s, '<');
    }
    case Value::boolean:
    case Value::integer:
      if (sp.type && std::string_view("eEfFgG%").find(sp.type) != std::string_view::npos)
        return format_float(v.as_double(), sp);
      if (sp.precision >= 0) fail("Precision not allowed in integer format specifier");
      return format_int(v.as_int(), sp);
    case Value::floating: return format_float(v.as_double(), sp);
    default: fail(std::string("unsupported format string passed to ") + type_name(v) + ".__format__");
  }
}

std::string str_format(const std::string& fmt, Args& args, bool escape) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false, used_manual = false;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    // Find the matching '}' allowing one level of nested fields in the spec.
    size_t j = i + 1;
    int depth = 1;
    for (; j < fmt.size(); ++j) {
      if (fmt[j] == '{') ++depth;
      if (fmt[j] == '}' && --depth == 0) break;
    }
    if (j >= fmt.size()) fail("expected '}' before end of string");
    std::string field = fmt.substr(i + 1, j - i - 1);
    i = j;
    std::string spec, conv;
    size_t colon = std::string::npos, bang = std::string::npos;
    int bracket = 0;
    for (size_t k = 0; k < field.size(); ++k) {
      if (field[k] == '[') ++bracket;
      if (field[k] == ']') --bracket;
      if (bracket) continue;
      if (field[k] == '!' && bang == std::string::npos && colon == std::string::npos) bang = k;
      if (field[k] == ':' && colon == std::string::npos) {
        colon = k;
        break;
      }
    }
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    if (spec.find('{') != std::string::npos) {
      Args nested = args;
      spec = str_format(spec, nested);
    }
    size_t name_end = field.find_first_of(".[");
    std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty() || std::isdigit(static_cast<unsigned char>(head[0]))) {
      size_t idx;
      if (head.empty()) {
        if (used_manual) fail("cannot switch from manual field specification to automatic field numbering");
        used_auto = true;
        idx = auto_index++;
      } else {
        if (used_auto) fail("cannot switch from automatic field numbering to manual field specification");
        used_manual = true;
        idx = static_cast<size_t>(std::stoull(head));
      }
      if (idx >= args.positional.size())
        fail("Replacement index " + std::to_string(idx) + " out of range for positional args tuple");
      v = args.positional[idx];
    } else {
      bool found = false;
      for (const auto& kv : args.keyword) {
        if (kv.first == head) {
          v = kv.second;
          found = true;
          break;
        }
      }
      if (!found) fail(py_repr_string(head));
    }
    for (size_t k = name_end; k != std::string::npos && k < field.size();) {
      if (field[k] == '.') {
        size_t e = field.find_first_of(".[", k + 1);
        v = get_attr(v, field.substr(k + 1, e == std::string::npos ? std::string::npos : e - k - 1));
        k = e;
      } else {
        size_t e = field.find(']', k);
        if (e == std::string::npos) fail("Missing ']' in format string");
        std::string key = field.substr(k + 1, e - k - 1);
        bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
        v = get_item(v, numeric ? Value(static_cast<int64_t>(std::stoll(key))) : Value(key));
        k = e + 1;
      }
    }
    if (conv == "r" || conv == "a")
      v = Value(repr(v));
    else if (conv == "s")
      v = Value(to_str(v));
    else if (!conv.empty())
      fail("Unknown conversion specifier " + conv);
    std::string field_text = format_value(v, spec);
    out += escape && !v.markup ? html_escape(field_text) : field_text;
  }
  return out;
}

std::string percent_format(const std::string& fmt, const Value& args, bool escape) {
  std::vector<Value> values;
  const Dict* mapping = nullptr;
  if (args.kind() == Value::list && args.as_list().kind == SeqKind::tuple) {
    values = args.as_list().items;
  } else {
    if (args.kind() == Value::dict) mapping = &args.as_dict();
    values.push_back(args);
  }
  size_t next = 0;
  std::string out;
  auto take = [&]() -> const Value& {
    if (next >= values.size()) fail("not enough arguments for format string");
    return values[next++];
  };
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) fail("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    const Value* mapped = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      if (!mapping) fail("format requires a mapping");
      mapped = mapping->find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (!mapped) fail(py_repr_string(fmt.substr(i + 1, close - i - 1)));
      i = close + 1;
    }
    Spec sp;
    std::string flags;
    for (; i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos; ++i) flags += fmt[i];
    if (i < fmt.size() && fmt[i] == '*') {
      sp.width = take().as_int();
      ++i;
    } else {
      sp.width = parse_number(fmt, i);
      if (sp.width == 0) sp.width = -1;
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      if (i < fmt.size() && fmt[i] == '*') {
        sp.precision = take().as_int();
        ++i;
      } else {
        sp.precision = parse_number(fmt, i);
      }
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) fail("incomplete format");
    char t = fmt[i];
    const Value& v = mapped ? *mapped : take();
    bool left = flags.find('-') != std::string::npos;
    if (flags.find('+') != std::string::npos)
      sp.sign = '+';
    else if (flags.find(' ') != std::string::npos)
      sp.sign = ' ';
    sp.alt = flags.find('#') != std::string::npos;
    bool zero = flags.find('0') != std::string::npos && !left;
    sp.align = left ? '<' : zero ? '=' : '>';
    if (zero) sp.fill.assign(1, '0');
    switch (t) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = t == 's' ? to_str(v) : repr(v);
        if (sp.precision >= 0) {
          auto offs = code_point_offsets(s);
          if (static_cast<size_t>(sp.precision) < offs.size() - 1) s = s.substr(0, offs[static_cast<size_t>(sp.precision)]);
        }
        sp.fill.assign(1, ' ');
        sp.align = left ? '<' : '>';
        if (escape && !v.markup) s = html_escape(s);
        out += apply_padding(sp, "", s, '>');
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        if (!v.is_number()) fail(std::string("%") + t + " format: a real number is required, not " + type_name(v));
        int64_t n = v.kind() == Value::floating ? static_cast<int64_t>(std::trunc(v.as_double())) : v.as_int();
        sp.type = (t == 'i' || t == 'u') ? 'd' : t;
        std::string s = format_int(n, sp);
        if (sp.precision > 0) {
          // printf precision pads digits with zeros
          std::string digits = format_int(n < 0 ? -n : n, Spec{});
          if (static_cast<int64_t>(digits.size()) < sp.precision)
            digits.insert(0, static_cast<size_t>(sp.precision) - digits.size(), '0');
          s = apply_padding(sp, sign_of(n < 0, sp.sign), digits, '>');
        }
        out += s;
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (!v.is_number()) fail(std::string("must be real number, not ") + type_name(v));
        sp.type = t;
        out += format_float(v.as_double(), sp);
        break;
      }
      case 'c': {
        if (v.is_string()) {
          out += v.str();
        } else {
          std::string s;
          append_utf8(s, static_cast<uint32_t>(v.as_int()));
          out += s;
        }
        break;
      }
      default: fail(std::string("unsupported format character '") + t + "'");
    }
  }
  if (!mapping && next < values.size()) fail("not all arguments converted during string formatting");
  return out;
}

}  // namespace slim::jinja
