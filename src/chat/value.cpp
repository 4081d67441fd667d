// Python semantics of template values: printing, truthiness, comparison,
// iteration and json.dumps (see value.h).
#include "chat/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chat/py_string.h"

namespace slim::jinja {

void fail(std::string message) { throw Error{ErrorKind::runtime, std::move(message)}; }

const Value* Dict::find(std::string_view key) const {
  for (const auto& kv : items)
    if (kv.first.is_string() && kv.first.str() == key) return &kv.second;
  return nullptr;
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& kv : items)
    if (equals(kv.first, key)) return &kv.second;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& kv : items) {
    if (equals(kv.first, key)) {
      kv.second = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value make_markup(std::string s) {
  Value v(std::move(s));
  v.markup = true;
  return v;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

uint32_t nesting_depth(const Value& v) {
  switch (v.kind()) {
    case Value::list: return v.as_list().depth;
    case Value::dict: return v.as_dict().depth;
    case Value::ns: return std::get<std::shared_ptr<Namespace>>(v.v)->attrs.depth;
    default: return 0;
  }
}

void note_nested(Dict& d, const Value& v) {
  d.depth = std::max(d.depth, nesting_depth(v) + 1);
  if (d.depth > kMaxValueDepth) fail("values nest too deeply");
}

Value make_list(std::vector<Value> items, SeqKind kind) {
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  l->kind = kind;
  for (const auto& item : l->items) l->depth = std::max(l->depth, nesting_depth(item) + 1);
  if (l->depth > kMaxValueDepth) fail("values nest too deeply");
  return Value(std::shared_ptr<const List>(std::move(l)));
}

Value make_dict(Dict d) {
  d.depth = 1;
  for (const auto& kv : d.items) {
    note_nested(d, kv.first);
    note_nested(d, kv.second);
  }
  return Value(std::shared_ptr<const Dict>(std::make_shared<Dict>(std::move(d))));
}

Value make_undefined(std::string hint) { return Value(Undefined{std::make_shared<const std::string>(std::move(hint))}); }

Value undefined_name(std::string_view name) { return make_undefined(py_repr_string(name) + " is undefined"); }

namespace {

// jinja2's object_type_repr: "dict object", "None", "jinja2.utils.Namespace object".
std::string object_type_repr(const Value& obj) {
  switch (obj.kind()) {
    case Value::none: return "None";
    case Value::ns: return "jinja2.utils.Namespace object";
    case Value::loop: return "jinja2.runtime.LoopContext object";
    case Value::undefined: return "jinja2.runtime.Undefined object";
    case Value::callable:
      if (std::get<std::shared_ptr<const Callable>>(obj.v)->kind == Callable::Kind::macro)
        return "jinja2.runtime.Macro object";
      [[fallthrough]];
    default: return std::string(type_name(obj)) + " object";
  }
}

}  // namespace

Value undefined_attr(const Value& obj, std::string_view attr) {
  return make_undefined(py_repr_string(object_type_repr(obj)) + " has no attribute " + py_repr_string(attr));
}

Value undefined_item(const Value& obj, const Value& key) {
  if (key.is_string()) return undefined_attr(obj, key.str());
  return make_undefined(object_type_repr(obj) + " has no element " + repr(key));
}

void fail_undefined(const Value& v) {
  const auto& hint = v.as_undefined().hint;
  fail(hint ? *hint : std::string("undefined value"));
}

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Value::undefined: return "Undefined";
    case Value::none: return "NoneType";
    case Value::boolean: return "bool";
    case Value::integer: return "int";
    case Value::floating: return "float";
    case Value::string: return v.markup ? "Markup" : "str";
    case Value::list:
      switch (v.as_list().kind) {
        case SeqKind::list: return "list";
        case SeqKind::tuple: return "tuple";
        case SeqKind::dict_keys: return "dict_keys";
        case SeqKind::dict_values: return "dict_values";
        case SeqKind::dict_items: return "dict_items";
        case SeqKind::range: return "range";
      }
      return "list";
    case Value::dict: return "dict";
    case Value::ns: return "Namespace";
    case Value::callable:
      switch (std::get<std::shared_ptr<const Callable>>(v.v)->kind) {
        case Callable::Kind::macro: return "Macro";
        case Callable::Kind::method: return "builtin_function_or_method";
        case Callable::Kind::loop_recurse: return "method";
        case Callable::Kind::builtin: return "function";
      }
      return "function";
    case Value::iterator: return std::get<std::shared_ptr<Iterator>>(v.v)->type_name.c_str();
    case Value::loop: return "LoopContext";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::undefined:
    case Value::none: return false;
    case Value::boolean: return std::get<bool>(v.v);
    case Value::integer: return std::get<int64_t>(v.v) != 0;
    case Value::floating: return std::get<double>(v.v) != 0.0;
    case Value::string: return !v.str().empty();
    case Value::list: return !v.as_list().items.empty();
    case Value::dict: return !v.as_dict().items.empty();
    default: return true;
  }
}

void append_str(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Value::undefined: return;
    case Value::string: out += v.str(); return;
    case Value::none: out += "None"; return;
    case Value::boolean: out += std::get<bool>(v.v) ? "True" : "False"; return;
    case Value::integer: out += std::to_string(std::get<int64_t>(v.v)); return;
    case Value::floating: out += py_float_repr(std::get<double>(v.v)); return;
    default: append_repr(out, v);
  }
}

std::string to_str(const Value& v) {
  if (v.is_string()) return v.str();
  std::string s;
  append_str(s, v);
  return s;
}

namespace {

void append_items_repr(std::string& out, const std::vector<Value>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    append_repr(out, items[i]);
  }
}

void append_dict_repr(std::string& out, const Dict& d) {
  out += '{';
  for (size_t i = 0; i < d.items.size(); ++i) {
    if (i) out += ", ";
    append_repr(out, d.items[i].first);
    out += ": ";
    append_repr(out, d.items[i].second);
  }
  out += '}';
}

}  // namespace

void append_repr(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Value::undefined: out += "Undefined"; return;
    case Value::string:
      if (v.markup) out += "Markup(";
      out += py_repr_string(v.str());
      if (v.markup) out += ')';
      return;
    case Value::list: {
      const List& l = v.as_list();
      switch (l.kind) {
        case SeqKind::list:
          out += '[';
          append_items_repr(out, l.items);
          out += ']';
          return;
        case SeqKind::tuple:
          out += '(';
          append_items_repr(out, l.items);
          if (l.items.size() == 1) out += ',';
          out += ')';
          return;
        case SeqKind::range: {
          int64_t start = l.items.empty() ? 0 : l.items[0].as_int();
          int64_t step = l.items.size() > 1 ? l.items[1].as_int() - start : 1;
          int64_t stop = l.items.empty() ? 0 : l.items.back().as_int() + step;
          out += "range(" + std::to_string(start) + ", " + std::to_string(stop);
          if (step != 1) out += ", " + std::to_string(step);
          out += ')';
          return;
        }
        default:
          out += type_name(v);
          out += "([";
          append_items_repr(out, l.items);
          out += "])";
          return;
      }
    }
    case Value::dict: append_dict_repr(out, v.as_dict()); return;
    case Value::ns: {
      // Namespaces are mutable and may contain themselves; like Python's
      // dict repr, a namespace already being printed shows as {...}.
      thread_local std::vector<const Namespace*> printing;
      const Namespace* ns = std::get<std::shared_ptr<Namespace>>(v.v).get();
      out += "<Namespace ";
      if (std::find(printing.begin(), printing.end(), ns) != printing.end()) {
        out += "{...}";
      } else {
        printing.push_back(ns);
        struct Pop {
          std::vector<const Namespace*>& stack;
          ~Pop() { stack.pop_back(); }
        } pop{printing};
        append_dict_repr(out, ns->attrs);
      }
      out += '>';
      return;
    }
    case Value::callable: {
      const auto& c = *std::get<std::shared_ptr<const Callable>>(v.v);
      if (c.kind == Callable::Kind::macro)
        out += "<Macro " + py_repr_string(c.name) + ">";
      else if (c.kind == Callable::Kind::method)
        out += "<built-in method " + c.name + " of " + type_name(c.self) + " object>";
      else
        out += "<function " + c.name + ">";
      return;
    }
    case Value::iterator: out += std::string("<") + type_name(v) + " object>"; return;
    case Value::loop: {
      const auto& l = *std::get<std::shared_ptr<LoopState>>(v.v);
      out += "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items->items.size()) + ">";
      return;
    }
    default: append_str(out, v);
  }
}

std::string repr(const Value& v) {
  std::string s;
  append_repr(s, v);
  return s;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::undefined:
    case Value::none: return true;
    case Value::string: return a.str() == b.str();
    case Value::list: {
      const List &x = a.as_list(), &y = b.as_list();
      if (x.kind != y.kind || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i])) return false;
      return true;
    }
    case Value::dict: {
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& kv : x.items) {
        const Value* other = y.find(kv.first);
        if (!other || !equals(kv.second, *other)) return false;
      }
      return true;
    }
    case Value::ns: return std::get<std::shared_ptr<Namespace>>(a.v) == std::get<std::shared_ptr<Namespace>>(b.v);
    case Value::callable: {
      const auto &x = std::get<std::shared_ptr<const Callable>>(a.v), &y = std::get<std::shared_ptr<const Callable>>(b.v);
      if (x == y) return true;
      return x->kind == Callable::Kind::method && y->kind == Callable::Kind::method && x->name == y->name &&
             equals(x->self, y->self);
    }
    case Value::iterator: return std::get<std::shared_ptr<Iterator>>(a.v) == std::get<std::shared_ptr<Iterator>>(b.v);
    case Value::loop: return std::get<std::shared_ptr<LoopState>>(a.v) == std::get<std::shared_ptr<LoopState>>(b.v);
    default: return false;
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int();
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return std::string_view(a.str()) < std::string_view(b.str());
  if (a.kind() == Value::list && b.kind() == Value::list && a.as_list().kind == b.as_list().kind &&
      (a.as_list().kind == SeqKind::list || a.as_list().kind == SeqKind::tuple)) {
    const auto &x = a.as_list().items, &y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  fail(std::string("'<' not supported between instances of '") + type_name(a) + "' and '" + type_name(b) + "'");
}

bool is_hashable(const Value& v) {
  switch (v.kind()) {
    case Value::dict: return false;
    case Value::list:
      if (v.as_list().kind != SeqKind::tuple) return false;
      for (const auto& x : v.as_list().items)
        if (!is_hashable(x)) return false;
      return true;
    default: return true;
  }
}

std::shared_ptr<const List> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::list: return v.list_ptr();
    case Value::dict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().items.size());
      for (const auto& kv : v.as_dict().items) keys.push_back(kv.first);
      return make_list(std::move(keys)).list_ptr();
    }
    case Value::string: {
      std::vector<Value> chars;
      for (auto& c : code_points(v.str())) chars.emplace_back(std::move(c));
      return make_list(std::move(chars)).list_ptr();
    }
    case Value::iterator: {
      auto& it = *std::get<std::shared_ptr<Iterator>>(v.v);
      if (!it.error.empty()) fail(it.error);
      std::vector<Value> rest(it.items.begin() + static_cast<std::ptrdiff_t>(it.pos), it.items.end());
      it.pos = it.items.size();
      return make_list(std::move(rest)).list_ptr();
    }
    case Value::undefined: return make_list({}).list_ptr();
    default: fail(std::string("'") + type_name(v) + "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::string: return static_cast<int64_t>(code_point_count(v.str()));
    case Value::list: return static_cast<int64_t>(v.as_list().items.size());
    case Value::dict: return static_cast<int64_t>(v.as_dict().items.size());
    case Value::undefined: return 0;
    default: fail(std::string("object of type '") + type_name(v) + "' has no len()");
  }
}

Value from_json(const nlohmann::ordered_json& j, uint32_t depth) {
  if (depth >= kMaxValueDepth) fail("the context nests too deeply");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value(nullptr);
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get_ref<const std::string&>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x, depth + 1));
      return make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(Value(it.key()), from_json(it.value(), depth + 1));
      return make_dict(std::move(d));
    }
    default: return Value(nullptr);  // binary: not produced by JSON text
  }
}

namespace {

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t start = i;
      uint32_t cp = next_code_point(s, i);
      if (!ensure_ascii) {
        out.append(s.substr(start, i - start));
      } else if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
        out += buf;
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
        out += buf;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_json_float(std::string& out, double d) {
  if (std::isnan(d))
    out += "NaN";
  else if (std::isinf(d))
    out += d < 0 ? "-Infinity" : "Infinity";
  else
    out += py_float_repr(d);
}

void newline_indent(std::string& out, const JsonOptions& opt, int level) {
  out += '\n';
  for (int i = 0; i < level; ++i) out += opt.indent;
}

}  // namespace

void append_json(std::string& out, const Value& v, const JsonOptions& opt, int level) {
  switch (v.kind()) {
    case Value::none: out += "null"; return;
    case Value::boolean: out += std::get<bool>(v.v) ? "true" : "false"; return;
    case Value::integer: out += std::to_string(std::get<int64_t>(v.v)); return;
    case Value::floating: append_json_float(out, std::get<double>(v.v)); return;
    case Value::string: append_json_string(out, v.str(), opt.ensure_ascii); return;
    case Value::list: {
      const List& l = v.as_list();
      if (l.kind != SeqKind::list && l.kind != SeqKind::tuple) break;
      if (l.items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      if (opt.has_indent) newline_indent(out, opt, level + 1);
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) {
          out += opt.item_sep;
          if (opt.has_indent) newline_indent(out, opt, level + 1);
        }
        append_json(out, l.items[i], opt, level + 1);
      }
      if (opt.has_indent) newline_indent(out, opt, level);
      out += ']';
      return;
    }
    case Value::dict: {
      const Dict& d = v.as_dict();
      if (d.items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      items.reserve(d.items.size());
      for (const auto& kv : d.items) items.push_back(&kv);
      if (opt.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* x, auto* y) { return less(x->first, y->first); });
      out += '{';
      if (opt.has_indent) newline_indent(out, opt, level + 1);
      bool first = true;
      for (const auto* kv : items) {
        if (!first) {
          out += opt.item_sep;
          if (opt.has_indent) newline_indent(out, opt, level + 1);
        }
        first = false;
        const Value& k = kv->first;
        switch (k.kind()) {
          case Value::string: append_json_string(out, k.str(), opt.ensure_ascii); break;
          case Value::floating: {
            std::string f;
            append_json_float(f, std::get<double>(k.v));
            append_json_string(out, f, false);
            break;
          }
          case Value::boolean: out += std::get<bool>(k.v) ? "\"true\"" : "\"false\""; break;
          case Value::integer:
            out += '"';
            out += std::to_string(std::get<int64_t>(k.v));
            out += '"';
            break;
          case Value::none: out += "\"null\""; break;
          default: fail(std::string("keys must be str, int, float, bool or None, not ") + type_name(k));
        }
        out += opt.key_sep;
        append_json(out, kv->second, opt, level + 1);
      }
      if (opt.has_indent) newline_indent(out, opt, level);
      out += '}';
      return;
    }
    default: break;
  }
  fail(std::string("Object of type ") + type_name(v) + " is not JSON serializable");
}

}  // namespace slim::jinja
