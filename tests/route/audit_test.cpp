// The audit log: concurrent appends stay whole lines, entries keep their
// fields, the file is private (0600), torn lines are skipped without hiding
// the entries after them, --since parsing, and `slim audit` on top of it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "route/audit.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using slim::AuditEntry;
using slim::AuditLog;

namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = fs::temp_directory_path() / ("slim-audit-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  static AuditEntry entry(const std::string& id, const std::string& time = "") {
    AuditEntry e;
    e.time = time;
    e.request_id = id;
    e.decision = "remote";
    e.reason = "prompt nll 3.9 > 3.4";
    e.signals = {{"prompt_nll", 3.9}};
    e.endpoint = "openai";
    e.url = "https://api.example.test/v1/chat/completions";
    e.model = "gpt-test";
    e.bytes_sent = 1234;
    e.payload_sha256 = std::string(64, 'a');
    e.redactions = {{"email", 2}, {"phone", 1}};
    return e;
  }

  static std::vector<std::string> lines_of(const fs::path& p) {
    std::ifstream f(p);
    std::vector<std::string> out;
    std::string l;
    while (std::getline(f, l)) out.push_back(l);
    return out;
  }

  fs::path dir;
};

// "t3-17": the writer and its sequence number.
std::string id_of(char tag, int writer, int seq) {
  std::string s(1, tag);
  s += std::to_string(writer);
  s += '-';
  s += std::to_string(seq);
  return s;
}

TEST_F(AuditTest, ConcurrentAppendsAreWholeLines) {
  const fs::path path = dir / "audit.jsonl";
  AuditLog log(path.string());
  // Lines longer than a stdio buffer: a buffered writer would tear them.
  const std::string long_reason(6000, 'r');
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        AuditEntry e = entry(id_of('t', t, k));
        e.reason = long_reason;
        if (!log.append(e).ok()) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), (size_t)kThreads * kPerThread);
  std::set<std::string> ids;
  std::map<int, int> next;  // per thread, entries keep their order
  for (const auto& l : lines) {
    json j = json::parse(l, nullptr, false);
    ASSERT_TRUE(j.is_object()) << l.substr(0, 100);
    EXPECT_EQ(j["reason"], long_reason);
    std::string id = j["request_id"];
    ids.insert(id);
    int t = std::stoi(id.substr(1, id.find('-') - 1)), k = std::stoi(id.substr(id.find('-') + 1));
    EXPECT_EQ(k, next[t]) << id;
    next[t] = k + 1;
  }
  EXPECT_EQ(ids.size(), (size_t)kThreads * kPerThread);
  auto all = slim::read_audit(path.string());
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_EQ(all->size(), (size_t)kThreads * kPerThread);
}

// Several processes (a CLI and a server, say) share the log with no common
// mutex: only O_APPEND and one write() a line keep their lines apart.
TEST_F(AuditTest, AppendsFromSeveralProcessesAreWholeLines) {
  const fs::path path = dir / "audit.jsonl";
  constexpr int kProcs = 4, kPerProc = 100;
  const std::string long_reason(9000, 'p');
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      AuditLog log(path.string());
      int bad = 0;
      for (int k = 0; k < kPerProc; ++k) {
        AuditEntry e = entry(id_of('p', p, k));
        e.reason = long_reason;
        if (!log.append(e).ok()) ++bad;
      }
      ::_exit(bad == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), (size_t)kProcs * kPerProc);
  std::set<std::string> ids;
  for (const auto& l : lines) {
    json j = json::parse(l, nullptr, false);
    ASSERT_TRUE(j.is_object()) << l.substr(0, 100);
    EXPECT_EQ(j["reason"], long_reason);
    ids.insert(j["request_id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), (size_t)kProcs * kPerProc);
}

TEST_F(AuditTest, EntryFieldsTimeAndPrivateFile) {
  const fs::path path = dir / "nested" / "deeper" / "audit.jsonl";  // the folder is created
  const mode_t old_mask = ::umask(022);
  AuditLog log(path.string());
  AuditEntry e = entry("req-1");
  e.url = "https://user:hunter2@api.example.test/v1/chat/completions";
  const std::time_t before = std::time(nullptr);
  ASSERT_TRUE(log.append(e).ok());
  ::umask(old_mask);

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("hunter2"), std::string::npos);
  // Fields in reading order, time first.
  EXPECT_EQ(lines[0].rfind("{\"time\":", 0), 0u) << lines[0];
  json j = json::parse(lines[0]);
  const std::string t = j["time"];
  EXPECT_TRUE(std::regex_match(t, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"))) << t;
  auto parsed = slim::parse_since(t);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_GE(*parsed, before - 1);
  EXPECT_LE(*parsed, std::time(nullptr) + 1);
  EXPECT_EQ(j["request_id"], "req-1");
  EXPECT_EQ(j["decision"], "remote");
  EXPECT_EQ(j["endpoint"], "openai");
  EXPECT_EQ(j["url"], "https://api.example.test/v1/chat/completions");
  EXPECT_EQ(j["model"], "gpt-test");
  EXPECT_EQ(j["bytes_sent"], 1234);
  EXPECT_EQ(j["payload_sha256"], std::string(64, 'a'));
  EXPECT_EQ(j["redactions"], (json{{"email", 2}, {"phone", 1}}));
  EXPECT_EQ(j["signals"]["prompt_nll"], 3.9);

  // An explicit time is kept.
  ASSERT_TRUE(log.append(entry("req-2", "2026-01-02T03:04:05.678Z")).ok());
  auto all = slim::read_audit(path.string());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1]["time"], "2026-01-02T03:04:05.678Z");
}

TEST_F(AuditTest, InvalidUtf8DoesNotLoseTheEntry) {
  const fs::path path = dir / "audit.jsonl";
  AuditLog log(path.string());
  AuditEntry e = entry("bad-\xff-id");
  ASSERT_TRUE(log.append(e).ok());
  auto all = slim::read_audit(path.string());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_NE((*all)[0]["request_id"].get<std::string>().find("bad-"), std::string::npos);
}

TEST_F(AuditTest, ReadSinceFiltersByTime) {
  const fs::path path = dir / "audit.jsonl";
  AuditLog log(path.string());
  ASSERT_TRUE(log.append(entry("a", "2026-01-01T00:00:00.000Z")).ok());
  ASSERT_TRUE(log.append(entry("b", "2026-01-02T12:00:00.500Z")).ok());
  ASSERT_TRUE(log.append(entry("c", "2026-01-03T00:00:00.000Z")).ok());
  auto ids = [&](int64_t since) {
    std::vector<std::string> out;
    auto r = slim::read_audit(path.string(), since);
    EXPECT_TRUE(r.ok());
    if (r.ok())
      for (const auto& j : *r) out.push_back(j["request_id"]);
    return out;
  };
  EXPECT_EQ(ids(0), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ids(*slim::parse_since("2026-01-02")), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(ids(*slim::parse_since("2026-01-02T12:00:00Z")), (std::vector<std::string>{"b", "c"}));  // at or after
  EXPECT_EQ(ids(*slim::parse_since("2026-01-02T12:00:01Z")), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(ids(*slim::parse_since("2026-01-04")).empty());
}

TEST_F(AuditTest, TornLastLineIsSkippedAndTheNextEntryIsIntact) {
  const fs::path path = dir / "audit.jsonl";
  AuditLog log(path.string());
  ASSERT_TRUE(log.append(entry("one")).ok());
  ASSERT_TRUE(log.append(entry("two")).ok());
  {
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f << R"({"time":"2026-01-01T00:00:00.000Z","request_id":"torn","reas)";  // a crash mid-write
  }
  auto r = slim::read_audit(path.string());
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1]["request_id"], "two");

  ASSERT_TRUE(log.append(entry("three")).ok());  // starts a new line after the fragment
  r = slim::read_audit(path.string());
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[2]["request_id"], "three");
}

TEST_F(AuditTest, MissingOrEmptyLogReadsAsNoEntries) {
  auto r = slim::read_audit((dir / "nope.jsonl").string());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->empty());
  std::ofstream((dir / "empty.jsonl").string()).close();
  r = slim::read_audit((dir / "empty.jsonl").string());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(AuditTest, AppendFailsWhenTheLogCannotBeWritten) {
  fs::create_directories(dir / "is-a-dir.jsonl");
  AuditLog log((dir / "is-a-dir.jsonl").string());
  auto st = log.append(entry("x"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("audit log"), std::string::npos) << st.message();
}

TEST(AuditPath, DefaultIsUnderSlimHome) {
  const char* old = std::getenv("SLIM_HOME");
  std::string saved = old ? old : "";
  ::setenv("SLIM_HOME", "/tmp/slim-home-for-audit-test", 1);
  EXPECT_EQ(slim::default_audit_path(), "/tmp/slim-home-for-audit-test/audit.jsonl");
  if (old) ::setenv("SLIM_HOME", saved.c_str(), 1);
  else ::unsetenv("SLIM_HOME");
}

TEST(ParseSince, RelativeDurations) {
  const int64_t now = std::time(nullptr);
  auto near = [&](const char* s, int64_t ago) {
    auto r = slim::parse_since(s);
    ASSERT_TRUE(r.ok()) << s << ": " << r.error();
    EXPECT_NEAR((double)*r, (double)(now - ago), 2.0) << s;
  };
  near("1h", 3600);
  near("30m", 1800);
  near("2d", 2 * 86400);
  near("1w", 7 * 86400);
  near("45s", 45);
  near("90m", 5400);
}

TEST(ParseSince, DatesAndTimes) {
  const int64_t dec1 = 1796083200;  // 2026-12-01T00:00:00Z
  auto at = [](const char* s) {
    auto r = slim::parse_since(s);
    EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error());
    return r.ok() ? *r : -1;
  };
  EXPECT_EQ(at("2026-12-01"), dec1);
  EXPECT_EQ(at("2026-12-01T10:00:00Z"), dec1 + 36000);
  EXPECT_EQ(at("2026-12-01T10:00:00.250Z"), dec1 + 36000);
  EXPECT_EQ(at("2026-12-01T10:00Z"), dec1 + 36000);
  EXPECT_EQ(at("2026-12-01 10:00:00"), dec1 + 36000);
  EXPECT_EQ(at("2026-12-01T12:00:00+02:00"), dec1 + 36000);
  EXPECT_EQ(at("2026-12-01T05:30:00-0430"), dec1 + 36000);
  EXPECT_EQ(at("2024-02-29"), 1709164800);  // a leap day
}

TEST(ParseSince, RejectsNonsense) {
  for (const char* s : {"", "h", "1", "1x", "-1h", "1.5h", "yesterday", "2026-13-01", "2026-02-30", "2025-02-29",
                        "2026-12-1", "2026-12-01T25:00:00Z", "2026-12-01T10:60Z", "2026-12-01T10:00:00Zjunk",
                        "2026-12-01T", "2026-12-01T10:00:00.Z"}) {
    auto r = slim::parse_since(s);
    EXPECT_FALSE(r.ok()) << "'" << s << "' parsed as " << (r.ok() ? *r : 0);
    if (!r.ok()) {
      EXPECT_NE(r.error().find("--since"), std::string::npos) << r.error();
    }
  }
}

// `slim audit` over a log in a private SLIM_HOME.
class AuditCommand : public AuditTest {
 protected:
  slim::test::RunResult run(const std::string& args) {
    return slim::test::run_command("SLIM_HOME='" + dir.string() + "' XDG_DATA_HOME= '" + slim::test::slim_binary() +
                                       "' audit " + args,
                                   true);
  }
};

TEST_F(AuditCommand, EmptyLogSaysSo) {
  auto r = run("");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "no escalations recorded\n");
  r = run("--json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(json::parse(r.out, nullptr, false), json::array());
}

TEST_F(AuditCommand, ListsEntriesAsLinesOrJson) {
  AuditLog log((dir / "audit.jsonl").string());
  ASSERT_TRUE(log.append(entry("req-old", "2020-01-01T00:00:00.000Z")).ok());
  AuditEntry e = entry("req-new");
  e.reason = "asked\nfor it";  // a control character must not reach the terminal
  e.payload_sha256 = "0123456789abcdef" + std::string(48, '0');
  ASSERT_TRUE(log.append(e).ok());

  auto r = run("");
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<std::string> lines;
  std::stringstream ss(r.out);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].rfind("2020-01-01T00:00:00.000Z  req-old  openai/gpt-test  1234 B  sha256:aaaaaaaaaaaa", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[1].find("req-new"), std::string::npos);
  EXPECT_NE(lines[1].find("sha256:0123456789ab "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("email=2,phone=1"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("asked for it"), std::string::npos) << lines[1];

  r = run("--json --since 1h");
  ASSERT_EQ(r.status, 0) << r.out;
  json arr = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(arr.is_array()) << r.out;
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["request_id"], "req-new");

  r = run("--since 2030-01-01");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "no escalations recorded since 2030-01-01T00:00:00Z\n");
}

TEST_F(AuditCommand, FileOptionAndErrors) {
  AuditLog log((dir / "elsewhere.jsonl").string());
  ASSERT_TRUE(log.append(entry("req-file")).ok());
  auto r = run("--file '" + (dir / "elsewhere.jsonl").string() + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("req-file"), std::string::npos) << r.out;

  r = run("--since soon");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.rfind("slim: error: bad --since 'soon'", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;

  fs::create_directories(dir / "dir.jsonl");
  r = run("--file '" + (dir / "dir.jsonl").string() + "'");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out.rfind("slim: error: ", 0), 0u) << r.out;
}

}  // namespace
