// The router's commands run as a user runs them: `slim route calibrate`
// writes thresholds to the config, `explain` and `decide --jsonl` report the
// signals and the decision, `train` stores a classifier the config then uses,
// and `slim run --route auto` sends what the local model cannot do to a
// recording server on 127.0.0.1 — redacted, audited, with the answer printed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "recording_server.h"
#include "route/audit.h"
#include "test_util.h"

namespace slim {
namespace {

using json = nlohmann::json;

struct Home {
  std::string dir;
  Home() {
    static int n = 0;
    dir = test::temp_dir() + "/route-cli-" + std::to_string(++n);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  test::RunResult slim(const std::string& args, const std::string& stdin_file = "") const {
    std::string cmd = "SLIM_HOME='" + dir + "' " + test::slim_binary() + " " + args;
    if (!stdin_file.empty()) cmd += " < '" + stdin_file + "'";
    return test::run_command(cmd);
  }
};

std::string stories() { return test::shared_path("models/stories260K.gguf"); }

TEST(RouteCli, CalibrateExplainDecide) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  SLIM_SHARED_FILE(train, "route/routing-train.jsonl");
  Home h;
  auto c = h.slim("route calibrate -m " + model + " " + train + " --target-local 0.85");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("accuracy"), std::string::npos) << c.out;
  const std::string cfg = test::read_file(h.dir + "/config.toml");
  EXPECT_NE(cfg.find("max_prompt_nll"), std::string::npos) << cfg;
  // The calibrated threshold lies between the story prompts and the rest.
  auto e = h.slim("route explain -m " + model + " --json \"Write a C function to reverse a linked list.\"");
  ASSERT_EQ(e.status, 0) << e.out;
  json ej = json::parse(e.out);
  EXPECT_EQ(ej["decision"], "remote");
  EXPECT_GT(ej["signals"]["nll_mean"].get<double>(), 0.0);
  const std::string in = h.dir + "/prompts.jsonl";
  std::ofstream(in) << "\"Once there was a little cat who liked to play.\"\n\"Wie funktioniert ein Kühlschrank?\"\n";
  auto d = h.slim("route decide -m " + model + " --jsonl", in);
  ASSERT_EQ(d.status, 0) << d.out;
  std::istringstream lines(d.out);
  std::vector<json> out;
  for (std::string l; std::getline(lines, l);) out.push_back(json::parse(l));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["decision"], "local");
  EXPECT_EQ(out[1]["decision"], "remote");
  EXPECT_TRUE(out[1]["signals"].contains("perplexity"));
  // Bad input: one line, status 1.
  std::ofstream(in) << "not json\n";
  auto bad = test::run_command("SLIM_HOME='" + h.dir + "' " + test::slim_binary() + " route decide -m " + model +
                               " --jsonl < '" + in + "'", true);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("line 1"), std::string::npos) << bad.out;
}

TEST(RouteCli, TrainedClassifierIsUsed) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  SLIM_SHARED_FILE(train, "route/routing-train.jsonl");
  Home h;
  auto t = h.slim("route train -m " + model + " " + train);
  ASSERT_EQ(t.status, 0) << t.out;
  EXPECT_TRUE(std::filesystem::exists(h.dir + "/route-classifier.json"));
  auto e = h.slim("route explain -m " + model + " --json \"Explain the causes of the French Revolution.\"");
  ASSERT_EQ(e.status, 0) << e.out;
  json ej = json::parse(e.out);
  EXPECT_TRUE(ej["signals"].contains("classifier_p")) << e.out;
  EXPECT_NE(ej["reason"].get<std::string>().find("classifier"), std::string::npos);
}

TEST(RouteCli, RunRouteAutoEscalatesThroughTheGuard) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  test::RecordingServer rec;
  ASSERT_TRUE(rec.start());
  Home h;
  const std::string remote = " --remote-url " + rec.base_url() + " --remote-model big --remote-name cloud --policy auto";
  auto r = h.slim("run --route auto -m " + model + " --temp 0 -n 8 -p \"Write a SQL query for the orders of jane@corp.example\"" + remote);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("echo: Write a SQL query for the orders of jane@corp.example"), std::string::npos) << r.out;
  ASSERT_EQ(rec.request_count(), 1u);
  EXPECT_EQ(rec.requests()[0].body.find("jane@corp.example"), std::string::npos);
  EXPECT_NE(rec.requests()[0].body.find("[EMAIL_1]"), std::string::npos);
  // A story stays here.
  auto s = h.slim("run --route auto -m " + model + " --temp 0 -n 8 --json -p \"Once there was a little girl who\"" + remote);
  ASSERT_EQ(s.status, 0) << s.out;
  json sj = json::parse(s.out);
  EXPECT_EQ(sj["backend"], "local");
  EXPECT_EQ(sj["route"]["decision"], "local");
  EXPECT_EQ(rec.request_count(), 1u);
  // The audit log has the one escalation; `slim audit` shows it.
  auto entries = read_audit(h.dir + "/audit.jsonl");
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0]["redactions"]["email"], 1);
  auto a = h.slim("audit --json");
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_EQ(json::parse(a.out).size(), 1u);
  // local-only: nothing is sent, the local model answers.
  auto lo = h.slim("run --route auto -m " + model + " --temp 0 -n 4 -p \"Write a SQL query\" --remote-url " +
                   rec.base_url() + " --remote-model big --policy local-only --json");
  ASSERT_EQ(lo.status, 0) << lo.out;
  EXPECT_EQ(json::parse(lo.out)["backend"], "local");
  EXPECT_EQ(rec.request_count(), 1u);
  // The remote down: the local model answers, with the reason on stderr.
  rec.set_mode(test::Mode::Down);
  auto down = test::run_command("SLIM_HOME='" + h.dir + "' " + test::slim_binary() + " run --route auto -m " + model +
                                    " --temp 0 -n 4 -p \"Write a SQL query\"" + remote,
                                true);
  EXPECT_EQ(down.status, 0) << down.out;
  EXPECT_NE(down.out.find("remote failed (unreachable"), std::string::npos) << down.out;
}

TEST(RouteCli, BadInputIsOneLine) {
  Home h;
  auto r = test::run_command(test::slim_binary() + " run --route auto -m " + stories() +
                                 " -p hi --remote-url ftp://x --remote-model m",
                             true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--remote-url"), std::string::npos) << r.out;
  auto p = test::run_command(test::slim_binary() + " serve -m " + stories() + " --policy sometimes", true);
  EXPECT_EQ(p.status, 1);
  EXPECT_NE(p.out.find("policy"), std::string::npos) << p.out;
}

}  // namespace
}  // namespace slim
