// slim pull against a loopback server with Hugging Face style paths: the hub
// API, /resolve/ redirects carrying X-Linked-Etag, Range resume, server errors,
// checksum and GGUF checks, concurrent pulls.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/pull.h"
#include "store/sha256.h"
#include "test_server.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace slim::test {
namespace {

// The server: two real models, one announced with a wrong digest, one corrupt.
struct Hub {
  std::string q4, q8, corrupt;
  std::mutex mu;
  std::vector<long long> cut_at;  // absolute positions at which the next /cdn GETs stop
  int head_count = 0;
  std::unique_ptr<TestServer> server;

  bool load() {
    q4 = read_file(shared_path("models/synthetic/llama-Q4_K_M.gguf"));
    q8 = read_file(shared_path("models/synthetic/llama-Q8_0.gguf"));
    if (q4.size() < 100000 || q8.empty()) return false;
    corrupt = q4.substr(0, 4096);  // a valid start, then nothing
    server = std::make_unique<TestServer>([this](const HttpRequest& r) { return route(r); });
    return server->port() > 0;
  }

  const std::string* file(const std::string& name, std::string* digest) {
    if (name == "tiny-Q4_K_M.gguf") { *digest = sha256_hex(q4); return &q4; }
    if (name == "tiny-Q8_0.gguf") { *digest = sha256_hex(q8); return &q8; }
    if (name == "tiny-Q2_K.gguf") { *digest = sha256_hex(q8); return &q4; }  // announced digest is wrong
    if (name == "tiny-Q3_K_M.gguf") { *digest = sha256_hex(corrupt); return &corrupt; }
    return nullptr;
  }

  HttpReply route(const HttpRequest& r) {
    HttpReply rep;
    const std::string& p = r.path;
    if (p == "/api/models/owner/tiny-GGUF") {
      nlohmann::json j = {{"id", "owner/tiny-GGUF"}, {"siblings", nlohmann::json::array()}};
      for (const char* f : {"README.md", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf", "tiny-Q2_K.gguf", "tiny-Q3_K_M.gguf",
                            "mmproj-tiny-Q4_K_M.gguf"})
        j["siblings"].push_back({{"rfilename", f}});
      rep.body = j.dump();
      return rep;
    }
    const std::string resolve = "/owner/tiny-GGUF/resolve/main/";
    if (p.rfind(resolve, 0) == 0) {
      std::string name = p.substr(resolve.size()), digest;
      const std::string* data = file(name, &digest);
      if (!data) { rep.status = 404; rep.body = "Entry not found"; return rep; }
      rep.status = 302;
      rep.headers = {{"Location", "/cdn/" + name}, {"X-Linked-Etag", "\"" + digest + "\""},
                     {"X-Linked-Size", std::to_string(data->size())}};
      return rep;
    }
    if (p.rfind("/cdn/", 0) == 0) {
      std::string digest;
      const std::string* data = file(p.substr(5), &digest);
      if (!data) { rep.status = 404; return rep; }
      long long from = 0;
      auto it = r.headers.find("range");
      if (it != r.headers.end()) from = std::atoll(it->second.c_str() + 6);  // "bytes=N-"
      rep.headers = {{"ETag", "\"cdn-" + digest.substr(0, 8) + "\""}, {"Accept-Ranges", "bytes"}};
      if (from >= (long long)data->size()) {
        rep.status = 416;
        rep.headers.push_back({"Content-Range", "bytes */" + std::to_string(data->size())});
        return rep;
      }
      if (from > 0) {
        rep.status = 206;
        rep.headers.push_back({"Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(data->size() - 1) +
                                                    "/" + std::to_string(data->size())});
      }
      if (r.method == "HEAD") { rep.content_length = (long long)data->size() - from; return rep; }
      rep.body = data->substr((size_t)from);
      std::lock_guard<std::mutex> lk(mu);
      if (!cut_at.empty()) {
        rep.cut_after = std::max(0LL, cut_at.front() - from);
        cut_at.erase(cut_at.begin());
      }
      return rep;
    }
    if (p.rfind("/status/500/", 0) == 0) { rep.status = 500; rep.body = "oops"; return rep; }
    if (p.rfind("/plain/", 0) == 0) {  // a plain URL: the digest sits in the ETag
      rep.headers = {{"ETag", "\"" + sha256_hex(q8) + "\""}};
      rep.body = q8;
      return rep;
    }
    if (p.rfind("/reset/", 0) == 0) {
      rep.body = q4;
      rep.cut_after = 1000;
      return rep;
    }
    rep.status = 404;
    rep.body = "not found";
    return rep;
  }
};

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLIM_SHARED_FILE(q4path, "models/synthetic/llama-Q4_K_M.gguf");
    SLIM_SHARED_FILE(q8path, "models/synthetic/llama-Q8_0.gguf");
    ASSERT_TRUE(hub.load()) << "cannot start the loopback server";
    home = temp_dir() + "/pull-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(home);
    fs::create_directories(home);
  }
  void TearDown() override { fs::remove_all(home); }

  RunResult slim(const std::string& args, int retries = 0) {
    std::string env = "SLIM_HOME='" + home + "' SLIM_HF_ENDPOINT=" + hub.server->base() +
                      " SLIM_PULL_RETRIES=" + std::to_string(retries) + " SLIM_PULL_BACKOFF_MS=10 ";
    return run_command(env + slim_binary() + " " + args, true);
  }
  std::vector<std::string> files_in(const std::string& sub) {
    std::vector<std::string> v;
    for (auto& e : fs::directory_iterator(home + "/" + sub)) v.push_back(e.path().filename().string());
    return v;
  }
  int partials() {
    int n = 0;
    for (auto& f : files_in("tmp"))
      if (f.find(".partial") != std::string::npos || f.find("import-") == 0) ++n;
    return n;
  }

  Hub hub;
  std::string home;
};

TEST(PullRef, PicksTheQuantFile) {
  std::vector<std::string> files = {"README.md", "m-Q4_K_S.gguf", "m-Q4_K_M.gguf", "m-IQ4_K_M.gguf", "m-q8_0.gguf",
                                    "mmproj-m-Q8_0.gguf", "big-Q6_K-00001-of-00002.gguf"};
  EXPECT_EQ(pick_gguf_file(files, "Q4_K_M", "o/r").value(), "m-Q4_K_M.gguf");
  EXPECT_EQ(pick_gguf_file(files, "Q8_0", "o/r").value(), "m-q8_0.gguf");
  auto none = pick_gguf_file(files, "Q5_K_M", "o/r");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().find("Q4_K_M"), std::string::npos) << none.error();
  auto split = pick_gguf_file(files, "Q6_K", "o/r");
  ASSERT_FALSE(split.ok());
  EXPECT_NE(split.error().find("split"), std::string::npos) << split.error();
}

TEST(PullRef, ResolvesReferences) {
  auto u = resolve_pull_source("https://example.invalid/models/My-Model.Q8_0.gguf?download=1");
  ASSERT_TRUE(u.ok()) << u.error();
  EXPECT_EQ(u->url, "https://example.invalid/models/My-Model.Q8_0.gguf?download=1");
  EXPECT_EQ(u->file, "My-Model.Q8_0.gguf");
  EXPECT_EQ(u->name, "my-model.q8_0");
  ::setenv("SLIM_HF_ENDPOINT", "http://127.0.0.1:9", 1);
  auto f = resolve_pull_source("hf.co/o/r/sub/x-Q5_K_M.gguf");
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->url, "http://127.0.0.1:9/o/r/resolve/main/sub/x-Q5_K_M.gguf");
  EXPECT_EQ(f->name, "hf.co/o/r");
  EXPECT_EQ(f->tag, "Q5_K_M");
  ::unsetenv("SLIM_HF_ENDPOINT");
  EXPECT_FALSE(resolve_pull_source("ftp://x/y.gguf").ok());
  EXPECT_FALSE(resolve_pull_source("hf.co/justowner").ok());
}

TEST_F(PullTest, FullPullFromTheHubThenRunByName) {
  auto r = slim("pull hf.co/owner/tiny-GGUF");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string digest = sha256_hex(hub.q4);
  EXPECT_NE(r.out.find("hf.co/owner/tiny-GGUF:Q4_K_M"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(home + "/blobs/sha256-" + digest));
  EXPECT_EQ(read_file(home + "/blobs/sha256-" + digest), hub.q4);
  EXPECT_EQ(partials(), 0);
  auto l = slim("list");
  EXPECT_NE(l.out.find("hf.co/owner/tiny-GGUF:Q4_K_M"), std::string::npos) << l.out;
  // the name resolves without its tag; the model runs and matches the file it came from
  const std::string env = "SLIM_HOME='" + home + "' " + slim_binary();
  auto by_name = run_command(env + " run hf.co/owner/tiny-GGUF -p Hello -n 6 --temp 0 2>/dev/null");
  auto by_path = run_command(env + " run " + shared_path("models/synthetic/llama-Q4_K_M.gguf") + " -p Hello -n 6 --temp 0 2>/dev/null");
  ASSERT_EQ(by_name.status, 0) << by_name.out;
  EXPECT_EQ(by_name.out, by_path.out);
  // a second quant, then a pull of what is there already fetches no bytes
  ASSERT_EQ(slim("pull hf.co/owner/tiny-GGUF:q8_0").status, 0);
  hub.server->reset_counter();
  auto again = slim("pull hf.co/owner/tiny-GGUF:Q4_K_M");
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_LT(hub.server->body_bytes_sent(), 1024);  // the file list only
  EXPECT_EQ(files_in("blobs").size(), 2u);
}

TEST_F(PullTest, InterruptedPullsResumeWithRange) {
  const long long size = (long long)hub.q4.size();
  const long long chunk = 16384;  // the server's write size
  std::vector<long long> cuts = {size / 7, size / 3, size * 4 / 5};
  for (size_t i = 0; i < cuts.size(); ++i) {
    const long long cut = cuts[i], before = i == 0 ? 0 : cuts[i - 1];
    {
      std::lock_guard<std::mutex> lk(hub.mu);
      hub.cut_at = {cut};
    }
    hub.server->reset_counter();
    auto r = slim("pull hf.co/owner/tiny-GGUF");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("127.0.0.1"), std::string::npos) << r.out;
    EXPECT_EQ(files_in("blobs").size(), 0u);
    EXPECT_EQ(slim("list").out.find("tiny"), std::string::npos);
    EXPECT_EQ(partials(), 1);
    // each attempt fetched only what lay between the last cut and this one
    EXPECT_LE(hub.server->body_bytes_sent(), cut - before + chunk);
  }
  hub.server->reset_counter();
  auto r = slim("pull hf.co/owner/tiny-GGUF");
  ASSERT_EQ(r.status, 0) << r.out;
  const long long remaining = size - cuts.back();
  EXPECT_LT(hub.server->body_bytes_sent(), remaining + chunk);
  EXPECT_EQ(read_file(home + "/blobs/sha256-" + sha256_hex(hub.q4)), hub.q4);
  EXPECT_EQ(partials(), 0);
}

TEST_F(PullTest, RetriesResumeWithinOnePull) {
  {
    std::lock_guard<std::mutex> lk(hub.mu);
    hub.cut_at = {200000, 500000};
  }
  auto r = slim("pull hf.co/owner/tiny-GGUF", /*retries=*/3);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("retrying"), std::string::npos) << r.out;
  EXPECT_LT(hub.server->body_bytes_sent(), (long long)hub.q4.size() + 16384);
  EXPECT_EQ(read_file(home + "/blobs/sha256-" + sha256_hex(hub.q4)), hub.q4);
}

TEST_F(PullTest, ChecksumMismatchInstallsNothing) {
  auto r = slim("pull hf.co/owner/tiny-GGUF:Q2_K");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("checksum mismatch"), std::string::npos) << r.out;
  EXPECT_EQ(files_in("blobs").size(), 0u);
  EXPECT_EQ(partials(), 0);
  EXPECT_EQ(slim("list").out.find("tiny"), std::string::npos);
  // a digest given on the command line is checked too
  auto g = slim("pull " + hub.server->base() + "/plain/m.gguf --sha256 " + std::string(64, 'a'));
  EXPECT_EQ(g.status, 1);
  EXPECT_NE(g.out.find("checksum mismatch"), std::string::npos) << g.out;
  EXPECT_EQ(files_in("blobs").size(), 0u);
  // and the ETag of a plain URL when it is a sha256
  auto ok = slim("pull " + hub.server->base() + "/plain/m.gguf --name plain:v1");
  ASSERT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("verified sha256"), std::string::npos) << ok.out;
  EXPECT_NE(slim("list").out.find("plain:v1"), std::string::npos);
}

TEST_F(PullTest, CorruptGgufIsRejected) {
  auto r = slim("pull hf.co/owner/tiny-GGUF:Q3_K_M");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not a usable GGUF"), std::string::npos) << r.out;
  EXPECT_EQ(files_in("blobs").size(), 0u);
  EXPECT_EQ(partials(), 0);
}

TEST_F(PullTest, ServerErrorsAreClear) {
  auto nf = slim("pull hf.co/owner/tiny-GGUF/missing-Q4_K_M.gguf");
  EXPECT_EQ(nf.status, 1);
  EXPECT_NE(nf.out.find("404"), std::string::npos) << nf.out;
  EXPECT_NE(nf.out.find("127.0.0.1:" + std::to_string(hub.server->port())), std::string::npos) << nf.out;
  auto repo = slim("pull hf.co/owner/nothing-here");
  EXPECT_EQ(repo.status, 1);
  EXPECT_NE(repo.out.find("404"), std::string::npos) << repo.out;
  auto quant = slim("pull hf.co/owner/tiny-GGUF:Q6_K");
  EXPECT_EQ(quant.status, 1);
  EXPECT_NE(quant.out.find("Q8_0"), std::string::npos) << quant.out;  // lists what there is
  auto e500 = slim("pull " + hub.server->base() + "/status/500/m.gguf", /*retries=*/2);
  EXPECT_EQ(e500.status, 1);
  EXPECT_NE(e500.out.find("500"), std::string::npos) << e500.out;
  EXPECT_NE(e500.out.find("127.0.0.1"), std::string::npos) << e500.out;
  EXPECT_GE(hub.server->requests(), 3);  // retried
  auto reset = slim("pull " + hub.server->base() + "/reset/m.gguf", /*retries=*/1);
  EXPECT_EQ(reset.status, 1);
  EXPECT_NE(reset.out.find("127.0.0.1"), std::string::npos) << reset.out;
  EXPECT_EQ(files_in("blobs").size(), 0u);
  // one line each
  for (const auto* r : {&nf, &repo, &quant}) EXPECT_EQ(std::count(r->out.begin(), r->out.end(), '\n'), 1) << r->out;
  auto refused = run_command("SLIM_HOME='" + home + "' SLIM_PULL_RETRIES=0 " + slim_binary() +
                             " pull http://127.0.0.1:1/m.gguf", true);
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find("127.0.0.1:1"), std::string::npos) << refused.out;
}

TEST_F(PullTest, ConcurrentPullsOfOneModel) {
  std::vector<std::thread> ts;
  std::vector<RunResult> rs(4);
  for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] { rs[i] = slim("pull hf.co/owner/tiny-GGUF"); });
  for (auto& t : ts) t.join();
  for (auto& r : rs) EXPECT_EQ(r.status, 0) << r.out;
  auto blobs = files_in("blobs");
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(read_file(home + "/blobs/" + blobs[0]), hub.q4);
  EXPECT_EQ(partials(), 0);
  auto l = slim("list");
  EXPECT_NE(l.out.find("hf.co/owner/tiny-GGUF:Q4_K_M"), std::string::npos) << l.out;
  // one download's worth of bytes: the others waited and found the blob
  EXPECT_LT(hub.server->body_bytes_sent(), 2 * (long long)hub.q4.size());
}

}  // namespace
}  // namespace slim::test
