// Real tool-use templates of ../shared/chat/more: every one parses and
// renders ordinary conversations (turns, a tools list, a tool call and its
// result), and matches the renders Python jinja2 produced for them
// (more_templates_golden.json, made by make_golden.py).
#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat/template.h"
#include "test_util.h"

namespace slim {
namespace {

using json = nlohmann::ordered_json;

std::vector<std::string> more_templates() {
  std::vector<std::string> files;
  std::string dir = test::shared_path("chat/more");
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".jinja") files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  return files;
}

json tools() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_current_weather",
      "description": "Get the current weather in a given location",
      "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"}},
        "required": ["location"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Get the local time",
      "parameters": {"type": "object", "properties": {"timezone": {"type": "string", "description": "IANA name"}},
        "required": ["timezone"]}}}])");
}

json chat_messages() {
  return json::parse(R"([
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Japan? 日本"}])");
}

json tool_messages(bool string_arguments) {
  json args = {{"location", "Paris, France"}, {"unit", "celsius"}};
  json m = json::array();
  m.push_back({{"role", "user"}, {"content", "Weather in Paris?"}});
  json call = {{"id", "call00001"},
               {"type", "function"},
               {"function", {{"name", "get_current_weather"}, {"arguments", string_arguments ? json(args.dump()) : args}}}};
  m.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({call})}});
  m.push_back({{"role", "tool"}, {"tool_call_id", "call00001"}, {"name", "get_current_weather"},
               {"content", "{\"temperature\": 22}"}});
  m.push_back({{"role", "assistant"}, {"content", "It is 22 degrees."}});
  return m;
}

json context(json messages, bool with_tools) {
  ChatContext c;
  c.messages = std::move(messages);
  c.bos_token = "<s>";
  c.eos_token = "</s>";
  if (with_tools) c.tools = tools();
  // firefunction-v2 reads these.
  c.extra = {{"functions", tools().dump()}, {"datetime", "2024-07-26"}};
  return make_chat_context(c);
}

// Python jinja2 itself fails these renders; slim must fail the same way.
const std::map<std::string, std::string> kReferenceFailuresWithTools = {
    // `tools | map(...)` is a generator in jinja2, and json.dumps rejects it.
    {"llama-cpp-deepseek-r1.jinja", "Object of type generator is not JSON serializable"},
};

void expect_contains(const std::string& out, const std::string& what, const std::string& label) {
  EXPECT_NE(out.find(what), std::string::npos) << label << ": output lacks '" << what << "'\n" << out;
}

TEST(ChatMoreTemplates, FolderIsThere) { EXPECT_GE(more_templates().size(), 10u); }

TEST(ChatMoreTemplates, RenderOrdinaryConversations) {
  for (const std::string& name : more_templates()) {
    SLIM_SHARED_FILE(path, "chat/more/" + name);
    auto tmpl = ChatTemplate::parse(test::read_file(path));
    ASSERT_TRUE(tmpl.ok()) << name << ": " << tmpl.error();

    auto chat = tmpl->render(context(chat_messages(), false));
    ASSERT_TRUE(chat.ok()) << name << ": " << chat.error();
    for (const char* s : {"You are a terse assistant.", "What is the capital of France?", "Paris.", "And of Japan? 日本"})
      expect_contains(*chat, s, name);

    auto failure = kReferenceFailuresWithTools.find(name);
    auto with_tools = tmpl->render(context(chat_messages(), true));
    if (failure != kReferenceFailuresWithTools.end()) {
      ASSERT_FALSE(with_tools.ok()) << name;
      EXPECT_NE(with_tools.error().find(failure->second), std::string::npos) << with_tools.error();
      continue;
    }
    ASSERT_TRUE(with_tools.ok()) << name << ": " << with_tools.error();
    expect_contains(*with_tools, "And of Japan? 日本", name);
    // A template that ignores `tools` (DeepSeek-R1 distills) renders as without them.
    if (*with_tools != *chat) {
      expect_contains(*with_tools, "get_current_weather", name);
      expect_contains(*with_tools, "get_time", name);
    }

    // Arguments as an object (tojson templates) or as JSON text (templates that concatenate them).
    auto calls = tmpl->render(context(tool_messages(false), true));
    if (!calls.ok()) calls = tmpl->render(context(tool_messages(true), true));
    ASSERT_TRUE(calls.ok()) << name << ": " << calls.error();
    expect_contains(*calls, "Weather in Paris?", name);
    expect_contains(*calls, "get_current_weather", name);
    expect_contains(*calls, "Paris, France", name);
    expect_contains(*calls, "22", name);
    expect_contains(*calls, "It is 22 degrees.", name);
  }
}

TEST(ChatMoreTemplates, MatchPythonJinjaRenders) {
  std::string golden_path = std::string(SLIM_SOURCE_DIR) + "/tests/chat/more_templates_golden.json";
  ASSERT_TRUE(std::filesystem::exists(golden_path)) << golden_path;
  auto golden = json::parse(test::read_file(golden_path));
  ASSERT_GE(golden.size(), 30u);
  std::map<std::string, int> per_template;
  for (const auto& g : golden) {
    std::string rel = g.at("template");
    SLIM_SHARED_FILE(path, rel);
    auto out = render_template(test::read_file(path), g.at("context"));
    std::string label = rel + " / " + g.value("name", "");
    ASSERT_TRUE(out.ok()) << label << ": " << out.error();
    EXPECT_EQ(*out, g.at("expected").get<std::string>()) << label;
    ++per_template[rel];
  }
  // Every template of the folder has reference renders.
  for (const std::string& name : more_templates()) EXPECT_GE(per_template["chat/more/" + name], 2) << name;
}

}  // namespace
}  // namespace slim
