// Attribute and item access, methods of built-in values, Python operators
// and the global functions (see builtins.h). Filters and tests live in
// filters.cpp. The immutable sandbox shows through: methods that mutate a
// list or dict resolve to an undefined value that fails when called.
#include "chat/builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include "chat/format.h"
#include "chat/interp.h"
#include "chat/py_string.h"

namespace slim::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;             // jinja2 sandbox MAX_RANGE
constexpr size_t kMaxRepeat = size_t{64} << 20;   // elements/bytes made by `*`

bool in_list(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_str_method(std::string_view n) {
  return in_list(n, {"capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
                     "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
                     "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join",
                     "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix",
                     "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
                     "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"});
}
bool is_dict_method(std::string_view n) { return in_list(n, {"copy", "fromkeys", "get", "items", "keys", "values"}); }
bool is_dict_mutator(std::string_view n) {
  return in_list(n, {"clear", "pop", "popitem", "setdefault", "update"});
}
bool is_list_method(std::string_view n, bool tuple) {
  return tuple ? in_list(n, {"count", "index"}) : in_list(n, {"copy", "count", "index"});
}
bool is_list_mutator(std::string_view n) {
  return in_list(n, {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"});
}

Value bound_method(const Value& self, std::string_view name) {
  auto c = std::make_shared<Callable>();
  c->kind = Callable::Kind::method;
  c->name = std::string(name);
  c->self = self;
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

Value unsafe_attr(const Value& obj, std::string_view name) {
  return make_undefined("access to attribute '" + std::string(name) + "' of '" + type_name(obj) +
                        "' object is unsafe.");
}

Value loop_attr(const Value& obj, std::string_view name) {
  const LoopState& l = *std::get<std::shared_ptr<LoopState>>(obj.v);
  auto n = static_cast<int64_t>(l.items->items.size());
  auto i = static_cast<int64_t>(l.index0);
  if (name == "index0") return Value(i);
  if (name == "index") return Value(i + 1);
  if (name == "revindex") return Value(n - i);
  if (name == "revindex0") return Value(n - i - 1);
  if (name == "first") return Value(i == 0);
  if (name == "last") return Value(i == n - 1);
  if (name == "length") return Value(n);
  if (name == "depth0") return Value(static_cast<int64_t>(l.depth0));
  if (name == "depth") return Value(static_cast<int64_t>(l.depth0) + 1);
  if (name == "previtem")
    return i > 0 ? l.items->items[static_cast<size_t>(i - 1)] : make_undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? l.items->items[static_cast<size_t>(i + 1)] : make_undefined("there is no next item");
  if (name == "cycle" || name == "changed") return bound_method(obj, name);
  return undefined_attr(obj, name);
}

// A string derived from `like` keeps its Markup-ness.
Value markup_like(const Value& like, std::string s) {
  return like.markup ? make_markup(std::move(s)) : Value(std::move(s));
}

// Python index semantics: negative counts from the end; out of range → -1.
int64_t resolve_index(int64_t i, size_t n) {
  if (i < 0) i += static_cast<int64_t>(n);
  return i >= 0 && i < static_cast<int64_t>(n) ? i : -1;
}

}  // namespace

Value get_attr(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Value::undefined: fail_undefined(obj);
    case Value::dict: {
      if (is_dict_method(name)) return bound_method(obj, name);
      if (is_dict_mutator(name)) return unsafe_attr(obj, name);
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return undefined_attr(obj, name);
    }
    case Value::ns: {
      if (const Value* v = std::get<std::shared_ptr<Namespace>>(obj.v)->attrs.find(name)) return *v;
      return undefined_attr(obj, name);
    }
    case Value::loop: return loop_attr(obj, name);
    case Value::string:
      if (is_str_method(name)) return bound_method(obj, name);
      return undefined_attr(obj, name);
    case Value::list: {
      SeqKind k = obj.as_list().kind;
      if (k == SeqKind::list || k == SeqKind::tuple || k == SeqKind::range) {
        if (is_list_method(name, k != SeqKind::list)) return bound_method(obj, name);
        if (k == SeqKind::list && is_list_mutator(name)) return unsafe_attr(obj, name);
      }
      return undefined_attr(obj, name);
    }
    case Value::boolean:
    case Value::integer:
    case Value::floating:
      if (name == "real") return obj.kind() == Value::floating ? obj : Value(obj.as_int());
      if (name == "imag") return obj.kind() == Value::floating ? Value(0.0) : Value(int64_t{0});
      if (obj.kind() != Value::floating && name == "numerator") return Value(obj.as_int());
      if (obj.kind() != Value::floating && name == "denominator") return Value(int64_t{1});
      return undefined_attr(obj, name);
    default: return undefined_attr(obj, name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::undefined: fail_undefined(obj);
    case Value::dict:
      if (is_hashable(key))
        if (const Value* v = obj.as_dict().find(key)) return *v;
      break;
    case Value::list: {
      const List& l = obj.as_list();
      if (key.is_int() && (l.kind == SeqKind::list || l.kind == SeqKind::tuple || l.kind == SeqKind::range)) {
        int64_t i = resolve_index(key.as_int(), l.items.size());
        if (i >= 0) return l.items[static_cast<size_t>(i)];
      }
      break;
    }
    case Value::string:
      if (key.is_int()) {
        const std::string& s = obj.str();
        if (is_ascii(s)) {
          int64_t i = resolve_index(key.as_int(), s.size());
          if (i >= 0) return markup_like(obj, std::string(1, s[static_cast<size_t>(i)]));
        } else {
          auto offs = code_point_offsets(s);
          int64_t i = resolve_index(key.as_int(), offs.size() - 1);
          if (i >= 0) {
            auto k = static_cast<size_t>(i);
            return markup_like(obj, s.substr(offs[k], offs[k + 1] - offs[k]));
          }
        }
      }
      break;
    default: break;
  }
  // jinja2 falls back to attribute lookup for string keys.
  if (key.is_string()) {
    if (obj.kind() == Value::dict) {
      if (is_dict_method(key.str())) return bound_method(obj, key.str());
      if (is_dict_mutator(key.str())) return unsafe_attr(obj, key.str());
      return undefined_attr(obj, key.str());
    }
    return get_attr(obj, key.str());
  }
  return undefined_item(obj, key);
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) fail_undefined(obj);
  auto bound_ok = [](const Value& v) { return v.is_none() || v.is_int(); };
  bool sliceable = obj.is_string() || (obj.kind() == Value::list && (obj.as_list().kind == SeqKind::list ||
                                                                      obj.as_list().kind == SeqKind::tuple ||
                                                                      obj.as_list().kind == SeqKind::range));
  if (!sliceable || !bound_ok(start) || !bound_ok(stop) || !bound_ok(step))
    return make_undefined(std::string("'") + type_name(obj) + " object' has no slice");
  int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) fail("slice step cannot be zero");
  std::vector<size_t> offs;
  int64_t n;
  bool ascii = obj.is_string() && is_ascii(obj.str());
  if (obj.is_string()) {
    if (!ascii) offs = code_point_offsets(obj.str());
    n = ascii ? static_cast<int64_t>(obj.str().size()) : static_cast<int64_t>(offs.size()) - 1;
  } else {
    n = static_cast<int64_t>(obj.as_list().items.size());
  }
  int64_t lower = st > 0 ? 0 : -1, upper = st > 0 ? n : n - 1;
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t x = v.as_int();
    if (x < 0) {
      x += n;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  int64_t b = clamp(start, st > 0 ? lower : upper), e = clamp(stop, st > 0 ? upper : lower);
  if (obj.is_string()) {
    const std::string& s = obj.str();
    std::string out;
    if (st == 1) {
      if (b < e) {
        size_t bb = ascii ? static_cast<size_t>(b) : offs[static_cast<size_t>(b)];
        size_t ee = ascii ? static_cast<size_t>(e) : offs[static_cast<size_t>(e)];
        out = s.substr(bb, ee - bb);
      }
      return markup_like(obj, std::move(out));
    }
    for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
      auto k = static_cast<size_t>(i);
      if (ascii)
        out += s[k];
      else
        out.append(s, offs[k], offs[k + 1] - offs[k]);
    }
    return markup_like(obj, std::move(out));
  }
  const List& l = obj.as_list();
  std::vector<Value> items;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) items.push_back(l.items[static_cast<size_t>(i)]);
  return make_list(std::move(items), l.kind);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::string:
      if (!item.is_string())
        fail(std::string("'in <string>' requires string as left operand, not ") + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Value::list:
      for (const auto& v : container.as_list().items)
        if (equals(v, item)) return true;
      return false;
    case Value::dict:
      if (!is_hashable(item)) fail(std::string("unhashable type: '") + type_name(item) + "'");
      return container.as_dict().find(item) != nullptr;
    case Value::iterator: {
      auto& it = *std::get<std::shared_ptr<Iterator>>(container.v);
      if (!it.error.empty()) fail(it.error);
      while (it.pos < it.items.size())
        if (equals(it.items[it.pos++], item)) return true;
      return false;
    }
    case Value::undefined: return false;
    default: fail(std::string("argument of type '") + type_name(container) + "' is not iterable");
  }
}

// ---- operators ----

namespace {

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  fail(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" + type_name(b) +
       "'");
}

bool is_plain_seq(const Value& v) {
  return v.kind() == Value::list && (v.as_list().kind == SeqKind::list || v.as_list().kind == SeqKind::tuple);
}

Value repeat(const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    if (seq.str().size() * static_cast<size_t>(times) > kMaxRepeat) fail("repeated string is too long");
    std::string out;
    out.reserve(seq.str().size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return seq.markup ? make_markup(std::move(out)) : Value(std::move(out));
  }
  const List& l = seq.as_list();
  if (l.items.size() * static_cast<size_t>(times) > kMaxRepeat) fail("repeated list is too long");
  std::vector<Value> items;
  for (int64_t i = 0; i < times; ++i) items.insert(items.end(), l.items.begin(), l.items.end());
  return make_list(std::move(items), l.kind);
}

int64_t add_int(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail("integer overflow");
  return r;
}

int64_t sub_int(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) fail("integer overflow");
  return r;
}

int64_t mul_int(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("integer overflow");
  return r;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = mul_int(result, base);
    exp >>= 1;
    if (exp) base = mul_int(base, base);
  }
  return result;
}

}  // namespace

Value binary_op(BinOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  bool ints = a.is_int() && b.is_int();
  bool nums = a.is_number() && b.is_number();
  switch (op) {
    case BinOp::add:
      if (ints) return Value(add_int(a.as_int(), b.as_int()));
      if (nums) return Value(a.as_double() + b.as_double());
      if (a.is_string() && b.is_string()) {
        if (!a.markup && !b.markup) return Value(a.str() + b.str());
        // markupsafe: the plain operand is escaped, the result is Markup.
        return make_markup((a.markup ? a.str() : html_escape(a.str())) + (b.markup ? b.str() : html_escape(b.str())));
      }
      if (a.markup || b.markup) unsupported("+", a, b);
      if (is_plain_seq(a) && is_plain_seq(b) && a.as_list().kind == b.as_list().kind) {
        std::vector<Value> items = a.as_list().items;
        items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
        return make_list(std::move(items), a.as_list().kind);
      }
      if (a.is_string() || is_plain_seq(a))
        fail(std::string("can only concatenate ") + type_name(a) + " (not \"" + type_name(b) + "\") to " +
             type_name(a));
      unsupported("+", a, b);
    case BinOp::sub:
      if (ints) return Value(sub_int(a.as_int(), b.as_int()));
      if (nums) return Value(a.as_double() - b.as_double());
      unsupported("-", a, b);
    case BinOp::mul:
      if (ints) return Value(mul_int(a.as_int(), b.as_int()));
      if (nums) return Value(a.as_double() * b.as_double());
      if ((a.is_string() || is_plain_seq(a)) && b.is_int()) return repeat(a, b.as_int());
      if ((b.is_string() || is_plain_seq(b)) && a.is_int()) return repeat(b, a.as_int());
      if (a.is_string() || b.is_string() || is_plain_seq(a) || is_plain_seq(b))
        fail(std::string("can't multiply sequence by non-int of type '") +
             type_name(a.is_string() || is_plain_seq(a) ? b : a) + "'");
      unsupported("*", a, b);
    case BinOp::div:
      if (!nums) unsupported("/", a, b);
      if (b.as_double() == 0) fail("division by zero");
      return Value(a.as_double() / b.as_double());
    case BinOp::floordiv:
      if (!nums) unsupported("//", a, b);
      if (ints) {
        if (b.as_int() == 0) fail("integer division or modulo by zero");
        if (a.as_int() == std::numeric_limits<int64_t>::min() && b.as_int() == -1) fail("integer overflow");
        return Value(floor_div(a.as_int(), b.as_int()));
      }
      if (b.as_double() == 0) fail("float floor division by zero");
      return Value(std::floor(a.as_double() / b.as_double()));
    case BinOp::mod:
      if (a.is_string()) {
        std::string text = percent_format(a.str(), b, a.markup);
        return a.markup ? make_markup(std::move(text)) : Value(std::move(text));
      }
      if (!nums) unsupported("%", a, b);
      if (ints) {
        if (b.as_int() == 0) fail("integer modulo by zero");
        if (b.as_int() == -1) return Value(int64_t{0});
        int64_t m = a.as_int() % b.as_int();
        if (m != 0 && ((m < 0) != (b.as_int() < 0))) m += b.as_int();
        return Value(m);
      }
      {
        double x = a.as_double(), y = b.as_double();
        if (y == 0) fail("float modulo");
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        if (m == 0) m = std::copysign(0.0, y);
        return Value(m);
      }
    case BinOp::pow:
      if (!nums) unsupported("** or pow()", a, b);
      if (ints && b.as_int() >= 0) return Value(int_pow(a.as_int(), b.as_int()));
      if (a.as_double() == 0 && b.as_double() < 0) fail("0.0 cannot be raised to a negative power");
      return Value(std::pow(a.as_double(), b.as_double()));
  }
  fail("internal error: unknown operator");
}

// ---- methods ----

namespace {

std::optional<std::string> opt_chars(const Value& v, const char* fn) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  if (!v.is_string()) fail(std::string(fn) + " arg must be None or str");
  return v.str();
}

std::optional<int64_t> opt_int(const Value& v) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  if (!v.is_int()) fail(std::string("slice indices must be integers or None, not ") + type_name(v));
  return v.as_int();
}

const std::string& need_str(const Value& v, const char* fn) {
  if (!v.is_string()) fail(std::string(fn) + "() argument must be str, not " + type_name(v));
  return v.str();
}

int64_t need_int(const Value& v, const char* what) {
  if (!v.is_int()) fail(std::string("'") + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
  return v.as_int();
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return make_list(std::move(items));
}

std::string pad(const std::string& s, int64_t width, const std::string& fill, int align /* -1 l, 0 c, 1 r */) {
  auto len = static_cast<int64_t>(code_point_count(s));
  if (width <= len) return s;
  int64_t marg = width - len, left;
  if (align < 0)
    left = 0;
  else if (align > 0)
    left = marg;
  else
    left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

std::string fill_char(const Params& p, size_t i) {
  if (!p.has(i)) return " ";
  const Value& f = p.get(i);
  if (!f.is_string() || code_point_count(f.str()) != 1)
    fail("The fill character must be exactly one character long");
  return f.str();
}

bool affix_match(const std::string& s, const Value& affix, const Value& start, const Value& end, bool prefix,
                 const char* fn) {
  auto offs = code_point_offsets(s);
  int64_t n = static_cast<int64_t>(offs.size()) - 1;
  int64_t b = opt_int(start).value_or(0), e = opt_int(end).value_or(n);
  if (b < 0) b = std::max<int64_t>(0, b + n);
  if (e < 0) e = std::max<int64_t>(0, e + n);
  b = std::min(b, n);
  e = std::min(e, n);
  if (b > e) return false;
  std::string_view window(s.data() + offs[b], offs[e] - offs[b]);
  auto test = [&](const Value& a) {
    if (!a.is_string())
      fail(std::string(fn) + " first arg must be str or a tuple of str, not " + type_name(a));
    const std::string& x = a.str();
    if (x.size() > window.size()) return false;
    return prefix ? window.substr(0, x.size()) == x : window.substr(window.size() - x.size()) == x;
  };
  if (affix.kind() == Value::list && affix.as_list().kind == SeqKind::tuple) {
    for (const auto& a : affix.as_list().items)
      if (test(a)) return true;
    return false;
  }
  return test(affix);
}

std::optional<Value> str_method(const Value& self, std::string_view name, Args& args) {
  const std::string& s = self.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Params p(name.data(), args, {"chars"});
    return Value(py_strip(s, opt_chars(p.get(0), name.data()), name != "rstrip", name != "lstrip"));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "swapcase" ||
      name == "casefold") {
    Params p(name.data(), args, {});
    if (name == "upper") return Value(py_upper(s));
    if (name == "lower" || name == "casefold") return Value(py_lower(s));
    if (name == "title") return Value(py_title(s));
    if (name == "capitalize") return Value(py_capitalize(s));
    return Value(py_swapcase(s));
  }
  if (name == "startswith" || name == "endswith") {
    Params p(name.data(), args, {"prefix", "start", "end"}, 1);
    return Value(affix_match(s, p.get(0), p.get(1), p.get(2), name == "startswith", name.data()));
  }
  if (name == "split" || name == "rsplit") {
    Params p(name.data(), args, {"sep", "maxsplit"});
    auto sep = opt_chars(p.get(0), name.data());
    if (sep && sep->empty()) fail("empty separator");
    int64_t maxsplit = p.has(1) ? need_int(p.get(1), "maxsplit") : -1;
    return string_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines") {
    Params p("splitlines", args, {"keepends"});
    return string_list(py_splitlines(s, truthy(p.get(0))));
  }
  if (name == "replace") {
    Params p("replace", args, {"old", "new", "count"}, 2);
    int64_t count = p.has(2) ? need_int(p.get(2), "count") : -1;
    const Value& repl = p.get(1);
    std::string repl_text = need_str(repl, "replace");
    if (self.markup && !repl.markup) repl_text = html_escape(repl_text);
    return Value(py_replace(s, need_str(p.get(0), "replace"), repl_text, count));
  }
  if (name == "join") {
    Params p("join", args, {"iterable"}, 1);
    std::string out;
    const auto items = iterate(p.get(0));
    for (size_t i = 0; i < items->items.size(); ++i) {
      const Value& v = items->items[i];
      if (!v.is_string())
        fail("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(v) + " found");
      if (i) out += s;
      out += self.markup && !v.markup ? html_escape(v.str()) : v.str();
    }
    return Value(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    Params p(name.data(), args, {"sub", "start", "end"}, 1);
    int64_t r = py_find(s, need_str(p.get(0), name.data()), opt_int(p.get(1)), opt_int(p.get(2)), name[0] == 'r');
    if (r < 0 && (name == "index" || name == "rindex")) fail("substring not found");
    return Value(r);
  }
  if (name == "count") {
    Params p("count", args, {"sub", "start", "end"}, 1);
    return Value(py_count(s, need_str(p.get(0), "count"), opt_int(p.get(1)), opt_int(p.get(2))));
  }
  if (name == "format") return Value(str_format(s, args, self.markup));
  if (name == "center" || name == "ljust" || name == "rjust") {
    Params p(name.data(), args, {"width", "fillchar"}, 1);
    int align = name == "center" ? 0 : name == "ljust" ? -1 : 1;
    return Value(pad(s, need_int(p.get(0), "width"), fill_char(p, 1), align));
  }
  if (name == "expandtabs") {
    Params p("expandtabs", args, {"tabsize"});
    int64_t tab = p.has(0) ? need_int(p.get(0), "tabsize") : 8;
    std::string out;
    int64_t col = 0;
    for (size_t i = 0; i < s.size();) {
      size_t start = i;
      uint32_t cp = next_code_point(s, i);
      if (cp == '\t') {
        int64_t n = tab > 0 ? tab - col % tab : 0;
        out.append(static_cast<size_t>(n), ' ');
        col += n;
      } else {
        out.append(s, start, i - start);
        col = cp == '\n' || cp == '\r' ? 0 : col + 1;
      }
    }
    return Value(std::move(out));
  }
  if (name == "zfill") {
    Params p("zfill", args, {"width"}, 1);
    int64_t width = need_int(p.get(0), "width");
    auto len = static_cast<int64_t>(code_point_count(s));
    if (width <= len) return Value(s);
    std::string sign, rest = s;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
      sign = s.substr(0, 1);
      rest = s.substr(1);
    }
    return Value(sign + std::string(static_cast<size_t>(width - len), '0') + rest);
  }
  if (name == "partition" || name == "rpartition") {
    Params p(name.data(), args, {"sep"}, 1);
    const std::string& sep = need_str(p.get(0), name.data());
    if (sep.empty()) fail("empty separator");
    size_t hit = name == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<Value> parts;
    if (hit == std::string::npos) {
      if (name == "partition")
        parts = {Value(s), Value(""), Value("")};
      else
        parts = {Value(""), Value(""), Value(s)};
    } else {
      parts = {Value(s.substr(0, hit)), Value(sep), Value(s.substr(hit + sep.size()))};
    }
    return make_list(std::move(parts), SeqKind::tuple);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    Params p(name.data(), args, {"affix"}, 1);
    const std::string& a = need_str(p.get(0), name.data());
    if (name == "removeprefix") return Value(s.compare(0, a.size(), a) == 0 ? s.substr(a.size()) : s);
    bool ends = s.size() >= a.size() && s.compare(s.size() - a.size(), a.size(), a) == 0;
    return Value(ends ? s.substr(0, s.size() - a.size()) : s);
  }
  if (name.substr(0, 2) == "is") {
    Params p(name.data(), args, {});
    if (name == "islower") return Value(py_islower(s));
    if (name == "isupper") return Value(py_isupper(s));
    if (name == "isascii") return Value(is_ascii(s));
    if (name == "istitle") {
      bool cased = false, prev_cased = false;
      for (size_t i = 0; i < s.size();) {
        uint32_t cp = next_code_point(s, i);
        if (py_isupper_cp(cp) || py_islower_cp(cp)) {
          if (py_isupper_cp(cp) == prev_cased) return Value(false);
          prev_cased = cased = true;
        } else {
          prev_cased = false;
        }
      }
      return Value(cased);
    }
    bool (*pred)(uint32_t) = nullptr;
    if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") pred = py_isdigit;
    if (name == "isalpha") pred = py_isalpha;
    if (name == "isalnum") pred = py_isalnum;
    if (name == "isspace") pred = py_isspace;
    if (name == "isprintable") pred = py_isprintable;
    if (pred) {
      if (s.empty()) return Value(name == "isprintable");
      for (size_t i = 0; i < s.size();)
        if (!pred(next_code_point(s, i))) return Value(false);
      return Value(true);
    }
  }
  if (is_str_method(name)) fail("str." + std::string(name) + "() is not supported");
  return std::nullopt;
}

// Markup's methods that return Markup (markupsafe 3).
bool returns_markup(std::string_view n) {
  return in_list(n, {"capitalize", "casefold", "center", "expandtabs", "format", "join", "ljust", "lower", "lstrip",
                     "partition", "removeprefix", "removesuffix", "replace", "rjust", "rpartition", "rsplit", "rstrip",
                     "split", "splitlines", "strip", "swapcase", "title", "translate", "upper", "zfill"});
}

void mark_markup(Value& v) {
  if (v.is_string()) {
    v.markup = true;
  } else if (v.kind() == Value::list) {
    std::vector<Value> items = v.as_list().items;
    for (auto& item : items) item.markup = item.is_string();
    v = make_list(std::move(items), v.as_list().kind);
  }
}

std::optional<Value> dict_method(const Value& self, std::string_view name, Args& args) {
  const Dict& d = self.as_dict();
  if (name == "get") {
    Params p("get", args, {"key", "default"}, 1);
    if (!is_hashable(p.get(0))) fail(std::string("unhashable type: '") + type_name(p.get(0)) + "'");
    if (const Value* v = d.find(p.get(0))) return *v;
    return p.get_or(1, Value(nullptr));
  }
  if (name == "items" || name == "keys" || name == "values") {
    Params p(name.data(), args, {});
    std::vector<Value> items;
    items.reserve(d.items.size());
    for (const auto& kv : d.items) {
      if (name == "items")
        items.push_back(make_list({kv.first, kv.second}, SeqKind::tuple));
      else
        items.push_back(name == "keys" ? kv.first : kv.second);
    }
    SeqKind kind = name == "items" ? SeqKind::dict_items : name == "keys" ? SeqKind::dict_keys : SeqKind::dict_values;
    return make_list(std::move(items), kind);
  }
  if (name == "copy") {
    Params p("copy", args, {});
    return make_dict(d);
  }
  if (is_dict_method(name)) fail("dict." + std::string(name) + "() is not supported");
  return std::nullopt;
}

std::optional<Value> list_method(const Value& self, std::string_view name, Args& args) {
  const List& l = self.as_list();
  if (!is_list_method(name, l.kind != SeqKind::list)) return std::nullopt;
  if (name == "copy") {
    Params p("copy", args, {});
    return make_list(l.items, l.kind);
  }
  if (name == "count") {
    Params p("count", args, {"value"}, 1);
    int64_t c = 0;
    for (const auto& v : l.items) c += equals(v, p.get(0));
    return Value(c);
  }
  Params p("index", args, {"value", "start", "stop"}, 1);
  auto n = static_cast<int64_t>(l.items.size());
  int64_t b = opt_int(p.get(1)).value_or(0), e = opt_int(p.get(2)).value_or(n);
  if (b < 0) b = std::max<int64_t>(0, b + n);
  if (e < 0) e = std::max<int64_t>(0, e + n);
  for (int64_t i = b; i < std::min(e, n); ++i)
    if (equals(l.items[static_cast<size_t>(i)], p.get(0))) return Value(i);
  fail(repr(p.get(0)) + " is not in list");
}

std::optional<Value> loop_method(const Value& self, std::string_view name, Args& args) {
  LoopState& l = *std::get<std::shared_ptr<LoopState>>(self.v);
  if (name == "cycle") {
    if (!args.keyword.empty()) fail("cycle() takes no keyword arguments");
    if (args.positional.empty()) fail("no items for cycling given");
    return args.positional[l.index0 % args.positional.size()];
  }
  if (name == "changed") {
    if (!args.keyword.empty()) fail("changed() takes no keyword arguments");
    Value now = make_list(args.positional, SeqKind::tuple);
    bool changed = !l.changed_called || !equals(now, l.last_changed);
    l.changed_called = true;
    l.last_changed = now;
    return Value(changed);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Value> call_method(const Value& obj, std::string_view name, Args& args) {
  switch (obj.kind()) {
    case Value::string: {
      auto r = str_method(obj, name, args);
      if (r && obj.markup && returns_markup(name)) mark_markup(*r);
      return r;
    }
    case Value::dict:
      if (is_dict_mutator(name)) return std::nullopt;  // resolves to the sandbox's unsafe undefined
      return dict_method(obj, name, args);
    case Value::list: return list_method(obj, name, args);
    case Value::loop: return loop_method(obj, name, args);
    default: return std::nullopt;
  }
}

// ---- globals ----

namespace {

Value g_range(Args& args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  size_t n = args.positional.size();
  if (n < 1 || n > 3) fail("range expected 1 to 3 arguments, got " + std::to_string(n));
  int64_t v[3];
  for (size_t i = 0; i < n; ++i) v[i] = need_int(args.positional[i], "range");
  int64_t start = n == 1 ? 0 : v[0], stop = n == 1 ? v[0] : v[1], step = n == 3 ? v[2] : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  int64_t count = 0;
  if (step > 0 && start < stop) count = (stop - start + step - 1) / step;
  if (step < 0 && start > stop) count = (start - stop - step - 1) / -step;
  if (count > kMaxRange)
    fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + std::to_string(kMaxRange) + ").");
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) items.emplace_back(start + i * step);
  return make_list(std::move(items), SeqKind::range);
}

// dict(mapping_or_pairs, **kwargs), also used by namespace(...).
Dict dict_from_args(Args& args, const char* fn) {
  Dict d;
  if (args.positional.size() > 1)
    fail(std::string(fn) + " expected at most 1 argument, got " + std::to_string(args.positional.size()));
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.kind() == Value::dict) {
      d = src.as_dict();
    } else if (src.kind() == Value::ns) {
      d = std::get<std::shared_ptr<Namespace>>(src.v)->attrs;
    } else {
      auto src_items = iterate(src);
      for (const auto& pair : src_items->items) {
        auto kv = iterate(pair);
        if (kv->items.size() != 2) fail("dictionary update sequence element has wrong length; 2 is required");
        if (!is_hashable(kv->items[0])) fail(std::string("unhashable type: '") + type_name(kv->items[0]) + "'");
        d.set(kv->items[0], kv->items[1]);
      }
    }
  }
  for (auto& [k, v] : args.keyword) d.set(Value(k), v);
  return d;
}

Value g_strftime_now(Args& args) {
  Params p("strftime_now", args, {"format"}, 1);
  const std::string& fmt = need_str(p.get(0), "strftime_now");
  // The rendering environment pins "now" to 26 July 2024 00:00:00 (a Friday).
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  tm.tm_wday = 5;
  tm.tm_yday = 207;
  tm.tm_isdst = 0;
  // Python handles %f, %z and %Z itself for naive datetimes.
  std::string c_fmt;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size()) {
      char c = fmt[i + 1];
      if (c == 'f') {
        c_fmt += "000000";
        ++i;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++i;
        continue;
      }
      c_fmt += fmt[i];
      c_fmt += fmt[++i];
      continue;
    }
    c_fmt += fmt[i];
  }
  if (c_fmt.empty()) return Value("");
  std::string buf(c_fmt.size() * 8 + 64, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), c_fmt.c_str(), &tm);
  buf.resize(n);
  return Value(std::move(buf));
}

}  // namespace

Value find_global(std::string_view name) {
  if (!in_list(name, {"range", "dict", "namespace", "raise_exception", "strftime_now"})) return Value();
  auto c = std::make_shared<Callable>();
  c->kind = Callable::Kind::builtin;
  c->name = std::string(name);
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

Value call_builtin(Interp& in, const Callable& fn, Args& args) {
  if (fn.name == "range") return g_range(args);
  if (fn.name == "dict") return make_dict(dict_from_args(args, "dict"));
  if (fn.name == "namespace") {
    auto ns = std::make_shared<Namespace>();
    for (auto& [k, v] : dict_from_args(args, "namespace").items) {
      note_nested(ns->attrs, v);
      ns->attrs.items.emplace_back(std::move(k), std::move(v));
    }
    in.adopt(ns);
    return Value(std::move(ns));
  }
  if (fn.name == "raise_exception") {
    Params p("raise_exception", args, {"message"}, 1);
    throw Error{ErrorKind::raised, to_str(p.get(0))};
  }
  if (fn.name == "strftime_now") return g_strftime_now(args);
  fail("unknown function " + fn.name);
}

// ---- argument binding ----

Params::Params(const char* function, Args& args, std::initializer_list<const char*> names, size_t required)
    : slots_(names.size(), nullptr) {
  if (args.positional.size() > names.size())
    fail(std::string(function) + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
         std::to_string(args.positional.size()) + " given)");
  for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    size_t idx = 0;
    for (const char* n : names) {
      if (key == n) break;
      ++idx;
    }
    if (idx == names.size())
      fail(std::string(function) + "() got an unexpected keyword argument '" + key + "'");
    if (slots_[idx]) fail(std::string(function) + "() got multiple values for argument '" + key + "'");
    slots_[idx] = &value;
  }
  for (size_t i = 0; i < required; ++i)
    if (!slots_[i])
      fail(std::string(function) + "() missing required argument '" + *(names.begin() + i) + "'");
}

const Value& Params::get(size_t i) const {
  static const Value kUndefined;
  return slots_[i] ? *slots_[i] : kUndefined;
}

}  // namespace slim::jinja
