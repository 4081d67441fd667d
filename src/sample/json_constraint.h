// Constrained decoding for JSON output: a character-level pushdown matcher
// that knows which bytes may continue a JSON text (optionally one valid
// against a small JSON-schema subset), and a sampler stage that removes every
// candidate token whose text would break it.
//
// Schema subset: type (object, array, string, number, integer, boolean,
// null, or a list of them), properties + required (+ additionalProperties),
// items, enum. Object keys of a schema with properties must be among them
// unless additionalProperties is true; `}` is allowed only once every
// required key is present. Whitespace between tokens is limited so a model
// cannot pad forever.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sample/sampler.h"

namespace slim {

struct JsonSchemaNode {
  enum Type : uint8_t {
    Object = 1, Array = 2, String = 4, Number = 8, Integer = 16, Boolean = 32, Null = 64, Any = 127,
  };
  uint8_t types = Any;
  std::vector<std::pair<std::string, int>> properties;  // key → node index (-1: any value)
  std::vector<std::string> required;
  bool additional_properties = true;  // keys outside `properties` (forced false when properties are given, unless set)
  int items = -1;                     // node index of array items; -1: any value
  std::vector<std::string> enum_values;  // serialized JSON texts; non-empty: the value is one of them, verbatim
};

// nodes[0] is the root. A node index of -1 anywhere means "any JSON value".
struct JsonSchema {
  std::vector<JsonSchemaNode> nodes;
  static JsonSchema any_value();  // any JSON text
  static JsonSchema any_object(); // a JSON object (OpenAI's json_object mode)
};

class JsonMatcher {
 public:
  explicit JsonMatcher(std::shared_ptr<const JsonSchema> schema, int max_whitespace = 16);
  // Feeds one byte / several; false when the text can no longer be valid
  // (the matcher is then in an unspecified state: feed a copy to test).
  bool feed(char c);
  bool feed(std::string_view s);
  // The text so far is one complete value (a root number may still grow).
  bool can_end() const;
  // Complete, and no byte may follow.
  bool finished() const { return root_done_; }

 private:
  enum class Kind : uint8_t { Value, Object, Array, String, Number, Literal };
  struct Frame {
    Kind kind = Kind::Value;
    uint8_t state = 0;
    int node = -1;
    bool is_key = false;
    uint64_t seen = 0;     // object: properties present (by index, first 64)
    int prop = -1;         // object: index of the key just read, -1 for an extra key
    std::string buf;       // key text, or the literal matched so far
    std::vector<std::string> literals;  // literal: the candidates
  };
  const JsonSchemaNode* node(int i) const;
  bool feed_frame(char c);
  bool start_value(Frame& f, char c);
  void pop_value();
  bool key_possible(const Frame& obj) const;
  bool key_prefix_ok(const Frame& obj, const std::string& prefix) const;
  bool required_done(const Frame& obj) const;

  std::shared_ptr<const JsonSchema> schema_;
  std::vector<Frame> stack_;
  bool root_done_ = false;
  int ws_run_ = 0;
  int max_ws_;
};

// The stage: keeps only tokens whose text (pieces[id]) continues a valid
// text, and end-of-generation tokens only once the value is complete. Tokens
// with an empty piece (control tokens) are removed. Use it before the other
// stages so they see the masked distribution.
class JsonConstraint : public SamplerStage {
 public:
  JsonConstraint(std::shared_ptr<const JsonSchema> schema, std::shared_ptr<const std::vector<std::string>> pieces,
                 std::vector<int32_t> eog_ids);
  const char* name() const override { return "json"; }
  void apply(Candidates& c) override;
  void accept(int32_t id) override;
  void reset() override;
  bool allowed(int32_t id) const;
  const JsonMatcher& matcher() const { return matcher_; }

 private:
  bool is_eog(int32_t id) const;
  std::shared_ptr<const JsonSchema> schema_;
  std::shared_ptr<const std::vector<std::string>> pieces_;
  std::vector<int32_t> eog_;
  JsonMatcher matcher_;
};

}  // namespace slim
