// The JSON matcher on hand-written valid and invalid texts, schema rules,
// and the sampler stage masking a toy vocabulary.
#include "sample/json_constraint.h"
#include "test_util.h"

namespace slim {
namespace {

std::shared_ptr<const JsonSchema> share(JsonSchema s) { return std::make_shared<const JsonSchema>(std::move(s)); }

// Whether the whole text is accepted and complete.
bool accepts(const std::shared_ptr<const JsonSchema>& s, const std::string& text) {
  JsonMatcher m(s);
  return m.feed(text) && m.can_end();
}
// Whether the text is a valid prefix (may be incomplete).
bool prefix_ok(const std::shared_ptr<const JsonSchema>& s, const std::string& text) {
  JsonMatcher m(s);
  return m.feed(text);
}

TEST(JsonMatcher, AnyValueAcceptsValidJson) {
  auto any = share(JsonSchema::any_value());
  for (const char* t : {"{}", "[]", "0", "-0.5e+10", "12", "\"a\\n\\u00e9\"", "true", "false", "null",
                        "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}", " [ true , false ]", "[[[]]]", "1E5"})
    EXPECT_TRUE(accepts(any, t)) << t;
}

TEST(JsonMatcher, RejectsInvalidJson) {
  auto any = share(JsonSchema::any_value());
  for (const char* t : {"{,}", "[1,]", "01", "-", "1.", "1e", "tru e", "nul", "{\"a\" 1}", "{\"a\":}", "[1 2]",
                        "\"\\x\"", "\"\\u12G4\"", "{'a':1}", "}", "{} {}", "+1", ".5", "[1]]"})
    EXPECT_FALSE(accepts(any, t)) << t;
  // Incomplete texts are valid prefixes but cannot end.
  JsonMatcher m(any);
  EXPECT_TRUE(m.feed("{\"a\": [1, 2"));
  EXPECT_FALSE(m.can_end());
  // A raw control character inside a string is not JSON.
  EXPECT_FALSE(prefix_ok(any, "\"a\nb\""));
}

TEST(JsonMatcher, ObjectModeRequiresAnObject) {
  auto obj = share(JsonSchema::any_object());
  EXPECT_TRUE(accepts(obj, "{\"x\": 1}"));
  EXPECT_FALSE(prefix_ok(obj, "[1]"));
  EXPECT_FALSE(prefix_ok(obj, "\"s\""));
  EXPECT_FALSE(prefix_ok(obj, "{}x"));  // nothing after the root value
}

TEST(JsonMatcher, WhitespaceIsBounded) {
  auto any = share(JsonSchema::any_value());
  EXPECT_TRUE(prefix_ok(any, "{" + std::string(16, ' ')));
  EXPECT_FALSE(prefix_ok(any, "{" + std::string(17, ' ')));
  EXPECT_TRUE(prefix_ok(any, "\"" + std::string(100, ' ')));  // inside strings it is text
}

JsonSchema person_schema() {
  // {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
  //  "tags":{"type":"array","items":{"enum":["a","b"]}}},"required":["name","age"]}
  JsonSchema s;
  s.nodes.resize(4);
  s.nodes[0].types = JsonSchemaNode::Object;
  s.nodes[0].properties = {{"name", 1}, {"age", 2}, {"tags", 3}};
  s.nodes[0].required = {"name", "age"};
  s.nodes[0].additional_properties = false;
  s.nodes[1].types = JsonSchemaNode::String;
  s.nodes[2].types = JsonSchemaNode::Integer;
  s.nodes[3].types = JsonSchemaNode::Array;
  s.nodes.emplace_back();
  s.nodes[3].items = 4;
  s.nodes[4].enum_values = {"\"a\"", "\"b\""};
  return s;
}

TEST(JsonMatcher, SchemaPropertiesRequiredTypesEnum) {
  auto s = share(person_schema());
  EXPECT_TRUE(accepts(s, "{\"name\": \"Ann\", \"age\": 31}"));
  EXPECT_TRUE(accepts(s, "{\"age\": 3, \"name\": \"B\", \"tags\": [\"a\", \"b\", \"a\"]}"));
  EXPECT_FALSE(accepts(s, "{\"name\": \"Ann\"}"));             // age is required
  EXPECT_FALSE(prefix_ok(s, "{\"name\": 5"));                  // wrong type
  EXPECT_FALSE(prefix_ok(s, "{\"age\": 3.5"));                 // integer only
  EXPECT_FALSE(prefix_ok(s, "{\"nick"));                       // not a property
  EXPECT_FALSE(prefix_ok(s, "{\"age\": 1, \"age\""));          // duplicate
  EXPECT_FALSE(prefix_ok(s, "{\"age\": 1, \"tags\": [\"c"));   // not in the enum
  EXPECT_FALSE(prefix_ok(s, "[") );                            // the root is an object
}

TEST(JsonMatcher, EnumOfNumbersAndNullableType) {
  JsonSchema s;
  s.nodes.resize(1);
  s.nodes[0].enum_values = {"1", "12", "null"};
  auto sh = share(s);
  EXPECT_TRUE(accepts(sh, "1"));
  EXPECT_TRUE(accepts(sh, "12"));
  EXPECT_TRUE(accepts(sh, "null"));
  EXPECT_FALSE(prefix_ok(sh, "2"));
  EXPECT_FALSE(prefix_ok(sh, "13"));
  JsonSchema t;
  t.nodes.resize(1);
  t.nodes[0].types = JsonSchemaNode::String | JsonSchemaNode::Null;
  auto th = share(t);
  EXPECT_TRUE(accepts(th, "null"));
  EXPECT_TRUE(accepts(th, "\"x\""));
  EXPECT_FALSE(prefix_ok(th, "true"));
}

TEST(JsonConstraint, MasksTokensAndForcesTheEnd) {
  // Toy vocabulary: 0 = EOS, 1 = "{", 2 = "}", 3 = "hello", 4 = " \"a\":", 5 = "1", 6 = "" (control).
  auto pieces = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"", "{", "}", "hello", " \"a\":", "1", ""});
  JsonConstraint stage(share(JsonSchema::any_object()), pieces, {0});
  auto ids_after_apply = [&]() {
    Candidates c;
    std::vector<float> logits(7, 0.0f);
    c.set_logits(logits.data(), 7);
    stage.apply(c);
    std::vector<int32_t> v;
    for (auto& t : c.items) v.push_back(t.id);
    return v;
  };
  EXPECT_EQ(ids_after_apply(), (std::vector<int32_t>{1}));
  stage.accept(1);
  EXPECT_EQ(ids_after_apply(), (std::vector<int32_t>{2, 4}));
  stage.accept(4);
  EXPECT_EQ(ids_after_apply(), (std::vector<int32_t>{1, 5}));
  stage.accept(5);
  EXPECT_EQ(ids_after_apply(), (std::vector<int32_t>{2, 5}));
  stage.accept(2);
  EXPECT_EQ(ids_after_apply(), (std::vector<int32_t>{0}));  // complete: only the end
  stage.reset();
  EXPECT_EQ(ids_after_apply(), (std::vector<int32_t>{1}));
}

TEST(JsonConstraint, GreedyChainProducesValidJson) {
  // With the stage first, greedy picks the best *allowed* token even when the
  // model prefers prose.
  auto pieces = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"", "{", "}", "hello", "\"k\"", ":", "true"});
  SamplerParams sp;
  sp.temperature = 0;
  Sampler sampler(sp);
  JsonConstraint stage(share(JsonSchema::any_object()), pieces, {0});
  std::string out;
  // Logits favour "hello" always, then the others in this order.
  std::vector<float> logits = {0.1f, 1.0f, 0.5f, 9.0f, 2.0f, 1.5f, 1.2f};
  for (int step = 0; step < 10; ++step) {
    Candidates c;
    c.set_logits(logits.data(), 7);
    stage.apply(c);
    std::vector<float> masked(7, -INFINITY);
    for (auto& t : c.items) masked[t.id] = t.logit;
    int32_t id = sampler.sample(masked.data(), 7);
    stage.accept(id);
    if (id == 0) break;
    out += (*pieces)[id];
  }
  EXPECT_EQ(out, "{\"k\":\"k\"}");  // "k" (2.0) beats true (1.2) as a value
}

}  // namespace
}  // namespace slim
