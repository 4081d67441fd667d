// Bad input never crashes the engine: mangled real templates, hostile
// nesting, self-referencing values and resource limits all come back as
// errors (or renders), on small thread stacks too.
#include <pthread.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "chat/template.h"
#include "test_util.h"

namespace slim {
namespace {

using json = nlohmann::ordered_json;

std::vector<std::string> all_templates() {
  std::vector<std::string> out;
  for (const char* sub : {"chat", "chat/more"}) {
    std::string dir = test::shared_path(sub);
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".jinja") out.push_back(test::read_file(e.path().string()));
  }
  return out;
}

json conversation() {
  return json::parse(R"({"bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
    "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                 {"role": "assistant", "content": "A"}, {"role": "user", "content": "U2"}]})");
}

// Runs `fn` on a thread with a 256 KiB stack, like a small server worker.
void on_small_stack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t th;
  auto call = [](void* p) -> void* {
    (*static_cast<const std::function<void()>*>(p))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&th, &attr, call, const_cast<std::function<void()>*>(&fn)), 0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
}

TEST(ChatRobustness, MangledRealTemplatesFailCleanly) {
  auto templates = all_templates();
  ASSERT_FALSE(templates.empty());
  std::mt19937 rng(1234);
  const std::string pieces[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "(", ")", "[", "]", "'", "\"", "|",
                                "endif", "endfor", "loop", " is ", " not ", ".", ",", "\\", "\n", "\xff"};
  json ctx = conversation();
  size_t parsed = 0, rendered = 0, runs = 0;
  for (const std::string& src : templates) {
    for (int i = 0; i < 40; ++i) {
      std::string s = src;
      std::uniform_int_distribution<size_t> pos(0, s.size());
      switch (i % 4) {
        case 0: s.resize(pos(rng)); break;
        case 1: s.insert(pos(rng), pieces[rng() % std::size(pieces)]); break;
        case 2: {
          size_t p = pos(rng);
          s.erase(p, std::min<size_t>(s.size() - p, 1 + rng() % 8));
          break;
        }
        case 3:
          for (int k = 0; k < 3; ++k) s.insert(pos(rng), pieces[rng() % std::size(pieces)]);
          break;
      }
      ++runs;
      auto t = ChatTemplate::parse(s);
      if (!t.ok()) {
        EXPECT_FALSE(t.error().empty());
        continue;
      }
      ++parsed;
      auto out = t->render(ctx);
      if (out.ok()) ++rendered;
    }
  }
  // Both outcomes occur: the mutations are not all rejected up front.
  EXPECT_GT(parsed, runs / 10);
  EXPECT_GT(rendered, 0u);
}

TEST(ChatRobustness, HostileNestingIsAnError) {
  std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  chain += " }}";
  std::string attrs = "{{ x";
  for (int i = 0; i < 20000; ++i) attrs += ".a";
  attrs += " }}";
  std::string blocks;
  for (int i = 0; i < 3000; ++i) blocks += "{% if 1 %}";
  std::string nots = "{{ ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  nots += "1 }}";
  for (const std::string& s : {parens, chain, attrs, blocks, nots}) {
    on_small_stack([&] {
      TemplateError err;
      auto t = ChatTemplate::parse(s, &err);
      EXPECT_FALSE(t.ok());
      EXPECT_EQ(err.kind, TemplateError::Kind::syntax);
      EXPECT_NE(err.message.find("too deep"), std::string::npos) << err.message;
    });
  }
  // Moderate nesting still works.
  auto ok = render_template("{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}", json::object());
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(*ok, "1");
}

TEST(ChatRobustness, DeepRecursionIsAnError) {
  const std::string macro = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
  const std::string loop = "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}";
  for (const std::string& s : {macro, loop}) {
    auto out = render_template(s, json::object());
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.error().find("recursion"), std::string::npos) << out.error();
    on_small_stack([&] {
      auto small = render_template(s, json::object());
      ASSERT_FALSE(small.ok());
      EXPECT_TRUE(small.error().find("recursion") != std::string::npos ||
                  small.error().find("stack") != std::string::npos)
          << small.error();
    });
  }
  auto out = render_template("{% macro f(n) %}{% if n %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) | length }}",
                             json::object());
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "51");
}

TEST(ChatRobustness, RealTemplatesRenderOnSmallStacks) {
  size_t checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::shared_path("chat"))) {
    std::string file = e.path().string();
    const std::string suffix = ".cases.json";
    if (file.size() < suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    auto cases = json::parse(test::read_file(file));
    std::string source = test::read_file(file.substr(0, file.size() - suffix.size()) + ".jinja");
    for (const auto& c : cases) {
      if (!c.contains("expected")) continue;
      on_small_stack([&] {
        auto out = render_template(source, c["context"]);
        ASSERT_TRUE(out.ok()) << file << ": " << out.error();
        EXPECT_EQ(*out, c["expected"].get<std::string>()) << file;
      });
      ++checked;
    }
  }
  EXPECT_GT(checked, 50u);
}

TEST(ChatRobustness, DeepOrCyclicValues) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto out = render_template_json("{{ x | length }}", "{\"x\": " + deep + "}");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("nests too deeply"), std::string::npos) << out.error();

  out = render_template(
      "{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
      json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("nest too deeply"), std::string::npos) << out.error();

  // A namespace holding itself prints like Python's recursive repr.
  out = render_template("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}|{{ ns.me.me.me is defined }}",
                        json::object());
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "<Namespace {'me': <Namespace {...}>}>|True");
}

TEST(ChatRobustness, ResourceLimits) {
  auto out = render_template("{{ range(100001) | length }}", json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("MAX_RANGE"), std::string::npos) << out.error();
  out = render_template("{{ 'x' * 1000000000 }}", json::object());
  ASSERT_FALSE(out.ok());
  out = render_template("{{ 10 ** 40 }}", json::object());  // Python has big integers; slim reports overflow
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("overflow"), std::string::npos) << out.error();
}

}  // namespace
}  // namespace slim
