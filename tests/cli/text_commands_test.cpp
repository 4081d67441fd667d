// `slim tokenize`, `slim detokenize` and `slim template` end to end, against
// the shared reference vectors.
#include <nlohmann/json.hpp>

#include <fstream>

#include "test_util.h"

namespace slim {
namespace {

using test::run_command;

TEST(CliText, TokenizeVocabOnlyFile) {
  SLIM_SHARED_FILE(vocab, "tokenizer/ggml-vocab-llama-bpe.gguf");
  auto r = run_command(test::slim_binary() + " tokenize -m " + vocab + " -p 'Hello world' --no-bos");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "[9906,1917]\n");
  auto j = run_command(test::slim_binary() + " tokenize -m " + vocab + " -p 'Hello' --json");
  ASSERT_EQ(j.status, 0);
  auto o = nlohmann::json::parse(j.out);
  EXPECT_EQ(o["ids"], nlohmann::json({128000, 9906}));
  EXPECT_EQ(o["pieces"][1], "Hello");
}

TEST(CliText, JsonlBatchMatchesReference) {
  SLIM_SHARED_FILE(vocab, "tokenizer/ggml-vocab-qwen2.gguf");
  SLIM_SHARED_FILE(inp, "tokenizer/qwen2.extra.inp");
  SLIM_SHARED_FILE(out, "tokenizer/qwen2.extra.special.out");
  std::string all = test::read_file(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t p = 0, q; (q = all.find(sep, p)) != std::string::npos; p = q + sep.size()) inputs.push_back(all.substr(p, q - p));
  std::string lines_path = test::temp_dir() + "/in.jsonl";
  {
    std::ofstream f(lines_path);
    for (auto& s : inputs) f << nlohmann::json(s).dump() << "\n";
  }
  auto r = run_command(test::slim_binary() + " tokenize -m " + vocab + " --jsonl --no-bos --parse-special < " + lines_path);
  ASSERT_EQ(r.status, 0);
  std::istringstream got(r.out), want(test::read_file(out));
  std::string g, w;
  size_t n = 0;
  while (std::getline(want, w)) {
    ASSERT_TRUE(std::getline(got, g));
    std::vector<int> ids;
    std::istringstream ws(w);
    int id;
    while (ws >> id) ids.push_back(id);
    EXPECT_EQ(nlohmann::json::parse(g).get<std::vector<int>>(), ids) << "input " << n;
    ++n;
  }
  EXPECT_EQ(n, inputs.size());
}

TEST(CliText, Detokenize) {
  SLIM_SHARED_FILE(vocab, "tokenizer/ggml-vocab-llama-spm.gguf");
  auto r = run_command(test::slim_binary() + " detokenize -m " + vocab + " --ids 15043,3186");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "Hello world");
  auto bad = run_command(test::slim_binary() + " detokenize -m " + vocab + " --ids 1,999999 2>&1");
  EXPECT_EQ(bad.status, 1);
}

TEST(CliText, TemplateRendersSharedCasesByteExact) {
  SLIM_SHARED_FILE(tmpl, "chat/meta-llama-Llama-3.2-3B-Instruct.jinja");
  SLIM_SHARED_FILE(cases_path, "chat/meta-llama-Llama-3.2-3B-Instruct.cases.json");
  auto cases = nlohmann::ordered_json::parse(test::read_file(cases_path));
  int checked = 0;
  for (auto& c : cases) {
    std::string ctx = test::temp_dir() + "/ctx.json";
    std::ofstream(ctx) << c["context"].dump();
    auto r = run_command(test::slim_binary() + " template --template " + tmpl + " --context " + ctx + " 2>&1");
    if (c.contains("expected")) {
      EXPECT_EQ(r.status, 0) << c["name"];
      EXPECT_EQ(r.out, c["expected"].get<std::string>()) << c["name"];
    } else {
      EXPECT_EQ(r.status, 1) << c["name"];
      EXPECT_EQ(r.out, c["expected_error"].get<std::string>() + "\n") << c["name"];
    }
    ++checked;
  }
  EXPECT_GT(checked, 5);
}

TEST(CliText, TemplateFromModelWithoutOneIsAnError) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  std::string ctx = test::temp_dir() + "/ctx2.json";
  std::ofstream(ctx) << R"({"messages":[{"role":"user","content":"hi"}]})";
  auto r = run_command(test::slim_binary() + " template -m " + model + " --context " + ctx + " 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no tokenizer.chat_template"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace slim
