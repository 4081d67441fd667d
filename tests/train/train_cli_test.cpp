// `slim train` and `slim distill` end to end: an exported student loads and
// runs in `slim run`, the run is quiet when piped and its JSON log has a line a
// step, and bad input is one line on stderr, exit status 1 and no output file.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "gguf/gguf.h"
#include "train_test_util.h"

namespace slim {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using train::test_util::files_in;
using train::test_util::fresh_dir;

const char* kStories = "models/stories260K.gguf";
const std::string kText = std::string(SLIM_SOURCE_DIR) + "/tests/train/data/stories.txt";
// A student small enough that a few steps take well under a second.
const char* kTinyShape = "dim=16,layers=1,heads=2,kv_heads=1,ffn=32";

struct Cli {
  int status;
  std::string out, err;
};

Cli run_slim(const std::string& dir, const std::string& args) {
  const std::string err_path = dir + "/stderr.txt";
  auto r = run_command(test::slim_binary() + " " + args + " 2>" + err_path);
  Cli c{r.status, r.out, test::read_file(err_path)};
  fs::remove(err_path);
  return c;
}

int64_t meta_int(const GgufFile& f, const std::string& key) { return f.get_int(key).value_or(-1); }

TEST(TrainCli, DistilledStudentLoadsInSlimRun) {
  SLIM_SHARED_FILE(teacher, kStories);
  const std::string dir = fresh_dir("cli-distill");
  const std::string out = dir + "/student.gguf", log = dir + "/log.jsonl";
  auto r = run_slim(dir, "distill --teacher " + teacher + " --student-shape " + kTinyShape +
                             " --teacher-samples 8 --ctx 32 --batch 2 --steps 3 --eval-fraction 0 -t 2 --json-log " +
                             log + " -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");  // no progress line when piped
  EXPECT_NE(r.out.find("3 steps"), std::string::npos) << r.out;
  // The export and nothing half-written beside it (no --save-every: no checkpoint).
  EXPECT_EQ(files_in(dir), (std::vector<std::string>{"log.jsonl", "student.gguf"}));

  std::istringstream lines(test::read_file(log));
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"], n + 1);
    EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
    EXPECT_TRUE(j.contains("kl") && j.contains("ce") && j.contains("tokens_per_s")) << line;
  }
  EXPECT_EQ(n, 3);

  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(meta_int(**f, "llama.embedding_length"), 16);
  EXPECT_EQ(meta_int(**f, "llama.block_count"), 1);
  EXPECT_EQ(meta_int(**f, "llama.context_length"), 32);  // the positions it was trained on
  auto t = GgufFile::open(teacher);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(f.value()->get_array("tokenizer.ggml.tokens")->strings,
            t.value()->get_array("tokenizer.ggml.tokens")->strings);

  auto run = run_command(test::slim_binary() + " run -m " + out + " -p 'Once upon' -n 8 --temp 0 --json 2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(nlohmann::json::parse(run.out)["tokens"].size(), 8u);
}

TEST(TrainCli, ContinuedTrainingExportsAQuantizedModel) {
  SLIM_SHARED_FILE(init, kStories);
  const std::string dir = fresh_dir("cli-train");
  const std::string out = dir + "/q8.gguf";
  auto r = run_slim(dir, "train -m " + init + " -f " + kText + " --ctx 64 --batch 2 --steps 2 --type Q8_0 -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.error();
  const TensorInfo* q = f.value()->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::Q8_0);
  auto run = run_command(test::slim_binary() + " run -m " + out + " -p 'Tom' -n 4 --temp 0 --json 2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
}

TEST(TrainCli, BadInputIsOneLineAndNoFile) {
  SLIM_SHARED_FILE(teacher, kStories);
  SLIM_SHARED_FILE(bpe_vocab, "tokenizer/ggml-vocab-llama-bpe.gguf");
  const std::string dir = fresh_dir("cli-bad");
  // A student with another tokenizer (Llama 3's): made by slim train itself.
  const std::string other_vocab = dir + "/other-vocab.gguf";
  auto made = run_slim(dir, "train --shape dim=8,layers=1,heads=2,kv_heads=1,ffn=8 --vocab-from " + bpe_vocab +
                                " -f " + kText + " --ctx 16 --batch 1 --steps 1 --eval-fraction 0 -o " + other_vocab);
  ASSERT_EQ(made.status, 0) << made.err;

  const std::string out = dir + "/out.gguf", f = " -f " + kText, tiny = std::string(" --student-shape ") + kTinyShape;
  const std::string distill = "distill --teacher " + teacher, train = "train -m " + teacher;
  struct Case {
    std::string args, expect;
  } cases[] = {
      {distill + " --student " + other_vocab + f + " -o " + out, "the vocabularies differ"},
      {distill + " --student " + other_vocab + " --teacher-samples 2 -o " + out, "the student must use the teacher's"},
      {"train --shape dim=65,layers=1,heads=8,kv_heads=4,ffn=64 --vocab-from " + teacher + f + " -o " + out,
       "dim 65 is not a multiple of heads 8"},
      {"train --shape dim=64,layers=1,heads=8,kv_heads=3,ffn=64 --vocab-from " + teacher + f + " -o " + out,
       "heads 8 is not a multiple of kv_heads 3"},
      {distill + " --student-shape dim=64,layers=1,heads=6,kv_heads=3,ffn=64" + f + " -o " + out,
       "dim 64 is not a multiple of heads 6"},
      {"train --shape dim=64,layers=1,heads=4,ffn=64,colour=red --vocab-from " + teacher + f + " -o " + out,
       "unknown key 'colour'"},
      {"train --shape dim=64,layers=1,heads=4,kv_heads=4,ffn=64" + f + " -o " + out, "--shape needs --vocab-from"},
      {"train -m /nonexistent/init.gguf" + f + " -o " + out, "/nonexistent/init.gguf"},
      {train + " -f /nonexistent/text.txt -o " + out, "/nonexistent/text.txt"},
      {"distill --teacher /nonexistent/teacher.gguf" + tiny + f + " -o " + out, "/nonexistent/teacher.gguf"},
      {distill + " --student /nonexistent/student.gguf" + f + " -o " + out, "/nonexistent/student.gguf"},
      {distill + f + " -o " + out, "exactly one of --student and --student-shape"},
      {distill + tiny + " -o " + out, "exactly one of -f TEXT and --teacher-samples N"},
      {distill + tiny + f + " --teacher-samples 4 -o " + out, "exactly one of -f TEXT and --teacher-samples N"},
      {train + f + " --steps 0 -o " + out, "--steps must be at least 1"},
      {train + f + " --ctx 4096 -o " + out, "fewer than one training sequence"},
      {train + f + " --type Q9_9 -o " + out, "--type: unknown type 'Q9_9'"},
      {distill + tiny + f + " --alpha 1.5 -o " + out, "--alpha must be in [0, 1]"},
      {distill + tiny + f + " --temperature 0 -o " + out, "--temperature must be positive"},
      {train + f + " --resume " + dir + "/none.ckpt -o " + out, "none.ckpt"},
  };
  for (const Case& c : cases) {
    auto r = run_slim(dir, c.args);
    EXPECT_EQ(r.status, 1) << c.args;
    EXPECT_EQ(r.err.rfind("slim: error: ", 0), 0u) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.args;
    EXPECT_FALSE(fs::exists(out + ".ckpt")) << c.args;
  }
}

}  // namespace
}  // namespace slim
