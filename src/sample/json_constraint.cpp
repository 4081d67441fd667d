// The JSON matcher (a pushdown automaton over bytes) and the sampler stage
// that masks tokens with it.
#include "sample/json_constraint.h"

#include <algorithm>
#include <cctype>

namespace slim {

JsonSchema JsonSchema::any_value() {
  JsonSchema s;
  s.nodes.emplace_back();
  return s;
}

JsonSchema JsonSchema::any_object() {
  JsonSchema s;
  s.nodes.emplace_back();
  s.nodes[0].types = JsonSchemaNode::Object;
  return s;
}

namespace {

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Number states: after '-', a leading 0, integer digits, '.', fraction
// digits, 'e', exponent sign, exponent digits.
enum NumState : uint8_t { kSign, kZero, kInt, kDot, kFrac, kE, kESign, kExp };
bool num_accepting(uint8_t s) { return s == kZero || s == kInt || s == kFrac || s == kExp; }

// Object states: after '{', after ',', after a key, after a value.
enum ObjState : uint8_t { kObjStart, kObjNeedKey, kObjColon, kObjComma };

}  // namespace

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonSchema> schema, int max_whitespace)
    : schema_(std::move(schema)), max_ws_(max_whitespace) {
  Frame f;
  f.kind = Kind::Value;
  f.node = schema_ && !schema_->nodes.empty() ? 0 : -1;
  stack_.push_back(std::move(f));
}

const JsonSchemaNode* JsonMatcher::node(int i) const {
  if (!schema_ || i < 0 || i >= (int)schema_->nodes.size()) return nullptr;
  return &schema_->nodes[i];
}

bool JsonMatcher::feed(std::string_view s) {
  for (char c : s)
    if (!feed(c)) return false;
  return true;
}

bool JsonMatcher::feed(char c) {
  if (root_done_ || stack_.empty()) return false;
  return feed_frame(c);
}

void JsonMatcher::pop_value() {
  stack_.pop_back();
  if (stack_.empty()) root_done_ = true;
}

bool JsonMatcher::key_possible(const Frame& obj) const {
  const JsonSchemaNode* n = node(obj.node);
  if (!n || n->additional_properties) return true;
  for (size_t i = 0; i < n->properties.size() && i < 64; ++i)
    if (!(obj.seen >> i & 1)) return true;
  return false;
}

bool JsonMatcher::key_prefix_ok(const Frame& obj, const std::string& prefix) const {
  const JsonSchemaNode* n = node(obj.node);
  if (!n || n->additional_properties) return true;
  for (size_t i = 0; i < n->properties.size() && i < 64; ++i)
    if (!(obj.seen >> i & 1) && n->properties[i].first.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

bool JsonMatcher::required_done(const Frame& obj) const {
  const JsonSchemaNode* n = node(obj.node);
  if (!n) return true;
  for (const auto& r : n->required) {
    for (size_t i = 0; i < n->properties.size() && i < 64; ++i)
      if (n->properties[i].first == r && !(obj.seen >> i & 1)) return false;
  }
  return true;
}

bool JsonMatcher::start_value(Frame& f, char c) {
  const JsonSchemaNode* n = node(f.node);
  const uint8_t types = n ? n->types : (uint8_t)JsonSchemaNode::Any;
  if (n && !n->enum_values.empty()) {
    f.kind = Kind::Literal;
    f.buf.clear();
    f.literals.clear();
    for (const auto& v : n->enum_values)
      if (!v.empty() && v[0] == c) f.literals.push_back(v);
    if (f.literals.empty()) return false;
    return feed_frame(c);
  }
  switch (c) {
    case '{':
      if (!(types & JsonSchemaNode::Object)) return false;
      f.kind = Kind::Object;
      f.state = kObjStart;
      return true;
    case '[':
      if (!(types & JsonSchemaNode::Array)) return false;
      f.kind = Kind::Array;
      f.state = 0;
      return true;
    case '"':
      if (!(types & JsonSchemaNode::String)) return false;
      f.kind = Kind::String;
      f.is_key = false;
      f.state = 0;
      return true;
    case 't':
    case 'f':
    case 'n':
      if (!(types & (c == 'n' ? JsonSchemaNode::Null : JsonSchemaNode::Boolean))) return false;
      f.kind = Kind::Literal;
      f.buf.clear();
      f.literals = c == 'n' ? std::vector<std::string>{"null"} : std::vector<std::string>{"true", "false"};
      return feed_frame(c);
    default:
      if (c != '-' && !is_digit(c)) return false;
      if (!(types & (JsonSchemaNode::Number | JsonSchemaNode::Integer))) return false;
      f.kind = Kind::Number;
      f.state = c == '-' ? kSign : c == '0' ? kZero : kInt;
      return true;
  }
}

bool JsonMatcher::feed_frame(char c) {
  Frame& f = stack_.back();
  const bool ws = is_ws(c);
  auto take_ws = [&]() { return ++ws_run_ <= max_ws_; };
  switch (f.kind) {
    case Kind::Value:
      if (ws) return take_ws();
      ws_run_ = 0;
      return start_value(f, c);

    case Kind::Object: {
      if (ws) return take_ws();
      ws_run_ = 0;
      auto push_key = [&]() {
        Frame k;
        k.kind = Kind::String;
        k.is_key = true;
        stack_.push_back(std::move(k));
        return true;
      };
      switch (f.state) {
        case kObjStart:
          if (c == '}' && required_done(f)) { pop_value(); return true; }
          if (c == '"' && key_possible(f)) return push_key();
          return false;
        case kObjNeedKey:
          if (c == '"') return push_key();
          return false;
        case kObjColon: {
          if (c != ':') return false;
          f.state = kObjComma;
          const JsonSchemaNode* n = node(f.node);
          Frame v;
          v.kind = Kind::Value;
          v.node = n && f.prop >= 0 ? n->properties[f.prop].second : -1;
          stack_.push_back(std::move(v));
          return true;
        }
        default:  // kObjComma
          if (c == ',' && key_possible(f)) { f.state = kObjNeedKey; return true; }
          if (c == '}' && required_done(f)) { pop_value(); return true; }
          return false;
      }
    }

    case Kind::Array: {
      if (ws) return take_ws();
      ws_run_ = 0;
      const JsonSchemaNode* n = node(f.node);
      const int items = n ? n->items : -1;
      if (c == ']' ) { pop_value(); return true; }
      Frame v;
      v.kind = Kind::Value;
      v.node = items;
      if (f.state == 0) {  // the first element starts with this byte
        f.state = 1;
        stack_.push_back(std::move(v));
        return feed_frame(c);
      }
      if (c != ',') return false;
      stack_.push_back(std::move(v));
      return true;
    }

    case Kind::String: {
      const unsigned char u = (unsigned char)c;
      if (f.state == 0) {
        if (c == '"') {
          if (!f.is_key) { pop_value(); return true; }
          Frame& obj = stack_[stack_.size() - 2];
          const JsonSchemaNode* n = node(obj.node);
          int prop = -1;
          if (n)
            for (size_t i = 0; i < n->properties.size() && i < 64; ++i)
              if (n->properties[i].first == f.buf) { prop = (int)i; break; }
          if (prop < 0 && n && !n->additional_properties) return false;
          if (prop >= 0 && (obj.seen >> prop & 1)) return false;  // a duplicate key
          if (prop >= 0) obj.seen |= uint64_t(1) << prop;
          obj.prop = prop;
          obj.state = kObjColon;
          stack_.pop_back();
          return true;
        }
        if (c == '\\') {
          const JsonSchemaNode* n = f.is_key ? node(stack_[stack_.size() - 2].node) : nullptr;
          if (n && !n->additional_properties) return false;  // schema keys are written plainly
          f.state = 1;
          return true;
        }
        if (u < 0x20) return false;
        if (f.is_key) {
          f.buf += c;
          if (!key_prefix_ok(stack_[stack_.size() - 2], f.buf)) return false;
        }
        return true;
      }
      if (f.state == 1) {
        if (c == 'u') { f.state = 2; return true; }
        if (std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos) return false;
        f.state = 0;
        return true;
      }
      if (!std::isxdigit(u)) return false;
      f.state = f.state == 5 ? 0 : f.state + 1;
      return true;
    }

    case Kind::Number: {
      const JsonSchemaNode* n = node(f.node);
      const bool integer_only = n && (n->types & JsonSchemaNode::Integer) && !(n->types & JsonSchemaNode::Number);
      const bool d = is_digit(c);
      const bool e = (c == 'e' || c == 'E') && !integer_only;
      const bool dot = c == '.' && !integer_only;
      int next = -1;
      switch (f.state) {
        case kSign: next = c == '0' ? kZero : d ? kInt : -1; break;
        case kZero: next = dot ? kDot : e ? kE : -1; break;
        case kInt: next = d ? kInt : dot ? kDot : e ? kE : -1; break;
        case kDot: next = d ? kFrac : -1; break;
        case kFrac: next = d ? kFrac : e ? kE : -1; break;
        case kE: next = (c == '+' || c == '-') ? kESign : d ? kExp : -1; break;
        case kESign: next = d ? kExp : -1; break;
        default: next = d ? kExp : -1; break;
      }
      if (next >= 0) { f.state = (uint8_t)next; return true; }
      if (!num_accepting(f.state)) return false;
      pop_value();  // the number ended; the byte belongs to what follows
      return feed(c);
    }

    case Kind::Literal: {
      std::string next = f.buf + c;
      bool prefix = false, exact = false, longer = false;
      for (const auto& l : f.literals) {
        if (l.compare(0, next.size(), next) != 0) continue;
        prefix = true;
        if (l.size() == next.size()) exact = true; else longer = true;
      }
      if (prefix) {
        f.buf = std::move(next);
        if (exact && !longer) pop_value();
        return true;
      }
      bool complete = std::find(f.literals.begin(), f.literals.end(), f.buf) != f.literals.end();
      if (!complete) return false;
      pop_value();
      return feed(c);
    }
  }
  return false;
}

bool JsonMatcher::can_end() const {
  if (root_done_) return true;
  if (stack_.size() != 1) return false;
  const Frame& f = stack_[0];
  if (f.kind == Kind::Number) return num_accepting(f.state);
  if (f.kind == Kind::Literal) return std::find(f.literals.begin(), f.literals.end(), f.buf) != f.literals.end();
  return false;
}

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonSchema> schema,
                               std::shared_ptr<const std::vector<std::string>> pieces, std::vector<int32_t> eog_ids)
    : schema_(std::move(schema)), pieces_(std::move(pieces)), eog_(std::move(eog_ids)), matcher_(schema_) {}

bool JsonConstraint::is_eog(int32_t id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }

bool JsonConstraint::allowed(int32_t id) const {
  if (is_eog(id)) return matcher_.can_end();
  if (matcher_.finished() || id < 0 || id >= (int32_t)pieces_->size()) return false;
  const std::string& piece = (*pieces_)[id];
  if (piece.empty()) return false;
  JsonMatcher m = matcher_;
  return m.feed(piece);
}

void JsonConstraint::apply(Candidates& c) {
  std::vector<TokenCandidate> kept;
  kept.reserve(c.items.size());
  for (const auto& t : c.items)
    if (allowed(t.id)) kept.push_back(t);
  if (kept.empty())  // nothing can continue (should not happen): let generation end
    for (const auto& t : c.items)
      if (is_eog(t.id)) kept.push_back(t);
  c.items = std::move(kept);
}

void JsonConstraint::accept(int32_t id) {
  if (is_eog(id) || id < 0 || id >= (int32_t)pieces_->size()) return;
  matcher_.feed((*pieces_)[id]);
}

void JsonConstraint::reset() { matcher_ = JsonMatcher(schema_); }

}  // namespace slim
