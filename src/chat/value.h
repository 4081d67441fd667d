// The dynamic values a template computes with, modelled on the Python
// objects jinja2 sees (None, bool, int, float, str, list, tuple, dict,
// generators, namespaces, macros), and the Python semantics templates can
// observe: str()/repr() printing, truthiness, ==, ordering, len, iteration
// and json.dumps. Internal to src/chat.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace slim::jinja {

// Internal failure; the public API turns it into a Status. `offset` is the
// source position, filled in by the innermost expression that sees it.
enum class ErrorKind : uint8_t { syntax, runtime, raised };
struct Error {
  ErrorKind kind = ErrorKind::runtime;
  std::string message;
  size_t offset = std::numeric_limits<size_t>::max();
};
[[noreturn]] void fail(std::string message);

struct List;
struct Dict;
struct Namespace;
struct Callable;
struct Iterator;
struct LoopState;

// Python flavours of a sequence: they differ in how they print and in
// whether json.dumps accepts them.
enum class SeqKind : uint8_t { list, tuple, dict_keys, dict_values, dict_items, range };

struct Undefined {
  std::shared_ptr<const std::string> hint;  // the UndefinedError message when misused
};

struct Value {
  // Order matches Kind.
  using Storage = std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string,
                               std::shared_ptr<const List>, std::shared_ptr<const Dict>,
                               std::shared_ptr<Namespace>, std::shared_ptr<const Callable>,
                               std::shared_ptr<Iterator>, std::shared_ptr<LoopState>>;
  enum Kind : uint8_t { undefined, none, boolean, integer, floating, string, list, dict, ns, callable, iterator, loop };

  Storage v;
  // A string that is markupsafe.Markup (from |safe or |escape): adding a
  // plain string to it HTML-escapes that string.
  bool markup = false;

  Value() = default;
  Value(std::nullptr_t) : v(nullptr) {}
  Value(bool b) : v(b) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T i) : v(static_cast<int64_t>(i)) {}
  Value(double d) : v(d) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(std::string_view s) : v(std::string(s)) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(std::shared_ptr<const List> l) : v(std::move(l)) {}
  Value(std::shared_ptr<const Dict> d) : v(std::move(d)) {}
  Value(std::shared_ptr<Namespace> n) : v(std::move(n)) {}
  Value(std::shared_ptr<const Callable> c) : v(std::move(c)) {}
  Value(std::shared_ptr<Iterator> it) : v(std::move(it)) {}
  Value(std::shared_ptr<LoopState> l) : v(std::move(l)) {}
  Value(Undefined u) : v(std::move(u)) {}

  Kind kind() const { return static_cast<Kind>(v.index()); }
  bool is_undefined() const { return kind() == undefined; }
  bool is_none() const { return kind() == none; }
  bool is_string() const { return kind() == string; }
  bool is_int() const { return kind() == integer || kind() == boolean; }  // Python: bool is an int
  bool is_number() const { return kind() == integer || kind() == floating || kind() == boolean; }
  const std::string& str() const { return std::get<std::string>(v); }
  int64_t as_int() const { return kind() == boolean ? std::get<bool>(v) : std::get<int64_t>(v); }
  double as_double() const { return kind() == floating ? std::get<double>(v) : static_cast<double>(as_int()); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v); }
  const std::shared_ptr<const List>& list_ptr() const { return std::get<std::shared_ptr<const List>>(v); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v); }
  const Undefined& as_undefined() const { return std::get<Undefined>(v); }
};

// Values nest at most this deep: they are printed, compared and destroyed
// recursively.
constexpr uint32_t kMaxValueDepth = 256;

struct List {
  std::vector<Value> items;
  SeqKind kind = SeqKind::list;
  uint32_t depth = 1;  // nesting of containers, set by make_list
};

// Insertion-ordered, like a Python dict. Lookup is linear: template dicts
// are small and most keys are short strings.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  uint32_t depth = 1;  // nesting of containers, set by make_dict and namespace updates
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);  // replaces in place when the key exists
};

struct Namespace {
  Dict attrs;
};

// A one-shot Python iterator (what select/map/... return): iteration
// consumes it, as in jinja2.
struct Iterator {
  std::vector<Value> items;
  size_t pos = 0;
  std::string type_name = "generator";
  std::string error;  // raised when consumed: generators fail lazily
};

struct MacroDef;
struct ForNode;
struct Frame;

struct Callable {
  enum class Kind : uint8_t { builtin, method, macro, loop_recurse };
  Kind kind = Kind::builtin;
  std::string name;
  Value self;                             // bound object of a method, loop of loop(...)
  const MacroDef* macro = nullptr;        // macro or {% call %} body
  std::shared_ptr<Frame> closure;         // variables a nested macro captured
};

// jinja2's LoopContext, shared by the iterations of one loop.
struct LoopState {
  std::shared_ptr<const List> items;  // after the inline `if` filter
  size_t index0 = 0;
  size_t depth0 = 0;
  const ForNode* node = nullptr;
  Frame* outer = nullptr;  // scope around the loop, for loop(...) recursion
  bool active = true;      // false once the loop has finished
  Value last_changed;
  bool changed_called = false;
};

uint32_t nesting_depth(const Value& v);  // 0 for scalars
// Records that `d` now holds `v`; fails when values nest too deep.
void note_nested(Dict& d, const Value& v);
Value make_markup(std::string s);
std::string html_escape(std::string_view s);  // markupsafe.escape
Value make_list(std::vector<Value> items, SeqKind kind = SeqKind::list);
Value make_dict(Dict d);
Value make_undefined(std::string hint);
// jinja2's messages: "'x' is undefined", "'dict object' has no attribute 'y'".
Value undefined_name(std::string_view name);
Value undefined_attr(const Value& obj, std::string_view attr);
Value undefined_item(const Value& obj, const Value& key);
[[noreturn]] void fail_undefined(const Value& v);

const char* type_name(const Value& v);
bool truthy(const Value& v);
void append_str(std::string& out, const Value& v);  // Python str()
std::string to_str(const Value& v);
void append_repr(std::string& out, const Value& v);  // Python repr()
std::string repr(const Value& v);
bool equals(const Value& a, const Value& b);
// a < b in Python; throws TypeError-like errors for unorderable types.
bool less(const Value& a, const Value& b);
bool is_hashable(const Value& v);
// The items a for loop sees; consumes iterators; fails if not iterable.
std::shared_ptr<const List> iterate(const Value& v);
int64_t length(const Value& v);  // len(); fails without __len__

Value from_json(const nlohmann::ordered_json& j, uint32_t depth = 0);

struct JsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};
// Python json.dumps(v, ...).
void append_json(std::string& out, const Value& v, const JsonOptions& opt, int level = 0);

}  // namespace slim::jinja
