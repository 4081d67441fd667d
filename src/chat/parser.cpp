// Recursive-descent parser for jinja2 templates (see parser.h). The
// statement set is jinja2's core plus the loopcontrols extension
// (break/continue) and transformers' {% generation %} marker.
#include "chat/parser.h"

#include <algorithm>
#include <initializer_list>

#include "chat/builtins.h"
#include "chat/lexer.h"
#include "chat/py_string.h"
#include "chat/stack_guard.h"

namespace slim::jinja {
namespace {

// Nesting beyond these is rejected rather than risking the C++ stack.
constexpr int kMaxNesting = 200;       // statements and parenthesized expressions
constexpr int kMaxExprHeight = 1000;   // operator chains

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::text: return "template data";
    case TokenType::var_begin: return "begin of print statement";
    case TokenType::var_end: return "end of print statement";
    case TokenType::block_begin: return "begin of statement block";
    case TokenType::block_end: return "end of statement block";
    case TokenType::string: return "string " + py_repr_string(t.text);
    case TokenType::eof: return "end of template";
    default: return "'" + t.text + "'";
  }
}

class Parser {
 public:
  explicit Parser(std::string_view source) : tokens_(tokenize(source)) {}

  Body parse_template() {
    Body body = parse_body({}, nullptr);
    check_names(body, false);
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return tokens_[pos_]; }
  const Token& look(size_t k = 1) const { return tokens_[std::min(pos_ + k, tokens_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool at_op(std::string_view op) const { return cur().type == TokenType::op && cur().text == op; }
  bool at_name(std::string_view n) const { return cur().type == TokenType::name && cur().text == n; }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!at_name(n)) return false;
    advance();
    return true;
  }
  [[noreturn]] void error(std::string message, size_t offset) const {
    throw Error{ErrorKind::syntax, std::move(message), offset};
  }
  [[noreturn]] void unexpected(const std::string& expected) const {
    if (cur().type == TokenType::eof) error("unexpected end of template, expected " + expected, cur().offset);
    error("expected " + expected + ", got " + describe(cur()), cur().offset);
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected("'" + std::string(op) + "'");
  }
  std::string expect_name() {
    if (cur().type != TokenType::name) unexpected("a name");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::block_end) unexpected("end of statement block");
    advance();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p(p) {
      if (++p.depth_ > kMaxNesting || p.stack_.exhausted()) p.error("template nesting too deep", p.cur().offset);
    }
    ~DepthGuard() { --p.depth_; }
    Parser& p;
  };

  // Expression trees are evaluated and destroyed recursively, so their
  // height is bounded even where the parser itself loops (a + b + c...).
  void grow(Expr& parent, const Expr& child) {
    parent.height = std::max(parent.height, child.height + 1);
    if (parent.height > kMaxExprHeight) error("expression nesting too deep", parent.offset);
  }
  void attach(Expr& parent, ExprPtr child) {
    if (child) grow(parent, *child);
    parent.children.push_back(std::move(child));
  }

  ExprPtr make(Expr::Kind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag named in `end_tags`; leaves the tag name as
  // the current token and stores it in *found.
  Body parse_body(std::initializer_list<std::string_view> end_tags, std::string* found) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::eof) {
        if (end_tags.size() == 0) return body;
        std::string names;
        for (auto n : end_tags) names += (names.empty() ? "'" : " or '") + std::string(n) + "'";
        error("unexpected end of template; looking for the tags " + names + " of the " + open_blocks_.back() +
                  " block opened here",
              open_offsets_.back());
      }
      if (t.type == TokenType::text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::text;
        n->offset = t.offset;
        n->text = t.text;
        body.push_back(std::move(n));
        advance();
      } else if (t.type == TokenType::var_begin) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::output;
        n->offset = t.offset;
        advance();
        n->expr = parse_tuple(true, {}, false);
        if (cur().type != TokenType::var_end) unexpected("end of print statement");
        advance();
        body.push_back(std::move(n));
      } else if (t.type == TokenType::block_begin) {
        advance();
        if (cur().type == TokenType::name &&
            std::find(end_tags.begin(), end_tags.end(), cur().text) != end_tags.end()) {
          if (found) *found = cur().text;
          return body;
        }
        body.push_back(parse_statement(end_tags));
        expect_block_end();
      } else {
        unexpected("template data or a tag");
      }
    }
  }

  // After the opening tag's own tokens: `%}`, body, and the end tag name.
  Body parse_block_body(std::initializer_list<std::string_view> end_tags, std::string* found) {
    expect_block_end();
    Body body = parse_body(end_tags, found);
    advance();  // the end tag name
    return body;
  }

  NodePtr parse_statement(std::initializer_list<std::string_view> enclosing_end_tags) {
    DepthGuard guard(*this);
    if (cur().type != TokenType::name) unexpected("a statement name");
    const std::string tag = cur().text;
    size_t offset = cur().offset;
    auto node = std::make_unique<Node>();
    node->offset = offset;
    open_blocks_.push_back(tag);
    open_offsets_.push_back(offset);
    advance();
    if (tag == "if") {
      parse_if(*node);
    } else if (tag == "for") {
      parse_for(*node);
    } else if (tag == "set") {
      parse_set(*node);
    } else if (tag == "macro") {
      parse_macro(*node);
    } else if (tag == "call") {
      parse_call_block(*node);
    } else if (tag == "filter") {
      node->kind = Node::Kind::filter_block;
      parse_filter_chain(node->filters, true);
      node->body = parse_block_body({"endfilter"}, nullptr);
    } else if (tag == "with") {
      parse_with(*node);
    } else if (tag == "generation") {
      node->kind = Node::Kind::scope;
      node->body = parse_block_body({"endgeneration"}, nullptr);
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) error("'" + tag + "' outside of a loop", offset);
      node->kind = tag == "break" ? Node::Kind::break_ : Node::Kind::continue_;
    } else {
      std::string msg = "Encountered unknown tag '" + tag + "'.";
      if (enclosing_end_tags.size()) {
        std::string names;
        for (auto n : enclosing_end_tags) names += (names.empty() ? "'" : " or '") + std::string(n) + "'";
        msg += " Jinja was looking for the following tags: " + names + ". The innermost block that needs to be closed is '" +
               open_blocks_[open_blocks_.size() - 2] + "'.";
      }
      error(msg, offset);
    }
    open_blocks_.pop_back();
    open_offsets_.pop_back();
    return node;
  }

  void parse_if(Node& node) {
    node.kind = Node::Kind::if_;
    while (true) {
      ExprPtr cond = parse_tuple(false, {}, false);
      std::string found;
      Body body = parse_block_body({"elif", "else", "endif"}, &found);
      node.branches.emplace_back(std::move(cond), std::move(body));
      if (found == "elif") continue;
      if (found == "else") node.branches.emplace_back(nullptr, parse_block_body({"endif"}, nullptr));
      return;
    }
  }

  void parse_for(Node& node) {
    node.kind = Node::Kind::for_;
    auto f = std::make_unique<ForNode>();
    f->target = parse_assign_target(false, {"in"});
    if (!skip_name("in")) unexpected("'in'");
    f->iter = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) f->condition = parse_expression(true);
    f->recursive = skip_name("recursive");
    ++loop_depth_;
    std::string found;
    f->body = parse_block_body({"endfor", "else"}, &found);
    --loop_depth_;
    if (found == "else") f->else_body = parse_block_body({"endfor"}, nullptr);
    node.for_loop = std::move(f);
  }

  void parse_set(Node& node) {
    node.target = parse_assign_target(true, {});
    if (skip_op("=")) {
      node.kind = Node::Kind::set;
      node.expr = parse_tuple(true, {}, false);
      return;
    }
    node.kind = Node::Kind::set_block;
    if (node.target.is_tuple) error("a set block needs a single name", node.offset);
    parse_filter_chain(node.filters, false);
    node.body = parse_block_body({"endset"}, nullptr);
  }

  void parse_signature(MacroDef& m) {
    expect_op("(");
    while (!at_op(")")) {
      if (!m.params.empty()) expect_op(",");
      m.params.push_back(expect_name());
      if (skip_op("=")) {
        m.defaults.push_back(parse_expression(true));
      } else if (!m.defaults.empty()) {
        error("non-default argument follows default argument", cur().offset);
      }
    }
    expect_op(")");
  }

  void parse_macro(Node& node) {
    node.kind = Node::Kind::macro;
    node.macro = std::make_unique<MacroDef>();
    node.macro->name = expect_name();
    macros_.push_back(node.macro.get());
    parse_signature(*node.macro);
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    node.macro->body = parse_block_body({"endmacro"}, nullptr);
    loop_depth_ = saved_loops;
    macros_.pop_back();
  }

  void parse_call_block(Node& node) {
    node.kind = Node::Kind::call_block;
    node.macro = std::make_unique<MacroDef>();
    node.macro->name = "caller";
    macros_.push_back(node.macro.get());
    if (at_op("(")) parse_signature(*node.macro);
    macros_.pop_back();
    node.expr = parse_expression(true);
    if (node.expr->kind != Expr::Kind::call) error("expected call", node.offset);
    macros_.push_back(node.macro.get());
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    node.macro->body = parse_block_body({"endcall"}, nullptr);
    loop_depth_ = saved_loops;
    macros_.pop_back();
  }

  void parse_with(Node& node) {
    node.kind = Node::Kind::with;
    while (cur().type != TokenType::block_end) {
      if (!node.assignments.empty()) expect_op(",");
      Target t = parse_assign_target(false, {});
      expect_op("=");
      node.assignments.emplace_back(std::move(t), parse_expression(true));
    }
    node.body = parse_block_body({"endwith"}, nullptr);
  }

  Target parse_assign_target(bool with_namespace, std::initializer_list<std::string_view> extra_end) {
    if (with_namespace && cur().type == TokenType::name && look().type == TokenType::op && look().text == ".") {
      Target t;
      t.name = expect_name();
      advance();
      t.attr = expect_name();
      return t;
    }
    // A tuple of names, optionally parenthesized, like jinja2's simplified tuple.
    Target t;
    std::vector<Target> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end) || at_op("=")) break;
      items.push_back(parse_target_primary());
      if (at_op(","))
        is_tuple = true;
      else
        break;
    }
    if (items.empty()) unexpected("an assignment target");
    if (!is_tuple) return std::move(items[0]);
    t.is_tuple = true;
    t.items = std::move(items);
    return t;
  }

  Target parse_target_primary() {
    if (skip_op("(")) {
      Target inner = parse_assign_target(false, {});
      expect_op(")");
      return inner;
    }
    if (cur().type != TokenType::name) unexpected("a name to assign to");
    static const char* const kConstants[] = {"true", "false", "True", "False", "none", "None"};
    for (const char* c : kConstants)
      if (cur().text == c) error("cannot assign to constant '" + cur().text + "'", cur().offset);
    Target t;
    t.name = expect_name();
    return t;
  }

  // ---- expressions ----

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
    const Token& t = cur();
    if (t.type == TokenType::var_end || t.type == TokenType::block_end || t.type == TokenType::eof) return true;
    if (t.type == TokenType::op && t.text == ")") return true;
    if (t.type == TokenType::name)
      for (auto n : extra_end)
        if (t.text == n) return true;
    return false;
  }

  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end, bool explicit_parens) {
    size_t offset = cur().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (at_op(","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) unexpected("an expression");
    }
    auto e = make(Expr::Kind::tuple, offset);
    for (auto& item : items) attach(*e, std::move(item));
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr expr1 = parse_or();
    while (at_name("if")) {
      size_t offset = cur().offset;
      advance();
      ExprPtr cond = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      auto e = make(Expr::Kind::cond, offset);
      attach(*e, std::move(cond));
      attach(*e, std::move(expr1));
      attach(*e, std::move(expr3));
      expr1 = std::move(e);
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      auto e = make(Expr::Kind::or_, cur().offset);
      advance();
      attach(*e, std::move(left));
      attach(*e, parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      auto e = make(Expr::Kind::and_, cur().offset);
      advance();
      attach(*e, std::move(left));
      attach(*e, parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      DepthGuard guard(*this);
      auto e = make(Expr::Kind::not_, cur().offset);
      advance();
      attach(*e, parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    size_t offset = cur().offset;
    ExprPtr first = parse_math1();
    std::vector<CmpOp> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      CmpOp op;
      if (cur().type == TokenType::op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                          cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        const std::string& t = cur().text;
        op = t == "==" ? CmpOp::eq : t == "!=" ? CmpOp::ne : t == "<" ? CmpOp::lt : t == "<=" ? CmpOp::le
             : t == ">" ? CmpOp::gt : CmpOp::ge;
        advance();
      } else if (at_name("in")) {
        op = CmpOp::in;
        advance();
      } else if (at_name("not") && look().type == TokenType::name && look().text == "in") {
        op = CmpOp::not_in;
        advance();
        advance();
      } else {
        break;
      }
      ops.push_back(op);
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = make(Expr::Kind::compare, offset);
    attach(*e, std::move(first));
    for (auto& o : operands) attach(*e, std::move(o));
    e->cmp_ops = std::move(ops);
    return e;
  }

  ExprPtr binary(BinOp op, size_t offset, ExprPtr left, ExprPtr right) {
    auto e = make(Expr::Kind::binary, offset);
    e->op = op;
    attach(*e, std::move(left));
    attach(*e, std::move(right));
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_op("+") || at_op("-")) {
      BinOp op = at_op("+") ? BinOp::add : BinOp::sub;
      size_t offset = cur().offset;
      advance();
      left = binary(op, offset, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    size_t offset = cur().offset;
    ExprPtr first = parse_math2();
    if (!at_op("~")) return first;
    auto e = make(Expr::Kind::concat, offset);
    attach(*e, std::move(first));
    while (skip_op("~")) attach(*e, parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const std::string& t = cur().text;
      BinOp op = t == "*" ? BinOp::mul : t == "/" ? BinOp::div : t == "//" ? BinOp::floordiv : BinOp::mod;
      size_t offset = cur().offset;
      advance();
      left = binary(op, offset, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (at_op("**")) {
      size_t offset = cur().offset;
      advance();
      left = binary(BinOp::pow, offset, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (at_op("-") || at_op("+")) {
      node = make(at_op("-") ? Expr::Kind::neg : Expr::Kind::pos, cur().offset);
      advance();
      attach(*node, parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    size_t offset = t.offset;
    switch (t.type) {
      case TokenType::name: {
        auto e = make(Expr::Kind::literal, offset);
        if (t.text == "true" || t.text == "True") {
          e->value = Value(true);
        } else if (t.text == "false" || t.text == "False") {
          e->value = Value(false);
        } else if (t.text == "none" || t.text == "None") {
          e->value = Value(nullptr);
        } else {
          e->kind = Expr::Kind::name;
          e->name = t.text;
          note_name(t.text);
        }
        advance();
        return e;
      }
      case TokenType::string: {
        std::string s = t.text;
        advance();
        while (cur().type == TokenType::string) {  // adjacent literals concatenate
          s += cur().text;
          advance();
        }
        auto e = make(Expr::Kind::literal, offset);
        e->value = Value(std::move(s));
        return e;
      }
      case TokenType::integer: {
        auto e = make(Expr::Kind::literal, offset);
        e->value = Value(t.int_value);
        advance();
        return e;
      }
      case TokenType::floating: {
        auto e = make(Expr::Kind::literal, offset);
        e->value = Value(t.float_value);
        advance();
        return e;
      }
      case TokenType::op:
        if (t.text == "(") {
          advance();
          ExprPtr e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default: break;
    }
    if (t.type == TokenType::eof) error("unexpected end of template", t.offset);
    error("unexpected " + describe(t), t.offset);
  }

  ExprPtr parse_list() {
    auto e = make(Expr::Kind::list, cur().offset);
    expect_op("[");
    while (!at_op("]")) {
      if (!e->children.empty()) expect_op(",");
      if (at_op("]")) break;
      attach(*e, parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    auto e = make(Expr::Kind::dict, cur().offset);
    expect_op("{");
    while (!at_op("}")) {
      if (!e->children.empty()) expect_op(",");
      if (at_op("}")) break;
      attach(*e, parse_expression(true));
      expect_op(":");
      attach(*e, parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (at_op(".") || at_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (at_op("|")) {
        node = parse_filter(std::move(node));
      } else if (at_name("is")) {
        node = parse_test(std::move(node));
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    size_t offset = cur().offset;
    if (skip_op(".")) {
      if (cur().type == TokenType::name) {
        auto e = make(Expr::Kind::getattr, offset);
        e->name = cur().text;
        advance();
        attach(*e, std::move(node));
        return e;
      }
      if (cur().type != TokenType::integer) unexpected("name or number");
      auto e = make(Expr::Kind::getitem, offset);
      auto key = make(Expr::Kind::literal, cur().offset);
      key->value = Value(cur().int_value);
      advance();
      attach(*e, std::move(node));
      attach(*e, std::move(key));
      return e;
    }
    expect_op("[");
    std::vector<ExprPtr> args;
    while (!at_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.empty()) error("expected a subscript", offset);
    if (args.size() == 1 && args[0]->kind == Expr::Kind::slice) {
      grow(*args[0], *node);
      args[0]->children.insert(args[0]->children.begin(), std::move(node));
      args[0]->offset = offset;
      return std::move(args[0]);
    }
    auto e = make(Expr::Kind::getitem, offset);
    attach(*e, std::move(node));
    if (args.size() == 1) {
      attach(*e, std::move(args[0]));
    } else {
      auto tuple = make(Expr::Kind::tuple, offset);
      for (auto& a : args) attach(*tuple, std::move(a));
      attach(*e, std::move(tuple));
    }
    return e;
  }

  // A subscript: an expression or a slice `a:b:c` (returned as a slice
  // node whose subject is filled in by the caller).
  ExprPtr parse_subscribed() {
    size_t offset = cur().offset;
    ExprPtr start;
    if (!at_op(":")) {
      start = parse_expression(true);
      if (!at_op(":")) return start;
    }
    advance();  // ':'
    auto e = make(Expr::Kind::slice, offset);
    ExprPtr stop, step;
    if (!at_op(":") && !at_op("]") && !at_op(",")) stop = parse_expression(true);
    if (skip_op(":")) {
      if (!at_op("]") && !at_op(",")) step = parse_expression(true);
    }
    attach(*e, std::move(start));
    attach(*e, std::move(stop));
    attach(*e, std::move(step));
    return e;
  }

  void parse_call_args(CallArgs& args, Expr& owner) {
    size_t offset = cur().offset;
    expect_op("(");
    bool need_comma = false;
    while (!at_op(")")) {
      if (need_comma) {
        expect_op(",");
        if (at_op(")")) break;
      }
      if (at_op("*")) {
        if (args.star_args || args.star_kwargs) error("invalid syntax for function call expression", offset);
        advance();
        args.star_args = parse_expression(true);
        grow(owner, *args.star_args);
      } else if (at_op("**")) {
        if (args.star_kwargs) error("invalid syntax for function call expression", offset);
        advance();
        args.star_kwargs = parse_expression(true);
        grow(owner, *args.star_kwargs);
      } else if (cur().type == TokenType::name && look().type == TokenType::op && look().text == "=") {
        if (args.star_kwargs) error("invalid syntax for function call expression", offset);
        std::string key = cur().text;
        advance();
        advance();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
        grow(owner, *args.keyword.back().second);
      } else {
        if (args.star_args || args.star_kwargs || !args.keyword.empty())
          error("invalid syntax for function call expression", offset);
        args.positional.push_back(parse_expression(true));
        grow(owner, *args.positional.back());
      }
      need_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(Expr::Kind::call, cur().offset);
    parse_call_args(e->args, *e);
    attach(*e, std::move(node));
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  ExprPtr parse_filter(ExprPtr node) {
    while (skip_op("|")) {
      size_t offset = cur().offset;
      auto e = make(Expr::Kind::filter, offset);
      e->name = parse_dotted_name();
      e->filter = find_filter(e->name);  // unknown ones are judged by check_names
      if (at_op("(")) parse_call_args(e->args, *e);
      if (node) attach(*e, std::move(node));
      node = std::move(e);
    }
    return node;
  }

  // `{% filter a | b %}` and `{% set x | a %}`: a chain with no subject.
  void parse_filter_chain(std::vector<ExprPtr>& out, bool first_inline) {
    bool first = first_inline;
    while (first || at_op("|")) {
      if (!first) advance();
      first = false;
      size_t offset = cur().offset;
      auto e = make(Expr::Kind::filter, offset);
      e->name = parse_dotted_name();
      e->filter = find_filter(e->name);
      if (at_op("(")) parse_call_args(e->args, *e);
      out.push_back(std::move(e));
    }
  }

  ExprPtr parse_test(ExprPtr node) {
    size_t offset = cur().offset;
    advance();  // 'is'
    bool negated = skip_name("not");
    auto e = make(Expr::Kind::test, cur().offset);
    e->name = parse_dotted_name();
    e->test = find_test(e->name);
    const Token& t = cur();
    if (at_op("(")) {
      parse_call_args(e->args, *e);
    } else if ((t.type == TokenType::name || t.type == TokenType::string || t.type == TokenType::integer ||
                t.type == TokenType::floating || at_op("[") || at_op("{")) &&
               !at_name("else") && !at_name("or") && !at_name("and")) {
      if (at_name("is")) error("You cannot chain multiple tests with is", t.offset);
      e->args.positional.push_back(parse_postfix(parse_primary()));
      grow(*e, *e->args.positional.back());
    }
    attach(*e, std::move(node));
    if (!negated) return e;
    auto n = make(Expr::Kind::not_, offset);
    attach(*n, std::move(e));
    return n;
  }

  // jinja2 rejects an unknown filter or test when compiling, except in
  // "soft" places (an if statement's conditions and direct body, and
  // conditional expressions) where it fails only if executed. Scopes of
  // their own (loops, macros, blocks) are strict again.
  void check_names(const Body& body, bool soft) {
    for (const auto& n : body) {
      DepthGuard guard(*this);
      switch (n->kind) {
        case Node::Kind::output:
        case Node::Kind::set: check_expr(n->expr.get(), soft); break;
        case Node::Kind::if_:
          for (const auto& [cond, branch] : n->branches) {
            check_expr(cond.get(), true);
            check_names(branch, true);
          }
          break;
        case Node::Kind::for_:
          check_expr(n->for_loop->iter.get(), soft);
          check_expr(n->for_loop->condition.get(), false);
          check_names(n->for_loop->body, false);
          check_names(n->for_loop->else_body, false);
          break;
        case Node::Kind::call_block:
          check_expr(n->expr.get(), soft);
          [[fallthrough]];
        case Node::Kind::macro:
          for (const auto& d : n->macro->defaults) check_expr(d.get(), false);
          check_names(n->macro->body, false);
          break;
        case Node::Kind::set_block:
        case Node::Kind::filter_block:
          for (const auto& f : n->filters) check_expr(f.get(), false);
          check_names(n->body, false);
          break;
        case Node::Kind::with:
          for (const auto& a : n->assignments) check_expr(a.second.get(), soft);
          check_names(n->body, false);
          break;
        case Node::Kind::scope: check_names(n->body, false); break;
        default: break;
      }
    }
  }

  void check_expr(const Expr* e, bool soft) {
    if (!e) return;
    DepthGuard guard(*this);
    if (e->kind == Expr::Kind::cond) soft = true;
    if (!soft && e->kind == Expr::Kind::filter && !e->filter) error("No filter named '" + e->name + "'.", e->offset);
    if (!soft && e->kind == Expr::Kind::test && !e->test) error("No test named '" + e->name + "'.", e->offset);
    for (const auto& c : e->children) check_expr(c.get(), soft);
    for (const auto& a : e->args.positional) check_expr(a.get(), soft);
    for (const auto& kw : e->args.keyword) check_expr(kw.second.get(), soft);
    check_expr(e->args.star_args.get(), soft);
    check_expr(e->args.star_kwargs.get(), soft);
  }

  void note_name(const std::string& name) {
    if (macros_.empty()) return;
    for (MacroDef* m : macros_) {
      if (name == "caller") m->uses_caller = true;
      if (name == "varargs") m->uses_varargs = true;
      if (name == "kwargs") m->uses_kwargs = true;
    }
  }

  StackGuard stack_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<MacroDef*> macros_;
  std::vector<std::string> open_blocks_{"template"};
  std::vector<size_t> open_offsets_{0};
};

}  // namespace

Expr::~Expr() {
  std::vector<ExprPtr> pending;
  auto take = [&pending](Expr& e) {
    for (auto& c : e.children) pending.push_back(std::move(c));
    for (auto& a : e.args.positional) pending.push_back(std::move(a));
    for (auto& kw : e.args.keyword) pending.push_back(std::move(kw.second));
    pending.push_back(std::move(e.args.star_args));
    pending.push_back(std::move(e.args.star_kwargs));
  };
  take(*this);
  while (!pending.empty()) {
    ExprPtr e = std::move(pending.back());
    pending.pop_back();
    if (e) take(*e);  // e is then destroyed without children
  }
}

std::unique_ptr<Program> parse_program(std::string_view source) {
  auto program = std::make_unique<Program>();
  program->source = std::string(source);
  program->body = Parser(program->source).parse_template();
  return program;
}

}  // namespace slim::jinja
