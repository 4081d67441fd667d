// Public API of src/chat/template.h: error kinds and positions, the
// standard context, the ChatML fallback, JSON-text contexts, and reuse of
// one parsed template (also from several threads).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "chat/template.h"

namespace slim {
namespace {

using json = nlohmann::ordered_json;

TemplateError parse_error(const std::string& source) {
  TemplateError err;
  auto t = ChatTemplate::parse(source, &err);
  EXPECT_FALSE(t.ok()) << source;
  if (!t.ok()) {
    EXPECT_EQ(t.error(), err.describe());
  }
  return err;
}

TemplateError render_error(const std::string& source, const json& context = json::object()) {
  TemplateError err;
  auto out = render_template(source, context, &err);
  EXPECT_FALSE(out.ok()) << source << " rendered " << (out.ok() ? *out : "");
  if (!out.ok()) {
    EXPECT_EQ(out.error(), err.describe());
  }
  return err;
}

TEST(ChatTemplateErrors, RaisedExceptionCarriesExactlyTheMessage) {
  TemplateError err = render_error("line 1\n{% if true %}{{ raise_exception('Roles must alternate: ' ~ 2) }}{% endif %}");
  EXPECT_EQ(err.kind, TemplateError::Kind::raised);
  EXPECT_EQ(err.message, "Roles must alternate: 2");
  EXPECT_EQ(err.line, 0);
  EXPECT_EQ(err.describe(), "Roles must alternate: 2");
}

TEST(ChatTemplateErrors, SyntaxErrorsHaveLineAndColumn) {
  TemplateError err = parse_error("line one\n{{ x + }}");
  EXPECT_EQ(err.kind, TemplateError::Kind::syntax);
  EXPECT_EQ(err.line, 2);
  EXPECT_EQ(err.column, 8);
  EXPECT_EQ(err.describe(), "line 2, column 8: unexpected end of print statement");

  err = parse_error("{% for m in messages %}\n  {% if m %}x{% endfor %}");
  EXPECT_EQ(err.line, 2);
  EXPECT_EQ(err.column, 17);
  EXPECT_NE(err.message.find("Encountered unknown tag 'endfor'"), std::string::npos) << err.message;

  err = parse_error("ok\n{% if x %}\nnever closed");
  EXPECT_EQ(err.line, 2);
  EXPECT_NE(err.message.find("'endif'"), std::string::npos) << err.message;

  // jinja2 rejects unknown filters and tests when the template is compiled.
  err = parse_error("a\n\n   {{ 'x' | nosuch }}");
  EXPECT_EQ(err.line, 3);
  EXPECT_EQ(err.column, 13);
  EXPECT_EQ(err.message, "No filter named 'nosuch'.");
  EXPECT_EQ(parse_error("{{ 1 is nosuch }}").message, "No test named 'nosuch'.");

  EXPECT_EQ(parse_error("{# open").message, "Missing end of comment tag");
  EXPECT_EQ(parse_error("{% raw %}open").message, "Missing end of raw directive");
  EXPECT_EQ(parse_error("{{ 1 }").message, "unexpected '}'");
  EXPECT_EQ(parse_error("{% break %}").message, "'break' outside of a loop");
  EXPECT_EQ(parse_error("{% frobnicate %}").message, "Encountered unknown tag 'frobnicate'.");
}

TEST(ChatTemplateErrors, ColumnsCountCodePoints) {
  TemplateError err = render_error("é日本 {{ 1 + 'a' }}");
  EXPECT_EQ(err.kind, TemplateError::Kind::runtime);
  EXPECT_EQ(err.line, 1);
  EXPECT_EQ(err.column, 10);  // the '+'
  EXPECT_EQ(err.message, "unsupported operand type(s) for +: 'int' and 'str'");
}

TEST(ChatTemplateErrors, RuntimeErrorsPointAtTheFailingExpression) {
  TemplateError err = render_error("ok\n  {{ user.name.first }}", {{"user", json::object()}});
  EXPECT_EQ(err.kind, TemplateError::Kind::runtime);
  EXPECT_EQ(err.line, 2);
  EXPECT_EQ(err.column, 15);
  EXPECT_EQ(err.message, "'dict object' has no attribute 'name'");

  err = render_error("{% for m in messages %}\n{{ m.content + 1 }}{% endfor %}",
                     {{"messages", json::array({{{"content", "c"}}})}});
  EXPECT_EQ(err.line, 2);
  EXPECT_EQ(err.column, 14);
  EXPECT_EQ(err.message, "can only concatenate str (not \"int\") to str");

  err = render_error("{{ messages[0].role }}");
  EXPECT_EQ(err.message, "'messages' is undefined");
}

TEST(ChatTemplateErrors, BadContexts) {
  TemplateError err;
  auto out = render_template_json("{{ 1 }}", "{not json", &err);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(err.kind, TemplateError::Kind::runtime);
  EXPECT_NE(out.error().find("not valid JSON"), std::string::npos);
  out = render_template_json("{{ 1 }}", "[1, 2]");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("JSON object"), std::string::npos);
}

TEST(ChatTemplateApi, RenderTemplateJsonIsByteExact) {
  auto out = render_template_json("{{ messages[0].content }}|{{ x | tojson }}\n",
                                  R"({"messages": [{"content": "a\r\nb\u0000c"}], "x": {"b": 1, "a": [true, null]}})");
  ASSERT_TRUE(out.ok()) << out.error();
  std::string want = "a\r\nb";
  want += '\0';
  want += "c|{\"b\": 1, \"a\": [true, null]}";  // the source's one trailing newline is dropped
  EXPECT_EQ(*out, want);
}

TEST(ChatTemplateApi, MakeChatContext) {
  ChatContext c;
  c.messages = json::array({{{"role", "user"}, {"content", "hi"}}});
  c.bos_token = "<s>";
  c.eos_token = "</s>";
  c.add_generation_prompt = false;
  c.extra = {{"enable_thinking", false}, {"eos_token", "<eos>"}};
  json ctx = make_chat_context(c);
  EXPECT_EQ(ctx["messages"], c.messages);
  EXPECT_EQ(ctx["add_generation_prompt"], false);
  EXPECT_EQ(ctx["bos_token"], "<s>");
  EXPECT_EQ(ctx["eos_token"], "<eos>");  // extra variables win
  EXPECT_EQ(ctx["enable_thinking"], false);
  EXPECT_FALSE(ctx.contains("tools"));  // stays undefined in the template
  auto out = render_template("{{ tools is defined }}|{{ bos_token }}{{ messages | length }}", ctx);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "False|<s>1");

  c.tools = json::array({{{"type", "function"}}});
  ctx = make_chat_context(c);
  ASSERT_TRUE(ctx.contains("tools"));
  EXPECT_EQ(*render_template("{{ tools | length }}", ctx), "1");
}

TEST(ChatTemplateApi, ChatmlFallback) {
  auto t = ChatTemplate::parse(kChatmlTemplate);
  ASSERT_TRUE(t.ok()) << t.error();
  ChatContext c;
  // Content that is null (a tool call) or a list of parts still renders (expected: Python jinja2).
  c.messages = json::parse(R"([{"role": "system", "content": "S"},
      {"role": "user", "content": [{"type": "text", "text": "look "}, {"type": "image"}, {"type": "text", "text": "here"}]},
      {"role": "assistant", "content": null, "tool_calls": []}, {"role": "user", "content": "Q"}])");
  auto out = t->render(make_chat_context(c));
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nlook here<|im_end|>\n<|im_start|>assistant\n"
            "<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  c.add_generation_prompt = false;
  c.messages = json::parse(R"([{"role": "user", "content": "Hello"}])");
  EXPECT_EQ(*t->render(make_chat_context(c)), "<|im_start|>user\nHello<|im_end|>\n");
}

TEST(ChatTemplateApi, ParseOnceRenderManyAcrossThreads) {
  auto t = ChatTemplate::parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content | length %}"
      "{{ loop.index }}:{{ m.content }} {% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->source().substr(0, 6), "{% set");
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 200; ++i) {
        json ctx = {{"messages", json::array({{{"content", "ab"}}, {{"content", std::string(k + 1, 'x')}}})}};
        auto out = t->render(ctx);
        if (!out.ok()) return;
        results[k] = *out;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(results[k], "1:ab 2:" + std::string(k + 1, 'x') + " " + std::to_string(2 + k + 1));
}

}  // namespace
}  // namespace slim
