// Built-in filters and tests with jinja2 3.1's signatures and behaviour,
// including its quirks: select/map/unique/items return one-shot generators,
// sort/unique/min/max ignore case by default, `safe` turns its argument
// into a string, `tojson` is Python json.dumps(ensure_ascii=False).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <unordered_map>

#include "base/status.h"
#include "chat/builtins.h"
#include "chat/format.h"
#include "chat/interp.h"
#include "chat/py_string.h"

namespace slim::jinja {
namespace {

// jinja2's make_attrgetter: "a.b.0" walks items/attributes.
struct AttrGetter {
  std::vector<Value> parts;
  bool has_default = false;
  Value fallback;
  bool ignore_case = false;

  Value operator()(const Value& item) const {
    Value v = item;
    for (const auto& p : parts) {
      v = get_item(v, p);
      if (has_default && v.is_undefined()) v = fallback;
    }
    if (ignore_case && v.is_string()) return Value(py_lower(v.str()));
    return v;
  }
};

AttrGetter make_getter(const Value& attribute, bool ignore_case, const Value& fallback = Value()) {
  AttrGetter g;
  g.ignore_case = ignore_case;
  if (!fallback.is_undefined() && !fallback.is_none()) {
    g.has_default = true;
    g.fallback = fallback;
  }
  if (attribute.is_undefined() || attribute.is_none()) return g;
  if (!attribute.is_string()) {
    g.parts.push_back(attribute);
    return g;
  }
  for (auto& part : py_split(attribute.str(), std::string("."), -1)) {
    bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    g.parts.push_back(digits ? Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10))) : Value(part));
  }
  return g;
}

Value make_iterator(std::vector<Value> items, const char* type = "generator") {
  auto it = std::make_shared<Iterator>();
  it->items = std::move(items);
  it->type_name = type;
  return Value(std::move(it));
}

int64_t int_arg(const Value& v, const char* what) {
  if (!v.is_int()) fail(std::string("'") + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
  return v.as_int();
}

// ---- string filters ----

// Filters that call a str method on soft_str(value) keep Markup as Markup.
Value keep_markup(const Value& like, std::string s) {
  return like.markup ? make_markup(std::move(s)) : Value(std::move(s));
}

Value f_upper(Interp&, const Value& v, Args& a) {
  Params p("upper", a, {});
  return keep_markup(v, py_upper(to_str(v)));
}

Value f_lower(Interp&, const Value& v, Args& a) {
  Params p("lower", a, {});
  return keep_markup(v, py_lower(to_str(v)));
}

Value f_capitalize(Interp&, const Value& v, Args& a) {
  Params p("capitalize", a, {});
  return keep_markup(v, py_capitalize(to_str(v)));
}

Value f_title(Interp&, const Value& v, Args& a) {
  Params p("title", a, {});
  // jinja2 capitalizes each piece between runs of - whitespace ( { [ <.
  std::string s = to_str(v), out;
  bool word_start = true;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_code_point(s, i);
    if (cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_isspace(cp)) {
      append_utf8(out, cp);
      word_start = true;
    } else if (word_start) {
      std::string one;
      append_utf8(one, cp);
      out += py_upper(one);
      word_start = false;
    } else {
      append_utf8(out, py_to_lower(cp));
    }
  }
  return Value(std::move(out));
}

Value f_trim(Interp&, const Value& v, Args& a) {
  Params p("trim", a, {"chars"});
  std::optional<std::string> chars;
  if (p.has(0) && !p.get(0).is_none()) chars = to_str(p.get(0));
  return keep_markup(v, py_strip(to_str(v), chars, true, true));
}

Value f_replace(Interp&, const Value& v, Args& a) {
  Params p("replace", a, {"old", "new", "count"}, 2);
  int64_t count = p.has(2) && !p.get(2).is_none() ? int_arg(p.get(2), "count") : -1;
  return Value(py_replace(to_str(v), to_str(p.get(0)), to_str(p.get(1)), count));
}

Value f_string(Interp&, const Value& v, Args& a) {
  Params p("string", a, {});
  return keep_markup(v, to_str(v));
}

Value f_safe(Interp&, const Value& v, Args& a) {
  Params p("safe", a, {});
  return make_markup(to_str(v));
}

Value f_escape(Interp&, const Value& v, Args& a) {
  Params p("escape", a, {});
  if (v.markup) return v;
  return make_markup(html_escape(to_str(v)));
}

Value f_forceescape(Interp&, const Value& v, Args& a) {
  Params p("forceescape", a, {});
  return make_markup(html_escape(to_str(v)));
}

Value f_indent(Interp&, const Value& v, Args& a) {
  Params p("indent", a, {"width", "first", "blank"});
  std::string indention;
  const Value& w = p.has(0) ? p.get(0) : Value(int64_t{4});
  if (w.is_string()) {
    indention = w.str();
  } else {
    int64_t n = int_arg(w, "width");
    indention = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
  }
  std::vector<std::string> lines = py_splitlines(to_str(v) + "\n", false);
  std::string rv;
  if (truthy(p.get(2))) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) {
        rv += '\n';
        rv += indention;
      }
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += '\n';
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
    }
  }
  if (truthy(p.get(1))) rv = indention + rv;
  return keep_markup(v, std::move(rv));
}

Value f_center(Interp&, const Value& v, Args& a) {
  Params p("center", a, {"width"});
  std::string s = to_str(v);
  int64_t width = p.has(0) ? int_arg(p.get(0), "width") : 80;
  auto len = static_cast<int64_t>(code_point_count(s));
  if (width <= len) return keep_markup(v, s);
  int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
  return keep_markup(v, std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(marg - left), ' '));
}

Value f_wordcount(Interp&, const Value& v, Args& a) {
  Params p("wordcount", a, {});
  std::string s = to_str(v);
  int64_t words = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_code_point(s, i);
    bool w = py_isalnum(cp) || cp == '_';
    if (w && !in_word) ++words;
    in_word = w;
  }
  return Value(words);
}

Value f_truncate(Interp&, const Value& v, Args& a) {
  Params p("truncate", a, {"length", "killwords", "end", "leeway"});
  std::string s = to_str(v);
  int64_t length = p.has(0) ? int_arg(p.get(0), "length") : 255;
  std::string end = p.has(2) ? to_str(p.get(2)) : "...";
  int64_t leeway = p.has(3) && !p.get(3).is_none() ? int_arg(p.get(3), "leeway") : 5;
  auto offs = code_point_offsets(s);
  auto n = static_cast<int64_t>(offs.size()) - 1;
  auto end_len = static_cast<int64_t>(code_point_count(end));
  if (length < end_len) fail("expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (leeway < 0) fail("expected leeway >= 0, got " + std::to_string(leeway));
  if (n <= length + leeway) return Value(s);
  std::string head = s.substr(0, offs[static_cast<size_t>(length - end_len)]);
  if (truthy(p.get(1))) return Value(head + end);
  size_t space = head.rfind(' ');
  if (space != std::string::npos) head = head.substr(0, space);
  return Value(head + end);
}

Value f_format(Interp&, const Value& v, Args& a) {
  if (!a.positional.empty() && !a.keyword.empty())
    fail("can't handle positional and keyword arguments at the same time");
  if (!a.keyword.empty()) {
    Dict d;
    for (auto& [k, val] : a.keyword) d.set(Value(k), val);
    return keep_markup(v, percent_format(to_str(v), make_dict(std::move(d)), v.markup));
  }
  return keep_markup(v, percent_format(to_str(v), make_list(a.positional, SeqKind::tuple), v.markup));
}

Value f_tojson(Interp&, const Value& v, Args& a) {
  Params p("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = truthy(p.get(0));
  const Value& indent = p.get(1);
  if (!indent.is_undefined() && !indent.is_none()) {
    o.has_indent = true;
    if (indent.is_string())
      o.indent = indent.str();
    else
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(int_arg(indent, "indent"), 0)), ' ');
  }
  const Value& seps = p.get(2);
  if (!seps.is_undefined() && !seps.is_none()) {
    auto parts = iterate(seps);
    if (parts->items.size() != 2 || !parts->items[0].is_string() || !parts->items[1].is_string())
      fail("separators must be a pair of strings");
    o.item_sep = parts->items[0].str();
    o.key_sep = parts->items[1].str();
  } else if (o.has_indent) {
    o.item_sep = ",";
  }
  o.sort_keys = truthy(p.get(3));
  std::string out;
  append_json(out, v, o);
  return Value(std::move(out));
}

Value f_pprint(Interp&, const Value& v, Args& a) {
  Params p("pprint", a, {});
  return Value(repr(v));
}

// ---- numbers ----

std::optional<int64_t> parse_int_text(std::string s, int base) {
  s = py_strip(s, std::nullopt, true, true);
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if ((base == 16 || base == 8 || base == 2 || base == 0) && i + 1 < s.size() && s[i] == '0') {
    char c = static_cast<char>(s[i + 1] | 0x20);
    int b = c == 'x' ? 16 : c == 'o' ? 8 : c == 'b' ? 2 : 0;
    if (b && (base == 0 || base == b)) {
      base = b;
      i += 2;
      if (i < s.size() && s[i] == '_') ++i;
    }
  }
  if (base == 0) base = 10;
  std::string digits;
  for (; i < s.size(); ++i) {
    if (s[i] == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] != '_') continue;
    digits += s[i];
  }
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (*end != '\0' || errno == ERANGE || digits[0] == '+' || digits[0] == '-') return std::nullopt;
  return neg ? -v : v;
}

std::optional<double> parse_float_text(std::string s) {
  s = py_strip(s, std::nullopt, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && std::isdigit(static_cast<unsigned char>(s[i - 1])) && i + 1 < s.size() &&
        std::isdigit(static_cast<unsigned char>(s[i + 1])))
      continue;
    clean += s[i];
  }
  if (clean.empty() || clean.find_first_of("xXpP(") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return d;
}

Value f_int(Interp&, const Value& v, Args& a) {
  Params p("int", a, {"default", "base"});
  Value fallback = p.get_or(0, Value(int64_t{0}));
  int base = p.has(1) ? static_cast<int>(int_arg(p.get(1), "base")) : 10;
  switch (v.kind()) {
    case Value::undefined: fail_undefined(v);
    case Value::boolean:
    case Value::integer: return Value(v.as_int());
    case Value::floating: {
      double d = v.as_double();
      if (std::isnan(d)) return fallback;
      if (std::isinf(d)) fail("cannot convert float infinity to integer");
      if (std::fabs(d) >= 9.2e18) fail("integer overflow");
      return Value(static_cast<int64_t>(std::trunc(d)));
    }
    case Value::string: {
      if (auto i = parse_int_text(v.str(), base)) return Value(*i);
      if (auto d = parse_float_text(v.str())) {
        if (std::isnan(*d)) return fallback;
        if (std::isinf(*d)) fail("cannot convert float infinity to integer");
        if (std::fabs(*d) >= 9.2e18) fail("integer overflow");
        return Value(static_cast<int64_t>(std::trunc(*d)));
      }
      return fallback;
    }
    default: return fallback;
  }
}

Value f_float(Interp&, const Value& v, Args& a) {
  Params p("float", a, {"default"});
  Value fallback = p.get_or(0, Value(0.0));
  switch (v.kind()) {
    case Value::undefined: fail_undefined(v);
    case Value::boolean:
    case Value::integer:
    case Value::floating: return Value(v.as_double());
    case Value::string:
      if (auto d = parse_float_text(v.str())) return Value(*d);
      return fallback;
    default: return fallback;
  }
}

Value f_abs(Interp&, const Value& v, Args& a) {
  Params p("abs", a, {});
  if (v.kind() == Value::floating) return Value(std::fabs(v.as_double()));
  if (v.is_int()) {
    if (v.as_int() == std::numeric_limits<int64_t>::min()) fail("integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_undefined()) fail_undefined(v);
  fail(std::string("bad operand type for abs(): '") + type_name(v) + "'");
}

Value f_round(Interp&, const Value& v, Args& a) {
  Params p("round", a, {"precision", "method"});
  int64_t precision = p.has(0) ? int_arg(p.get(0), "precision") : 0;
  std::string method = p.has(1) ? to_str(p.get(1)) : "common";
  if (method != "common" && method != "ceil" && method != "floor") fail("method must be common, ceil or floor");
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) fail(std::string("type ") + type_name(v) + " doesn't define __round__ method");
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method != "common") {
    double x = v.as_double() * scale;
    return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
  }
  if (v.is_int()) {
    if (precision >= 0) return Value(v.as_int());
    return Value(static_cast<int64_t>(std::nearbyint(v.as_double() / std::pow(10.0, static_cast<double>(-precision))) *
                                      std::pow(10.0, static_cast<double>(-precision))));
  }
  double x = v.as_double();
  if (!std::isfinite(x)) return Value(x);
  if (precision < 0) {
    double s = std::pow(10.0, static_cast<double>(-precision));
    return Value(std::nearbyint(x / s) * s);
  }
  // printf rounds the exact binary value half-to-even, as Python's round does.
  std::string digits = slim::format("%.*f", static_cast<int>(std::min<int64_t>(precision, 400)), x);
  return Value(std::strtod(digits.c_str(), nullptr));
}

// ---- sequences ----

Value f_length(Interp&, const Value& v, Args& a) {
  Params p("length", a, {});
  return Value(length(v));
}

Value f_list(Interp&, const Value& v, Args& a) {
  Params p("list", a, {});
  return make_list(iterate(v)->items);
}

Value f_first(Interp&, const Value& v, Args& a) {
  Params p("first", a, {});
  if (v.kind() == Value::iterator) {
    auto& it = *std::get<std::shared_ptr<Iterator>>(v.v);
    if (!it.error.empty()) fail(it.error);
    if (it.pos < it.items.size()) return it.items[it.pos++];
  } else {
    auto items = iterate(v);
    if (!items->items.empty()) return items->items.front();
  }
  return make_undefined("No first item, sequence was empty.");
}

Value f_last(Interp&, const Value& v, Args& a) {
  Params p("last", a, {});
  if (v.kind() == Value::iterator) fail(std::string("'") + type_name(v) + "' object is not reversible");
  auto items = iterate(v);
  if (!items->items.empty()) return items->items.back();
  return make_undefined("No last item, sequence was empty.");
}

Value f_join(Interp&, const Value& v, Args& a) {
  Params p("join", a, {"d", "attribute"});
  std::string sep = p.has(0) ? to_str(p.get(0)) : "";
  AttrGetter getter = make_getter(p.get(1), false);
  auto items = iterate(v);
  std::string out;
  for (size_t i = 0; i < items->items.size(); ++i) {
    if (i) out += sep;
    append_str(out, getter(items->items[i]));
  }
  return Value(std::move(out));
}

Value f_items(Interp&, const Value& v, Args& a) {
  Params p("items", a, {});
  if (v.is_undefined()) return make_iterator({});
  if (v.kind() != Value::dict) {
    Value it = make_iterator({});
    std::get<std::shared_ptr<Iterator>>(it.v)->error = "Can only get item pairs from a mapping.";
    return it;
  }
  std::vector<Value> items;
  for (const auto& kv : v.as_dict().items) items.push_back(make_list({kv.first, kv.second}, SeqKind::tuple));
  return make_iterator(std::move(items));
}

Value f_default(Interp&, const Value& v, Args& a) {
  Params p("default", a, {"default_value", "boolean"});
  if (v.is_undefined() || (truthy(p.get(1)) && !truthy(v))) return p.get_or(0, Value(""));
  return v;
}

Value select_impl(Interp& in, const Value& seq, Args& a, bool lookup_attr, bool reject) {
  std::vector<Value> out;
  if (!truthy(seq)) return make_iterator({});
  size_t off = 0;
  AttrGetter getter;
  if (lookup_attr) {
    if (a.positional.empty()) fail("Missing parameter for attribute name");
    getter = make_getter(a.positional[0], false);
    off = 1;
  }
  TestFn test = nullptr;
  Args test_args;
  if (a.positional.size() > off) {
    std::string name = to_str(a.positional[off]);
    test = find_test(name);
    if (!test) fail("No test named '" + name + "'.");
    test_args.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(off + 1), a.positional.end());
  }
  test_args.keyword = a.keyword;
  auto seq_items = iterate(seq);
  for (const Value& item : seq_items->items) {
    Value probe = getter(item);
    bool hit = test ? test(in, probe, test_args) : truthy(probe);
    if (hit != reject) out.push_back(item);
  }
  return make_iterator(std::move(out));
}

Value f_select(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, false, false); }
Value f_reject(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, false, true); }
Value f_selectattr(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, true, false); }
Value f_rejectattr(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, true, true); }

Value f_map(Interp& in, const Value& v, Args& a) {
  if (!truthy(v)) return make_iterator({});
  std::vector<Value> out;
  auto items = iterate(v);
  bool by_attribute = a.positional.empty() && std::any_of(a.keyword.begin(), a.keyword.end(),
                                                           [](const auto& kv) { return kv.first == "attribute"; });
  if (by_attribute) {
    Value attribute, fallback;
    for (const auto& [k, val] : a.keyword) {
      if (k == "attribute")
        attribute = val;
      else if (k == "default")
        fallback = val;
      else
        fail("Unexpected keyword argument '" + k + "'");
    }
    AttrGetter getter = make_getter(attribute, false, fallback);
    for (const Value& item : items->items) out.push_back(getter(item));
    return make_iterator(std::move(out));
  }
  if (a.positional.empty()) fail("map requires a filter argument");
  std::string name = to_str(a.positional[0]);
  FilterFn fn = find_filter(name);
  if (!fn) fail("No filter named '" + name + "'.");
  Args rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : items->items) {
    Args call_args = rest;
    out.push_back(fn(in, item, call_args));
  }
  return make_iterator(std::move(out));
}

// Stable sort keyed like Python's sorted(key=...).
std::vector<Value> sorted_by(const std::vector<Value>& items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? less(keys[y], keys[x]) : less(keys[x], keys[y]);
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : order) out.push_back(items[i]);
  return out;
}

Value f_sort(Interp&, const Value& v, Args& a) {
  Params p("sort", a, {"reverse", "case_sensitive", "attribute"});
  bool ignore_case = !truthy(p.get(1));
  std::vector<AttrGetter> getters;
  const Value& attr = p.get(2);
  if (attr.is_string() && attr.str().find(',') != std::string::npos) {
    for (auto& part : py_split(attr.str(), std::string(","), -1)) getters.push_back(make_getter(Value(part), ignore_case));
  } else {
    getters.push_back(make_getter(attr, ignore_case));
  }
  auto items = iterate(v);
  std::vector<Value> keys;
  keys.reserve(items->items.size());
  for (const Value& item : items->items) {
    if (getters.size() == 1) {
      keys.push_back(getters[0](item));
    } else {
      std::vector<Value> k;
      for (const auto& g : getters) k.push_back(g(item));
      keys.push_back(make_list(std::move(k)));
    }
  }
  return make_list(sorted_by(items->items, keys, truthy(p.get(0))));
}

Value f_dictsort(Interp&, const Value& v, Args& a) {
  Params p("dictsort", a, {"case_sensitive", "by", "reverse"});
  std::string by = p.has(1) ? to_str(p.get(1)) : "key";
  if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
  if (v.kind() != Value::dict) fail(std::string("'") + type_name(v) + "' object has no attribute 'items'");
  std::vector<Value> items, keys;
  for (const auto& kv : v.as_dict().items) {
    items.push_back(make_list({kv.first, kv.second}, SeqKind::tuple));
    Value k = by == "key" ? kv.first : kv.second;
    if (!truthy(p.get(0)) && k.is_string()) k = Value(py_lower(k.str()));
    keys.push_back(std::move(k));
  }
  return make_list(sorted_by(items, keys, truthy(p.get(2))));
}

Value f_unique(Interp&, const Value& v, Args& a) {
  Params p("unique", a, {"case_sensitive", "attribute"});
  AttrGetter getter = make_getter(p.get(1), !truthy(p.get(0)));
  std::vector<Value> seen, out;
  auto v_items = iterate(v);
  for (const Value& item : v_items->items) {
    Value key = getter(item);
    if (!is_hashable(key)) fail(std::string("unhashable type: '") + type_name(key) + "'");
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return make_iterator(std::move(out));
}

Value min_max(const Value& v, Args& a, bool want_max, const char* fn) {
  Params p(fn, a, {"case_sensitive", "attribute"});
  AttrGetter getter = make_getter(p.get(1), !truthy(p.get(0)));
  auto items = iterate(v);
  if (items->items.empty()) return make_undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = getter(items->items[0]);
  for (size_t i = 1; i < items->items.size(); ++i) {
    Value k = getter(items->items[i]);
    if (want_max ? less(best_key, k) : less(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items->items[best];
}

Value f_max(Interp&, const Value& v, Args& a) { return min_max(v, a, true, "max"); }
Value f_min(Interp&, const Value& v, Args& a) { return min_max(v, a, false, "min"); }

Value f_sum(Interp&, const Value& v, Args& a) {
  Params p("sum", a, {"attribute", "start"});
  AttrGetter getter = make_getter(p.get(0), false);
  Value acc = p.get_or(1, Value(int64_t{0}));
  if (acc.is_string()) fail("sum() can't sum strings [use ''.join(seq) instead]");
  auto v_items = iterate(v);
  for (const Value& item : v_items->items) acc = binary_op(BinOp::add, acc, getter(item));
  return acc;
}

Value f_reverse(Interp&, const Value& v, Args& a) {
  Params p("reverse", a, {});
  switch (v.kind()) {
    case Value::string: {
      auto cps = code_points(v.str());
      std::string out;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
      return keep_markup(v, std::move(out));
    }
    case Value::list: {
      std::vector<Value> items(v.as_list().items.rbegin(), v.as_list().items.rend());
      return make_iterator(std::move(items), "list_reverseiterator");
    }
    case Value::dict: {
      auto keys = iterate(v)->items;
      std::reverse(keys.begin(), keys.end());
      return make_iterator(std::move(keys), "dict_reversekeyiterator");
    }
    case Value::iterator: {
      auto items = iterate(v)->items;
      std::reverse(items.begin(), items.end());
      return make_list(std::move(items));
    }
    case Value::undefined: return make_iterator({}, "reversed");
    default: fail("argument must be iterable");
  }
}

Value f_batch(Interp&, const Value& v, Args& a) {
  Params p("batch", a, {"linecount", "fill_with"}, 1);
  int64_t count = int_arg(p.get(0), "linecount");
  if (count <= 0) fail("batch size must be positive");
  std::vector<Value> out, tmp;
  auto v_items = iterate(v);
  for (const Value& item : v_items->items) {
    if (static_cast<int64_t>(tmp.size()) == count) {
      out.push_back(make_list(std::move(tmp)));
      tmp.clear();
    }
    tmp.push_back(item);
  }
  if (!tmp.empty()) {
    if (p.has(1) && !p.get(1).is_none())
      while (static_cast<int64_t>(tmp.size()) < count) tmp.push_back(p.get(1));
    out.push_back(make_list(std::move(tmp)));
  }
  return make_iterator(std::move(out));
}

Value f_slice(Interp&, const Value& v, Args& a) {
  Params p("slice", a, {"slices", "fill_with"}, 1);
  int64_t slices = int_arg(p.get(0), "slices");
  if (slices <= 0) fail("slice count must be positive");
  auto seq = iterate(v)->items;
  auto length = static_cast<int64_t>(seq.size());
  int64_t per = length / slices, extra = length % slices, offset = 0;
  std::vector<Value> out;
  for (int64_t n = 0; n < slices; ++n) {
    int64_t start = offset + n * per;
    if (n < extra) ++offset;
    int64_t end = offset + (n + 1) * per;
    std::vector<Value> tmp(seq.begin() + start, seq.begin() + end);
    if (p.has(1) && !p.get(1).is_none() && n >= extra) tmp.push_back(p.get(1));
    out.push_back(make_list(std::move(tmp)));
  }
  return make_iterator(std::move(out));
}

Value f_attr(Interp&, const Value& v, Args& a) {
  Params p("attr", a, {"name"}, 1);
  std::string name = to_str(p.get(0));
  if (v.kind() == Value::dict) {
    // Attributes only: a dict's keys are not attributes.
    Value method = get_attr(make_dict(Dict{}), name);
    if (method.is_undefined()) return undefined_attr(v, name);
    return get_attr(v, name);
  }
  return get_attr(v, name);
}

// ---- tests ----

bool t_defined(Interp&, const Value& v, Args& a) {
  Params p("defined", a, {});
  return !v.is_undefined();
}
bool t_undefined(Interp&, const Value& v, Args& a) {
  Params p("undefined", a, {});
  return v.is_undefined();
}
bool t_none(Interp&, const Value& v, Args& a) {
  Params p("none", a, {});
  return v.is_none();
}
bool t_boolean(Interp&, const Value& v, Args& a) {
  Params p("boolean", a, {});
  return v.kind() == Value::boolean;
}
bool t_true(Interp&, const Value& v, Args& a) {
  Params p("true", a, {});
  return v.kind() == Value::boolean && std::get<bool>(v.v);
}
bool t_false(Interp&, const Value& v, Args& a) {
  Params p("false", a, {});
  return v.kind() == Value::boolean && !std::get<bool>(v.v);
}
bool t_integer(Interp&, const Value& v, Args& a) {
  Params p("integer", a, {});
  return v.kind() == Value::integer;
}
bool t_float(Interp&, const Value& v, Args& a) {
  Params p("float", a, {});
  return v.kind() == Value::floating;
}
bool t_number(Interp&, const Value& v, Args& a) {
  Params p("number", a, {});
  return v.is_number();
}
bool t_string(Interp&, const Value& v, Args& a) {
  Params p("string", a, {});
  return v.is_string();
}
bool t_mapping(Interp&, const Value& v, Args& a) {
  Params p("mapping", a, {});
  return v.kind() == Value::dict;
}
bool t_iterable(Interp&, const Value& v, Args& a) {
  Params p("iterable", a, {});
  switch (v.kind()) {
    case Value::undefined:
    case Value::string:
    case Value::list:
    case Value::dict:
    case Value::iterator:
    case Value::loop: return true;
    default: return false;
  }
}
bool t_sequence(Interp&, const Value& v, Args& a) {
  Params p("sequence", a, {});
  switch (v.kind()) {
    case Value::undefined:
    case Value::string:
    case Value::dict: return true;
    case Value::list: {
      SeqKind k = v.as_list().kind;
      return k == SeqKind::list || k == SeqKind::tuple || k == SeqKind::range;
    }
    default: return false;
  }
}
bool t_callable(Interp&, const Value& v, Args& a) {
  Params p("callable", a, {});
  return v.kind() == Value::callable || v.kind() == Value::loop;
}
bool t_escaped(Interp&, const Value& v, Args& a) {
  Params p("escaped", a, {});
  return v.markup;
}
bool t_sameas(Interp&, const Value& v, Args& a) {
  Params p("sameas", a, {"other"}, 1);
  const Value& o = p.get(0);
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::list: return v.list_ptr() == o.list_ptr();
    case Value::dict: return std::get<std::shared_ptr<const Dict>>(v.v) == std::get<std::shared_ptr<const Dict>>(o.v);
    default: return equals(v, o);
  }
}
bool t_odd(Interp&, const Value& v, Args& a) {
  Params p("odd", a, {});
  return equals(binary_op(BinOp::mod, v, Value(int64_t{2})), Value(int64_t{1}));
}
bool t_even(Interp&, const Value& v, Args& a) {
  Params p("even", a, {});
  return equals(binary_op(BinOp::mod, v, Value(int64_t{2})), Value(int64_t{0}));
}
bool t_divisibleby(Interp&, const Value& v, Args& a) {
  Params p("divisibleby", a, {"num"}, 1);
  return equals(binary_op(BinOp::mod, v, p.get(0)), Value(int64_t{0}));
}
bool t_eq(Interp&, const Value& v, Args& a) {
  Params p("eq", a, {"other"}, 1);
  return equals(v, p.get(0));
}
bool t_ne(Interp&, const Value& v, Args& a) {
  Params p("ne", a, {"other"}, 1);
  return !equals(v, p.get(0));
}
bool t_lt(Interp&, const Value& v, Args& a) {
  Params p("lt", a, {"other"}, 1);
  return less(v, p.get(0));
}
bool t_le(Interp&, const Value& v, Args& a) {
  Params p("le", a, {"other"}, 1);
  return less(v, p.get(0)) || equals(v, p.get(0));
}
bool t_gt(Interp&, const Value& v, Args& a) {
  Params p("gt", a, {"other"}, 1);
  return less(p.get(0), v);
}
bool t_ge(Interp&, const Value& v, Args& a) {
  Params p("ge", a, {"other"}, 1);
  return less(p.get(0), v) || equals(v, p.get(0));
}
bool t_in(Interp&, const Value& v, Args& a) {
  Params p("in", a, {"seq"}, 1);
  return contains(p.get(0), v);
}
bool t_lower(Interp&, const Value& v, Args& a) {
  Params p("lower", a, {});
  return py_islower(to_str(v));
}
bool t_upper(Interp&, const Value& v, Args& a) {
  Params p("upper", a, {});
  return py_isupper(to_str(v));
}
bool t_filter(Interp&, const Value& v, Args& a) {
  Params p("filter", a, {});
  return v.is_string() && find_filter(v.str()) != nullptr;
}
bool t_test(Interp&, const Value& v, Args& a) {
  Params p("test", a, {});
  return v.is_string() && find_test(v.str()) != nullptr;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  static const std::unordered_map<std::string_view, FilterFn> kFilters = {
      {"abs", f_abs},           {"attr", f_attr},           {"batch", f_batch},
      {"capitalize", f_capitalize}, {"center", f_center},   {"count", f_length},
      {"d", f_default},         {"default", f_default},     {"dictsort", f_dictsort},
      {"e", f_escape},          {"escape", f_escape},       {"first", f_first},
      {"float", f_float},       {"forceescape", f_forceescape},  {"format", f_format},
      {"indent", f_indent},     {"int", f_int},             {"items", f_items},
      {"join", f_join},         {"last", f_last},           {"length", f_length},
      {"list", f_list},         {"lower", f_lower},         {"map", f_map},
      {"max", f_max},           {"min", f_min},             {"pprint", f_pprint},
      {"reject", f_reject},     {"rejectattr", f_rejectattr}, {"replace", f_replace},
      {"reverse", f_reverse},   {"round", f_round},         {"safe", f_safe},
      {"select", f_select},     {"selectattr", f_selectattr}, {"slice", f_slice},
      {"sort", f_sort},         {"string", f_string},       {"sum", f_sum},
      {"title", f_title},       {"tojson", f_tojson},       {"trim", f_trim},
      {"truncate", f_truncate}, {"unique", f_unique},       {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  auto it = kFilters.find(name);
  return it == kFilters.end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  static const std::unordered_map<std::string_view, TestFn> kTests = {
      {"boolean", t_boolean},   {"callable", t_callable}, {"defined", t_defined},   {"divisibleby", t_divisibleby},
      {"eq", t_eq},             {"equalto", t_eq},        {"==", t_eq},             {"escaped", t_escaped},
      {"even", t_even},         {"false", t_false},       {"filter", t_filter},     {"float", t_float},
      {"ge", t_ge},             {">=", t_ge},             {"gt", t_gt},             {">", t_gt},
      {"greaterthan", t_gt},    {"in", t_in},             {"integer", t_integer},   {"iterable", t_iterable},
      {"le", t_le},             {"<=", t_le},             {"lower", t_lower},       {"lt", t_lt},
      {"<", t_lt},              {"lessthan", t_lt},       {"mapping", t_mapping},   {"ne", t_ne},
      {"!=", t_ne},             {"none", t_none},         {"number", t_number},     {"odd", t_odd},
      {"sameas", t_sameas},     {"sequence", t_sequence}, {"string", t_string},     {"test", t_test},
      {"true", t_true},         {"undefined", t_undefined}, {"upper", t_upper},
  };
  auto it = kTests.find(name);
  return it == kTests.end() ? nullptr : it->second;
}

}  // namespace slim::jinja
