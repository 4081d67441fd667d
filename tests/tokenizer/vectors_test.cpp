// Conformance of the tokenizer against ids produced by other implementations:
// ../shared/tokenizer (Hugging Face base vectors, llama.cpp extra vectors) for
// every family found in the folder, round trips on every vocab there, and the
// stories260K prompt tokens of ../shared/golden.
#include <nlohmann/json.hpp>

#include "tokenizer_test_util.h"

namespace slim::test {
namespace {

// Compares every line; reports each mismatch with its input.
void expect_vectors(const Tokenizer& tok, const std::vector<std::string>& inputs,
                    const std::vector<std::vector<int32_t>>& expected, bool parse_special, const std::string& what) {
  ASSERT_EQ(inputs.size(), expected.size()) << what << ": input and output line counts differ";
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = tok.tokenize(inputs[i], /*add_special=*/false, parse_special);
    if (got != expected[i]) {
      ++failures;
      ADD_FAILURE() << what << " line " << i << " input " << testing::PrintToString(inputs[i]) << "\n  expected:"
                    << ids_to_string(expected[i]) << "\n  got:     " << ids_to_string(got);
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << inputs.size() << " strings differ";
}

TEST(TokenizerVectors, FolderHasFamilies) {
  SLIM_SHARED_FILE(readme, "tokenizer/README.md");
  EXPECT_GE(families_with_vectors().size(), 8u) << "expected the eight families of " << readme;
}

class FamilyVectors : public testing::TestWithParam<std::string> {};

TEST_P(FamilyVectors, BaseStrings) {
  const std::string f = GetParam();
  SLIM_SHARED_FILE(inp, "tokenizer/ggml-vocab-" + f + ".gguf.inp");
  SLIM_SHARED_FILE(out, "tokenizer/ggml-vocab-" + f + ".gguf.out");
  std::string err;
  auto tok = load_shared_tokenizer("tokenizer/ggml-vocab-" + f + ".gguf", &err);
  ASSERT_TRUE(tok) << err;
  const auto inputs = parse_inp(read_file(inp));
  EXPECT_GE(inputs.size(), 1u);
  expect_vectors(*tok, inputs, parse_out(read_file(out)), false, f + " base");
}

TEST_P(FamilyVectors, ExtraStrings) {
  const std::string f = GetParam();
  const std::string extra_inp = shared_path("tokenizer/" + f + ".extra.inp");
  if (!std::filesystem::exists(extra_inp)) GTEST_SKIP() << "no extra vectors for " << f;
  SLIM_SHARED_FILE(plain, "tokenizer/" + f + ".extra.out");
  SLIM_SHARED_FILE(special, "tokenizer/" + f + ".extra.special.out");
  std::string err;
  auto tok = load_shared_tokenizer("tokenizer/ggml-vocab-" + f + ".gguf", &err);
  ASSERT_TRUE(tok) << err;
  const auto inputs = parse_inp(read_file(extra_inp));
  expect_vectors(*tok, inputs, parse_out(read_file(plain)), false, f + " extra");
  expect_vectors(*tok, inputs, parse_out(read_file(special)), true, f + " extra.special");
}

INSTANTIATE_TEST_SUITE_P(Shared, FamilyVectors, testing::ValuesIn(families_with_vectors()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FamilyVectors);

// Every input string of the folder (base and extra sets, deduplicated).
std::vector<std::string> all_inputs() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tokenizer_dir(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".inp") == 0)
      for (auto& s : parse_inp(read_file(e.path().string()))) out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

class VocabFile : public testing::TestWithParam<std::string> {};

// detokenize(tokenize(s)) == s: every family here is lossless (byte-level BPE
// by construction; SPM through byte fallback, with its added space removed).
TEST_P(VocabFile, RoundTrip) {
  std::string err;
  auto tok = load_shared_tokenizer("tokenizer/" + GetParam(), &err);
  ASSERT_TRUE(tok) << err;
  const auto inputs = all_inputs();
  ASSERT_GE(inputs.size(), 46u);
  for (bool parse_special : {false, true}) {
    int failures = 0;
    for (const auto& s : inputs) {
      const auto ids = tok->tokenize(s, false, parse_special);
      const std::string back = tok->detokenize(ids);
      if (back != s && ++failures <= 5)
        ADD_FAILURE() << GetParam() << " parse_special=" << parse_special << " input "
                      << testing::PrintToString(s) << " came back as " << testing::PrintToString(back);
    }
    EXPECT_EQ(failures, 0) << GetParam() << " parse_special=" << parse_special;
  }
}

// With BOS added, remove_special drops it again and the text is unchanged.
TEST_P(VocabFile, RoundTripWithSpecial) {
  std::string err;
  auto tok = load_shared_tokenizer("tokenizer/" + GetParam(), &err);
  ASSERT_TRUE(tok) << err;
  const std::string s = "Hello world, 123 times!\n  Indented\tline.";
  const auto ids = tok->tokenize(s, /*add_special=*/true, false);
  if (tok->add_bos()) {
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), tok->bos());
  }
  EXPECT_EQ(tok->detokenize(ids, /*remove_special=*/true), s);
}

INSTANTIATE_TEST_SUITE_P(Shared, VocabFile, testing::ValuesIn(all_vocab_files()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(VocabFile);

// The vocabularies without vectors must be present and load with the
// pre-tokenizer their metadata names.
TEST(TokenizerVectors, ExtraVocabsLoad) {
  struct Want { const char* file; const char* model; const char* pre; };
  for (const Want& w : {Want{"deepseek-coder", "gpt2", "deepseek-coder"}, Want{"mpt", "gpt2", "mpt"},
                        Want{"refact", "gpt2", "refact"}, Want{"baichuan", "llama", ""}, Want{"gpt-neox", "gpt2", ""}}) {
    SLIM_SHARED_FILE(path, std::string("tokenizer/ggml-vocab-") + w.file + ".gguf");
    std::string err;
    auto tok = load_shared_tokenizer(std::string("tokenizer/ggml-vocab-") + w.file + ".gguf", &err);
    ASSERT_TRUE(tok) << w.file << ": " << err;
    EXPECT_EQ(tok->model(), w.model) << w.file;
    EXPECT_EQ(tok->pre(), w.pre) << w.file;
    EXPECT_FALSE(tok->tokenize("Hello world", false, false).empty()) << w.file;
  }
}

// Behaviour that follows from each extra vocab's pre-tokenizer and vocab.
TEST(TokenizerVectors, ExtraVocabsBehaviour) {
  std::string err;
  // refact and deepseek-coder split digits one by one.
  for (const char* f : {"refact", "deepseek-coder"}) {
    auto tok = load_shared_tokenizer(std::string("tokenizer/ggml-vocab-") + f + ".gguf", &err);
    ASSERT_TRUE(tok) << err;
    const auto ids = tok->tokenize("12345", false, false);
    ASSERT_EQ(ids.size(), 5u) << f;
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(tok->token_to_piece(ids[i]), std::string(1, char('1' + i))) << f;
  }
  // mpt and gpt-neox have user-defined whitespace-run tokens, matched whole.
  for (const char* f : {"mpt", "gpt-neox"}) {
    auto tok = load_shared_tokenizer(std::string("tokenizer/ggml-vocab-") + f + ".gguf", &err);
    ASSERT_TRUE(tok) << err;
    const int32_t four = tok->find_token("    ");
    ASSERT_GE(four, 0) << f;
    const auto ids = tok->tokenize("x    y", false, false);
    EXPECT_NE(std::find(ids.begin(), ids.end(), four), ids.end()) << f << ":" << ids_to_string(ids);
    EXPECT_TRUE(tok->is_eog(tok->eos())) << f;
  }
  // gpt-neox has no pre key: llama.cpp's default pre-tokenizer, which cuts
  // digit runs into groups of three.
  {
    auto tok = load_shared_tokenizer("tokenizer/ggml-vocab-gpt-neox.gguf", &err);
    ASSERT_TRUE(tok) << err;
    const auto ids = tok->tokenize("1234567", false, false);
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tok->token_to_piece(id));
    ASSERT_GE(pieces.size(), 3u);
    EXPECT_EQ(tok->detokenize(ids), "1234567");
    for (const auto& p : pieces) EXPECT_LE(p.size(), 3u) << p;
  }
  // baichuan is SentencePiece: BOS added, space prefix, byte fallback.
  {
    auto tok = load_shared_tokenizer("tokenizer/ggml-vocab-baichuan.gguf", &err);
    ASSERT_TRUE(tok) << err;
    EXPECT_TRUE(tok->add_bos());
    const auto ids = tok->tokenize("Hello", true, false);
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(ids[0], tok->bos());
    EXPECT_EQ(tok->token_to_piece(ids[1])[0], ' ');
  }
}

// Prompt tokens of the real stories260K model, as llama.cpp produced them
// (add_special=true, parse_special=true).
TEST(TokenizerVectors, Stories260kPrompts) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  SLIM_SHARED_FILE(prompts_path, "golden/prompts.txt");
  SLIM_SHARED_FILE(golden_path, "golden/stories260K.json");
  auto tok = Tokenizer::from_file(model);
  ASSERT_TRUE(tok) << tok.error();
  std::vector<std::string> prompts;
  {
    std::istringstream lines(read_file(prompts_path));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      std::string p;
      for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'n') {
          p += '\n';
          ++i;
        } else {
          p += line[i];
        }
      }
      prompts.push_back(p);
    }
  }
  const auto golden = nlohmann::json::parse(read_file(golden_path));
  const auto& cases = golden.at("cases");
  ASSERT_EQ(cases.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(cases[i].at("prompt").get<std::string>(), prompts[i]) << "case " << i;
    const auto want = cases[i].at("tokens").get<std::vector<int32_t>>();
    const auto got = (*tok)->tokenize(prompts[i], /*add_special=*/true, /*parse_special=*/true);
    EXPECT_EQ(got, want) << "case " << i << "\n  expected:" << ids_to_string(want) << "\n  got:     "
                         << ids_to_string(got);
  }
}

}  // namespace
}  // namespace slim::test
