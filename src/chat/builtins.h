// The built-in library a template can reach: filters, tests, global
// functions, attributes and methods of values (str, dict, list, loop).
// The set and behaviour follow jinja2 3.1's defaults in the immutable
// sandbox, plus the chat-template globals (raise_exception, strftime_now)
// and a Python-json `tojson`.
#pragma once

#include <optional>
#include <string_view>

#include "chat/ast.h"

namespace slim::jinja {

FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// Global functions (range, dict, namespace, raise_exception, strftime_now);
// undefined when `name` is not one.
Value find_global(std::string_view name);

// jinja2's environment.getattr / getitem in the immutable sandbox.
Value get_attr(const Value& obj, std::string_view name);
Value get_item(const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Calls `obj.name(args)` for a built-in method; nullopt when obj has no such method.
std::optional<Value> call_method(const Value& obj, std::string_view name, Args& args);
Value call_builtin(Interp& in, const Callable& fn, Args& args);

// Python operators.
Value binary_op(BinOp op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);  // `item in container`

// Binds call arguments to a Python-style signature and reports misuse.
class Params {
 public:
  Params(const char* function, Args& args, std::initializer_list<const char*> names, size_t required = 0);
  bool has(size_t i) const { return slots_[i] != nullptr; }
  const Value& get(size_t i) const;  // undefined when absent
  Value get_or(size_t i, Value fallback) const { return has(i) ? *slots_[i] : std::move(fallback); }

 private:
  std::vector<const Value*> slots_;
};

}  // namespace slim::jinja
