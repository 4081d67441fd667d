// Syntax tree of a parsed template: expressions and statements as plain
// structs, built by the parser and walked by the interpreter. Filters and
// tests are resolved to functions at parse time (jinja2 also rejects an
// unknown filter when the template is compiled).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace slim::jinja {

class Interp;

// Evaluated call arguments.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using FilterFn = Value (*)(Interp&, const Value& subject, Args& args);
using TestFn = bool (*)(Interp&, const Value& subject, Args& args);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

enum class BinOp : uint8_t { add, sub, mul, div, floordiv, mod, pow };
enum class CmpOp : uint8_t { eq, ne, lt, le, gt, ge, in, not_in };

struct Expr {
  Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;
  ~Expr();  // iterative, so that long operator chains cannot exhaust the stack

  enum class Kind : uint8_t {
    literal,   // value
    name,      // name
    list,      // children
    tuple,     // children
    dict,      // children: key, value, key, value...
    getattr,   // children[0].name
    getitem,   // children[0][children[1]]
    slice,     // children[0][children[1]:children[2]:children[3]] (null parts allowed)
    call,      // children[0](args)
    filter,    // children[0] | name(args); children empty for filter blocks
    test,      // children[0] is name(args)
    neg,
    pos,
    not_,
    binary,    // children[0] op children[1]
    compare,   // children[0] cmp_ops[0] children[1] cmp_ops[1] children[2]...
    and_,
    or_,
    concat,    // children joined with ~
    cond,      // children[1] if children[0] else children[2] (may be null)
  };
  Kind kind = Kind::literal;
  int height = 1;  // of the subtree, bounded by the parser
  size_t offset = 0;
  Value value;
  std::string name;
  BinOp op = BinOp::add;
  std::vector<CmpOp> cmp_ops;
  std::vector<ExprPtr> children;
  CallArgs args;
  FilterFn filter = nullptr;
  TestFn test = nullptr;
};

// Assignment target: a name, `ns.attr`, or a tuple of targets.
struct Target {
  std::string name;
  std::string attr;  // non-empty for namespace attribute assignment
  bool is_tuple = false;
  std::vector<Target> items;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  // jinja2 only accepts extra arguments when the body mentions these names.
  bool uses_caller = false;
  bool uses_varargs = false;
  bool uses_kwargs = false;
};

struct ForNode {
  Target target;
  ExprPtr iter;
  ExprPtr condition;  // inline `for x in y if cond`
  bool recursive = false;
  Body body;
  Body else_body;
};

struct Node {
  enum class Kind : uint8_t {
    text,          // text
    output,        // {{ expr }}
    if_,           // branches (null condition = else)
    for_,          // for_loop
    set,           // target = expr
    set_block,     // target = body | filters
    macro,         // macro
    call_block,    // expr (a call) with macro as caller
    filter_block,  // body | filters
    with,          // assignments, body
    scope,         // body in its own scope ({% generation %})
    break_,
    continue_,
  };
  Kind kind = Kind::text;
  size_t offset = 0;
  std::string text;
  ExprPtr expr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Target target;
  std::vector<ExprPtr> filters;  // Kind::filter exprs with no subject
  Body body;
  std::unique_ptr<ForNode> for_loop;
  std::unique_ptr<MacroDef> macro;
  std::vector<std::pair<Target, ExprPtr>> assignments;
};

struct Program {
  std::string source;  // normalized, for error positions
  Body body;
};

}  // namespace slim::jinja
