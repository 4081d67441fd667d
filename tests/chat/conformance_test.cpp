// Conformance with Python jinja2: every *.cases.json in ../shared/chat
// renders its template to exactly `expected`, or fails with exactly
// `expected_error` (the template's raise_exception message).
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat/template.h"
#include "test_util.h"

namespace slim {
namespace {

std::vector<std::string> case_files() {
  std::vector<std::string> files;
  std::string dir = test::shared_path("chat");
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    const std::string suffix = ".cases.json";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      files.push_back(name.substr(0, name.size() - suffix.size()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ChatConformance, SharedFolderHasCases) {
  SLIM_SHARED_FILE(readme, "chat/README.md");
  EXPECT_GE(case_files().size(), 7u) << "expected the seven case files of ../shared/chat";
}

TEST(ChatConformance, EveryCaseMatchesPythonJinja) {
  size_t total = 0, passed = 0;
  std::vector<std::string> failures;
  for (const std::string& name : case_files()) {
    SLIM_SHARED_FILE(template_path, "chat/" + name + ".jinja");
    SLIM_SHARED_FILE(cases_path, "chat/" + name + ".cases.json");
    auto cases = nlohmann::ordered_json::parse(test::read_file(cases_path));
    ASSERT_TRUE(cases.is_array()) << cases_path;
    auto tmpl = ChatTemplate::parse(test::read_file(template_path));
    ASSERT_TRUE(tmpl.ok()) << name << ": " << tmpl.error();
    for (const auto& c : cases) {
      ++total;
      std::string label = name + "/" + c.value("name", "?");
      TemplateError err;
      auto out = tmpl->render(c.at("context"), &err);
      if (c.contains("expected_error")) {
        std::string want = c["expected_error"];
        if (!out.ok() && out.error() == want && err.kind == TemplateError::Kind::raised) {
          ++passed;
        } else {
          failures.push_back(label + ": want error '" + want + "', got " +
                             (out.ok() ? "output '" + *out + "'" : "error '" + out.error() + "'"));
        }
        continue;
      }
      std::string want = c.at("expected");
      if (out.ok() && *out == want) {
        ++passed;
      } else {
        failures.push_back(label + ":\n  want: " + nlohmann::json(want).dump() + "\n  got:  " +
                           (out.ok() ? nlohmann::json(*out).dump() : "error " + out.error()));
      }
    }
  }
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_GT(total, 0u);
  EXPECT_EQ(passed, total) << passed << "/" << total << " cases pass";
  std::printf("[ conformance ] %zu/%zu cases pass\n", passed, total);
}

}  // namespace
}  // namespace slim
