// Interpreter: walks a parsed template and writes its output. Owns the
// variable scopes (jinja2's rules: for-loop iterations, macros and blocks
// get their own scope; `if` does not), control flow and macro calls.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/ast.h"
#include "chat/stack_guard.h"

namespace slim::jinja {

struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  Frame* parent = nullptr;

  const Value* find(std::string_view name) const {
    for (const auto& kv : vars)
      if (kv.first == name) return &kv.second;
    return nullptr;
  }
  void set(std::string_view name, Value v) {
    for (auto& kv : vars) {
      if (kv.first == name) {
        kv.second = std::move(v);
        return;
      }
    }
    vars.emplace_back(std::string(name), std::move(v));
  }
};

class Interp {
 public:
  // `context` must be a dict; its items become the top-level variables.
  Interp(const Program& program, const Value& context);
  ~Interp();
  Interp(const Interp&) = delete;
  Interp& operator=(const Interp&) = delete;
  std::string render();
  // namespace() objects can reference themselves; the interpreter breaks
  // such cycles when the render ends.
  void adopt(std::shared_ptr<Namespace> ns) { namespaces_.push_back(std::move(ns)); }

 private:
  enum class Flow { normal, break_, continue_ };

  Flow exec(const Body& body);
  Flow exec_node(const Node& n);
  void exec_for(const ForNode& f, const Value& iterable, size_t depth0);
  void assign(Frame& frame, const Target& t, const Value& v);
  std::string render_to_string(const Body& body, Flow* flow);
  Value apply_filter_chain(const std::vector<ExprPtr>& filters, Value subject);
  Value eval(const Expr& e);
  Value call(const Value& callee, Args& args);
  Value call_macro(const Callable& c, Args& args);
  Value call_loop(const Callable& c, Args& args);
  Value call_value_at(const Value& callee, Args& args, size_t offset);
  Value eval_call(const Expr& e);
  Value eval_inner(const Expr& e);
  void eval_args(const CallArgs& in, Args& out);
  Value lookup(std::string_view name) const;
  std::shared_ptr<Frame> snapshot();

  StackGuard stack_;
  const Program& program_;
  Frame root_;
  Frame* current_ = &root_;
  std::string* out_ = nullptr;
  int call_depth_ = 0;
  uint64_t iterations_ = 0;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
};

}  // namespace slim::jinja
