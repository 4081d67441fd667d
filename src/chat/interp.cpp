// Template interpreter (see interp.h). Scoping follows jinja2: each for-loop
// iteration, macro call, {% set %}/{% filter %} block body and {% with %}
// gets a fresh scope whose lookups fall through to the enclosing one; `if`
// bodies share their parent's scope; a macro sees its arguments, what it
// captured where it was defined, and the template's top level.
#include "chat/interp.h"

#include <algorithm>
#include <limits>

#include "chat/builtins.h"

namespace slim::jinja {
namespace {

constexpr int kMaxCallDepth = 200;                 // about where Python's recursion limit stops jinja2
constexpr uint64_t kMaxIterations = 10'000'000;    // guards servers against runaway templates
constexpr size_t kMaxOutput = size_t{256} << 20;   // bytes

constexpr size_t kNoOffset = std::numeric_limits<size_t>::max();

// Restore the current scope, call depth and output buffer when a block
// ends, also when an error unwinds through it.
struct CurrentGuard {
  CurrentGuard(Frame*& current, Frame* next) : current(current), saved(current) { current = next; }
  ~CurrentGuard() { current = saved; }
  Frame*& current;
  Frame* saved;
};

// Enters `inner` as a child scope of the current one.
struct ScopeGuard : CurrentGuard {
  ScopeGuard(Frame*& current, Frame& inner) : CurrentGuard(current, (inner.parent = current, &inner)) {}
};

struct DepthGuard {
  explicit DepthGuard(int& depth) : depth(depth) { ++depth; }
  ~DepthGuard() { --depth; }
  int& depth;
};

struct OutputGuard {
  OutputGuard(std::string*& out, std::string& buffer) : out(out), saved(out) { out = &buffer; }
  ~OutputGuard() { out = saved; }
  std::string*& out;
  std::string* saved;
};

}  // namespace

Interp::Interp(const Program& program, const Value& context) : program_(program) {
  if (context.kind() != Value::dict) return;
  for (const auto& kv : context.as_dict().items)
    if (kv.first.is_string()) root_.set(kv.first.str(), kv.second);
}

Interp::~Interp() {
  for (auto& ns : namespaces_) ns->attrs.items.clear();
}

std::string Interp::render() {
  std::string out;
  out_ = &out;
  exec(program_.body);
  out_ = nullptr;
  return out;
}

Interp::Flow Interp::exec(const Body& body) {
  for (const auto& node : body) {
    Flow f = exec_node(*node);
    if (f != Flow::normal) return f;
  }
  return Flow::normal;
}

Interp::Flow Interp::exec_node(const Node& n) {
  try {
    if (stack_.exhausted()) fail("template nesting exceeds the available stack");
    switch (n.kind) {
      case Node::Kind::text: out_->append(n.text); break;
      case Node::Kind::output: append_str(*out_, eval(*n.expr)); break;
      case Node::Kind::if_:
        for (const auto& [cond, body] : n.branches)
          if (!cond || truthy(eval(*cond))) return exec(body);
        break;
      case Node::Kind::for_: {
        Value iterable = eval(*n.for_loop->iter);
        exec_for(*n.for_loop, iterable, 0);
        break;
      }
      case Node::Kind::set: {
        Value v = eval(*n.expr);
        assign(*current_, n.target, v);
        break;
      }
      case Node::Kind::set_block: {
        Flow flow;
        std::string text = render_to_string(n.body, &flow);
        if (flow != Flow::normal) return flow;
        assign(*current_, n.target, apply_filter_chain(n.filters, Value(std::move(text))));
        break;
      }
      case Node::Kind::macro: {
        auto c = std::make_shared<Callable>();
        c->kind = Callable::Kind::macro;
        c->name = n.macro->name;
        c->macro = n.macro.get();
        c->closure = snapshot();
        current_->set(n.macro->name, Value(std::shared_ptr<const Callable>(std::move(c))));
        break;
      }
      case Node::Kind::call_block: {
        auto caller = std::make_shared<Callable>();
        caller->kind = Callable::Kind::macro;
        caller->name = "caller";
        caller->macro = n.macro.get();
        caller->closure = snapshot();
        const Expr& call = *n.expr;
        Value callee = eval(*call.children[0]);
        Args args;
        eval_args(call.args, args);
        args.keyword.emplace_back("caller", Value(std::shared_ptr<const Callable>(std::move(caller))));
        append_str(*out_, call_value_at(callee, args, call.offset));
        break;
      }
      case Node::Kind::filter_block: {
        Flow flow;
        std::string text = render_to_string(n.body, &flow);
        if (flow != Flow::normal) return flow;
        append_str(*out_, apply_filter_chain(n.filters, Value(std::move(text))));
        break;
      }
      case Node::Kind::with: {
        std::vector<Value> values;
        for (const auto& a : n.assignments) values.push_back(eval(*a.second));
        Frame frame;
        ScopeGuard scope(current_, frame);
        for (size_t i = 0; i < values.size(); ++i) assign(frame, n.assignments[i].first, values[i]);
        return exec(n.body);
      }
      case Node::Kind::scope: {
        Frame frame;
        ScopeGuard scope(current_, frame);
        return exec(n.body);
      }
      case Node::Kind::break_: return Flow::break_;
      case Node::Kind::continue_: return Flow::continue_;
    }
  } catch (Error& e) {
    if (e.offset == kNoOffset) e.offset = n.offset;
    throw;
  }
  if (out_->size() > kMaxOutput) fail("template output exceeds the size limit");
  return Flow::normal;
}

void Interp::exec_for(const ForNode& f, const Value& iterable, size_t depth0) {
  std::shared_ptr<const List> seq = iterate(iterable);
  if (f.condition) {
    std::vector<Value> kept;
    Frame probe;
    ScopeGuard scope(current_, probe);
    for (const Value& item : seq->items) {
      probe.vars.clear();
      assign(probe, f.target, item);
      if (truthy(eval(*f.condition))) kept.push_back(item);
    }
    seq = make_list(std::move(kept)).list_ptr();
  }
  auto loop = std::make_shared<LoopState>();
  loop->items = seq;
  loop->depth0 = depth0;
  loop->node = &f;
  loop->outer = current_;
  Value loop_value(loop);
  {
    Frame frame;
    ScopeGuard scope(current_, frame);
    for (size_t i = 0; i < seq->items.size(); ++i) {
      if (++iterations_ > kMaxIterations) fail("template exceeds the loop iteration limit");
      frame.vars.clear();
      loop->index0 = i;
      frame.vars.emplace_back("loop", loop_value);
      assign(frame, f.target, seq->items[i]);
      if (exec(f.body) == Flow::break_) break;
    }
  }
  loop->active = false;
  if (seq->items.empty() && !f.else_body.empty()) {
    Frame frame;
    ScopeGuard scope(current_, frame);
    exec(f.else_body);
  }
}

void Interp::assign(Frame& frame, const Target& t, const Value& v) {
  if (!t.attr.empty()) {
    Value obj = lookup(t.name);
    if (obj.kind() != Value::ns) fail("cannot assign attribute on non-namespace object");
    Dict& attrs = std::get<std::shared_ptr<Namespace>>(obj.v)->attrs;
    note_nested(attrs, v);
    attrs.set(Value(t.attr), v);
    return;
  }
  if (!t.is_tuple) {
    frame.set(t.name, v);
    return;
  }
  auto items = iterate(v);
  if (items->items.size() != t.items.size()) {
    if (items->items.size() < t.items.size())
      fail("not enough values to unpack (expected " + std::to_string(t.items.size()) + ", got " +
           std::to_string(items->items.size()) + ")");
    fail("too many values to unpack (expected " + std::to_string(t.items.size()) + ")");
  }
  for (size_t i = 0; i < t.items.size(); ++i) assign(frame, t.items[i], items->items[i]);
}

std::string Interp::render_to_string(const Body& body, Flow* flow) {
  std::string buffer;
  OutputGuard output(out_, buffer);
  Frame frame;
  ScopeGuard scope(current_, frame);
  *flow = exec(body);
  return buffer;
}

Value Interp::apply_filter_chain(const std::vector<ExprPtr>& filters, Value subject) {
  for (const auto& f : filters) {
    try {
      Args args;
      eval_args(f->args, args);
      subject = f->filter(*this, subject, args);
    } catch (Error& e) {
      if (e.offset == kNoOffset) e.offset = f->offset;
      throw;
    }
  }
  return subject;
}

Value Interp::call_macro(const Callable& c, Args& args) {
  const MacroDef& m = *c.macro;
  if (call_depth_ >= kMaxCallDepth) fail("maximum recursion depth exceeded");
  size_t np = m.params.size();
  Frame frame;
  std::vector<bool> bound(np, false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < np) {
      frame.set(m.params[i], args.positional[i]);
      bound[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  if (!varargs.empty() && !m.uses_varargs)
    fail("macro '" + m.name + "' takes not more than " + std::to_string(np) + " argument(s)");
  Dict kwargs;
  Value caller = make_undefined("No caller defined");
  for (auto& [key, value] : args.keyword) {
    // As in jinja2, a keyword naming a parameter already filled by position
    // is a leftover keyword, not a duplicate.
    auto it = std::find(m.params.begin(), m.params.end(), key);
    size_t idx = static_cast<size_t>(it - m.params.begin());
    if (it != m.params.end() && !bound[idx]) {
      frame.set(key, value);
      bound[idx] = true;
    } else if (key == "caller" && m.uses_caller) {
      caller = value;
    } else if (m.uses_kwargs) {
      kwargs.set(Value(key), value);
    } else {
      fail("macro '" + m.name + "' takes no keyword argument '" + key + "'");
    }
  }
  DepthGuard depth(call_depth_);
  frame.parent = c.closure ? c.closure.get() : &root_;
  CurrentGuard scope(current_, &frame);
  size_t first_default = np - m.defaults.size();
  for (size_t i = 0; i < np; ++i) {
    if (bound[i]) continue;
    if (i >= first_default)
      frame.set(m.params[i], eval(*m.defaults[i - first_default]));
    else
      frame.set(m.params[i], make_undefined("parameter '" + m.params[i] + "' was not provided"));
  }
  if (m.uses_varargs) frame.set("varargs", make_list(std::move(varargs), SeqKind::tuple));
  if (m.uses_kwargs) frame.set("kwargs", make_dict(std::move(kwargs)));
  if (m.uses_caller) frame.set("caller", caller);
  std::string buffer;
  OutputGuard output(out_, buffer);
  exec(m.body);
  return Value(std::move(buffer));
}

Value Interp::call_loop(const Callable& c, Args& args) {
  const LoopState& loop = *std::get<std::shared_ptr<LoopState>>(c.self.v);
  if (!loop.node->recursive) fail("loop() is only callable in recursive loops");
  if (!loop.active) fail("loop() called after its loop ended");
  if (args.positional.size() != 1 || !args.keyword.empty()) fail("loop() takes exactly one argument");
  if (call_depth_ >= kMaxCallDepth) fail("maximum recursion depth exceeded");
  DepthGuard depth(call_depth_);
  std::string buffer;
  {
    OutputGuard output(out_, buffer);
    CurrentGuard scope(current_, loop.outer);
    exec_for(*loop.node, args.positional[0], loop.depth0 + 1);
  }
  return Value(std::move(buffer));
}

Value Interp::call(const Value& callee, Args& args) {
  switch (callee.kind()) {
    case Value::undefined: fail_undefined(callee);
    case Value::callable: {
      const Callable& c = *std::get<std::shared_ptr<const Callable>>(callee.v);
      switch (c.kind) {
        case Callable::Kind::macro: return call_macro(c, args);
        case Callable::Kind::loop_recurse: return call_loop(c, args);
        case Callable::Kind::method: {
          auto r = call_method(c.self, c.name, args);
          if (!r) fail(std::string("'") + type_name(callee) + "' object is not callable");
          return *r;
        }
        case Callable::Kind::builtin: return call_builtin(*this, c, args);
      }
      break;
    }
    case Value::loop: {
      Callable c;
      c.kind = Callable::Kind::loop_recurse;
      c.self = callee;
      return call_loop(c, args);
    }
    default: break;
  }
  fail(std::string("'") + type_name(callee) + "' object is not callable");
}

Value Interp::call_value_at(const Value& callee, Args& args, size_t offset) {
  try {
    return call(callee, args);
  } catch (Error& e) {
    if (e.offset == kNoOffset) e.offset = offset;
    throw;
  }
}

Value Interp::lookup(std::string_view name) const {
  for (const Frame* f = current_; f; f = f->parent)
    if (const Value* v = f->find(name)) return *v;
  Value g = find_global(name);
  if (!g.is_undefined()) return g;
  return undefined_name(name);
}

std::shared_ptr<Frame> Interp::snapshot() {
  if (current_ == &root_) return nullptr;
  auto f = std::make_shared<Frame>();
  for (const Frame* fr = current_; fr && fr != &root_; fr = fr->parent)
    for (const auto& kv : fr->vars)
      if (!f->find(kv.first)) f->vars.push_back(kv);
  f->parent = &root_;
  return f;
}

void Interp::eval_args(const CallArgs& in, Args& out) {
  out.positional.reserve(in.positional.size());
  for (const auto& e : in.positional) out.positional.push_back(eval(*e));
  if (in.star_args) {
    Value extra = eval(*in.star_args);
    auto extra_items = iterate(extra);
    for (const auto& v : extra_items->items) out.positional.push_back(v);
  }
  for (const auto& [key, e] : in.keyword) out.keyword.emplace_back(key, eval(*e));
  if (in.star_kwargs) {
    Value extra = eval(*in.star_kwargs);
    if (extra.kind() != Value::dict) fail("argument after ** must be a mapping");
    for (const auto& kv : extra.as_dict().items) {
      if (!kv.first.is_string()) fail("keywords must be strings");
      out.keyword.emplace_back(kv.first.str(), kv.second);
    }
  }
}

Value Interp::eval(const Expr& e) {
  try {
    if (stack_.exhausted()) fail("template nesting exceeds the available stack");
    return eval_inner(e);
  } catch (Error& err) {
    if (err.offset == kNoOffset) err.offset = e.offset;
    throw;
  }
}

Value Interp::eval_call(const Expr& e) {
  const Expr& callee = *e.children[0];
  Args args;
  if (callee.kind == Expr::Kind::getattr) {
    // Method calls dispatch directly instead of creating a bound method.
    Value obj = eval(*callee.children[0]);
    if (obj.is_undefined()) fail_undefined(obj);
    eval_args(e.args, args);
    if (auto r = call_method(obj, callee.name, args)) return *r;
    return call(get_attr(obj, callee.name), args);
  }
  Value fn = eval(callee);
  eval_args(e.args, args);
  return call(fn, args);
}

namespace {

Value negate(const Value& v, bool minus) {
  switch (v.kind()) {
    case Value::undefined: fail_undefined(v);
    case Value::boolean:
    case Value::integer: {
      int64_t i = v.as_int();
      if (!minus) return Value(i);
      if (i == std::numeric_limits<int64_t>::min()) fail("integer overflow");
      return Value(-i);
    }
    case Value::floating: return Value(minus ? -v.as_double() : v.as_double());
    default: fail(std::string("bad operand type for unary ") + (minus ? "-" : "+") + ": '" + type_name(v) + "'");
  }
}

bool compare(CmpOp op, const Value& a, const Value& b) {
  switch (op) {
    case CmpOp::eq: return equals(a, b);
    case CmpOp::ne: return !equals(a, b);
    case CmpOp::lt: return less(a, b);
    case CmpOp::gt: return less(b, a);
    case CmpOp::le: return less(a, b) || equals(a, b);
    case CmpOp::ge: return less(b, a) || equals(a, b);
    case CmpOp::in: return contains(b, a);
    case CmpOp::not_in: return !contains(b, a);
  }
  return false;
}

}  // namespace

Value Interp::eval_inner(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::literal: return e.value;
    case Expr::Kind::name: return lookup(e.name);
    case Expr::Kind::list:
    case Expr::Kind::tuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(eval(*c));
      return make_list(std::move(items), e.kind == Expr::Kind::tuple ? SeqKind::tuple : SeqKind::list);
    }
    case Expr::Kind::dict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value key = eval(*e.children[i]);
        if (!is_hashable(key)) fail(std::string("unhashable type: '") + type_name(key) + "'");
        d.set(std::move(key), eval(*e.children[i + 1]));
      }
      return make_dict(std::move(d));
    }
    case Expr::Kind::getattr: return get_attr(eval(*e.children[0]), e.name);
    case Expr::Kind::getitem: {
      Value obj = eval(*e.children[0]);
      return get_item(obj, eval(*e.children[1]));
    }
    case Expr::Kind::slice: {
      Value obj = eval(*e.children[0]);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.children[i + 1] ? eval(*e.children[i + 1]) : Value(nullptr);
      return get_slice(obj, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::call: return eval_call(e);
    case Expr::Kind::filter: {
      Value subject = eval(*e.children[0]);
      Args args;
      eval_args(e.args, args);
      if (!e.filter) fail("No filter named '" + e.name + "' found.");
      return e.filter(*this, subject, args);
    }
    case Expr::Kind::test: {
      Value subject = eval(*e.children[0]);
      Args args;
      eval_args(e.args, args);
      if (!e.test) fail("No test named '" + e.name + "' found.");
      return Value(e.test(*this, subject, args));
    }
    case Expr::Kind::neg: return negate(eval(*e.children[0]), true);
    case Expr::Kind::pos: return negate(eval(*e.children[0]), false);
    case Expr::Kind::not_: return Value(!truthy(eval(*e.children[0])));
    case Expr::Kind::binary: {
      Value a = eval(*e.children[0]);
      Value b = eval(*e.children[1]);
      return binary_op(e.op, a, b);
    }
    case Expr::Kind::compare: {
      Value left = eval(*e.children[0]);
      for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
        Value right = eval(*e.children[i + 1]);
        if (!compare(e.cmp_ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::Kind::and_: {
      Value left = eval(*e.children[0]);
      if (!truthy(left)) return left;
      return eval(*e.children[1]);
    }
    case Expr::Kind::or_: {
      Value left = eval(*e.children[0]);
      if (truthy(left)) return left;
      return eval(*e.children[1]);
    }
    case Expr::Kind::concat: {
      std::string s;
      for (const auto& c : e.children) append_str(s, eval(*c));
      return Value(std::move(s));
    }
    case Expr::Kind::cond:
      if (truthy(eval(*e.children[0]))) return eval(*e.children[1]);
      if (e.children[2]) return eval(*e.children[2]);
      return make_undefined("the inline if-expression evaluated to false and no else section was defined.");
  }
  fail("internal error: unknown expression");
}

}  // namespace slim::jinja
