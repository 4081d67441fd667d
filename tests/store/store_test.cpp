// The store (import, list, show, cp, rm, names), SHA-256 against the FIPS
// 180-4 examples, and the memory planner: fit verdicts, run refusing what does
// not fit, -c auto, and the estimate within 10 % of the measured peak RSS.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "store/planner.h"
#include "store/sha256.h"
#include "store/store.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace slim::test {
namespace {

TEST(Sha256, FipsExamples) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // a million 'a', fed in uneven pieces
  std::string a(999, 'a');
  for (int i = 0; i < 1001; ++i) h.update(a.data(), a.size());  // 999999 bytes
  h.update("a", 1);
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, MatchesThePublishedDigestOfStories260K) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");  // digest from ../shared/models/PROVENANCE.md
  EXPECT_EQ(sha256_file(path).value(), "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
}

TEST(StoreNames, ParseAndSuggest) {
  auto n = parse_model_name("hf.co/owner/repo:Q4_K_M");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->name, "hf.co/owner/repo");
  EXPECT_EQ(n->tag, "Q4_K_M");
  EXPECT_EQ(parse_model_name("llama").value().full(), "llama:latest");
  EXPECT_FALSE(parse_model_name("../etc/passwd").ok());
  EXPECT_FALSE(parse_model_name("a//b").ok());
  EXPECT_FALSE(parse_model_name("a:b/c d").ok());
  auto c = close_matches("stores", {"stories:latest", "llama:q8", "qwen2:latest"});
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c[0], "stories:latest");
  EXPECT_TRUE(close_matches("mistral", {"stories:latest", "llama:q8"}).empty());
}

TEST(PlannerSizes, CacheTypesAndSizes) {
  EXPECT_EQ(cache_row_bytes(CacheType::F32, 256), 1024u);
  EXPECT_EQ(cache_row_bytes(CacheType::F16, 256), 512u);
  EXPECT_EQ(cache_row_bytes(CacheType::Q8_0, 256), 8u * 34);
  EXPECT_EQ(parse_size("8G").value(), 8ull << 30);
  EXPECT_EQ(parse_size("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(parse_size("512M").value(), 512ull << 20);
  EXPECT_EQ(parse_size("1000").value(), 1000u);
  EXPECT_FALSE(parse_size("lots").ok());
  EXPECT_FALSE(parse_cache_type("q4_0").ok());
}

TEST(PlannerSizes, KvCacheMatchesTheModelsOwnSizing) {
  SLIM_SHARED_FILE(path, "models/synthetic/gemma2-Q8_0.gguf");
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.error();
  PlanParams p;
  p.n_ctx = 1000;
  p.n_seq = 3;
  MemoryPlan plan = plan_memory(**m, p);
  const uint64_t model_bytes = kv_cache_bytes((*m)->hp, 1000, 3, CacheType::F16);
  EXPECT_GE(plan.kv_cache, model_bytes);
  EXPECT_LE(plan.kv_cache, model_bytes + model_bytes / (*m)->hp.n_layer);  // + the prototype layer
  p.cache_type = CacheType::Q8_0;
  EXPECT_LT(plan_memory(**m, p).kv_cache, plan.kv_cache * 6 / 10);
  // the Q8_0 plan is the cache make_kv_cache(..., CacheType::Q8_0) builds
  const uint64_t q8_bytes = kv_cache_bytes((*m)->hp, 1000, 3, CacheType::Q8_0);
  EXPECT_GE(plan_memory(**m, p).kv_cache, q8_bytes);
  EXPECT_LE(plan_memory(**m, p).kv_cache, q8_bytes + q8_bytes / (*m)->hp.n_layer);
}

class StoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    home = temp_dir() + "/store-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(home);
    fs::create_directories(home);
  }
  void TearDown() override { fs::remove_all(home); }
  RunResult slim(const std::string& args, const std::string& env = "") {
    return run_command("SLIM_HOME='" + home + "' " + env + " " + slim_binary() + " " + args, true);
  }
  size_t blobs() {
    size_t n = 0;
    for (auto& e : fs::directory_iterator(home + "/blobs")) n += e.is_regular_file();
    return n;
  }
  std::string home;
};

TEST_F(StoreCli, ImportListShowCopyRemove) {
  SLIM_SHARED_FILE(stories, "models/stories260K.gguf");
  SLIM_SHARED_FILE(q8, "models/synthetic/llama-Q8_0.gguf");
  auto imp = slim("import " + stories);
  ASSERT_EQ(imp.status, 0) << imp.out;
  EXPECT_NE(imp.out.find("stories260k:latest"), std::string::npos) << imp.out;
  ASSERT_EQ(slim("import " + q8 + " tiny/llama:q8").status, 0);
  ASSERT_EQ(blobs(), 2u);
  EXPECT_EQ(read_file(home + "/blobs/sha256-270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"),
            read_file(stories));

  auto l = slim("list");
  ASSERT_EQ(l.status, 0) << l.out;
  EXPECT_NE(l.out.find("NAME"), std::string::npos);
  EXPECT_NE(l.out.find("stories260k:latest"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("tiny/llama:q8"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("Q8_0"), std::string::npos) << l.out;

  auto s = slim("show stories260k");
  ASSERT_EQ(s.status, 0) << s.out;
  for (const char* want : {"architecture:  llama", "parameters:", "context:       2048", "license:", "5 layers",
                           "memory:", "chat template: none", "sha256:270cba1b"})
    EXPECT_NE(s.out.find(want), std::string::npos) << want << "\n" << s.out;

  // cp shares the file; rm drops it only with the last name
  ASSERT_EQ(slim("cp stories260k tales:v2").status, 0);
  EXPECT_EQ(blobs(), 2u);
  ASSERT_EQ(slim("rm stories260k").status, 0);
  EXPECT_EQ(blobs(), 2u);
  EXPECT_EQ(slim("show stories260k").status, 1);
  ASSERT_EQ(slim("show tales:v2").status, 0);
  ASSERT_EQ(slim("rm tales:v2").status, 0);
  EXPECT_EQ(blobs(), 1u);
  EXPECT_FALSE(fs::exists(home + "/manifests/tales"));
  // importing the same file twice under two names keeps one blob
  ASSERT_EQ(slim("import --link " + q8 + " other").status, 0);
  EXPECT_EQ(blobs(), 1u);
}

TEST_F(StoreCli, ErrorsAreOneLine) {
  SLIM_SHARED_FILE(stories, "models/stories260K.gguf");
  ASSERT_EQ(slim("import " + stories + " stories").status, 0);
  auto unknown = slim("run storis -p hi -n 1");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.out.find("did you mean 'stories:latest'"), std::string::npos) << unknown.out;
  EXPECT_EQ(std::count(unknown.out.begin(), unknown.out.end(), '\n'), 1) << unknown.out;
  auto rm = slim("rm nothing");
  EXPECT_EQ(rm.status, 1);
  EXPECT_NE(rm.out.find("unknown model 'nothing'"), std::string::npos) << rm.out;
  auto bad = slim("import " + shared_path("models/PROVENANCE.md") + " notes");
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
  EXPECT_EQ(blobs(), 1u);
  auto missing = slim("run /no/such/model.gguf -p hi");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("no such file"), std::string::npos) << missing.out;
}

TEST_F(StoreCli, RunAndOtherCommandsTakeNames) {
  SLIM_SHARED_FILE(stories, "models/stories260K.gguf");
  ASSERT_EQ(slim("import " + stories + " stories").status, 0);
  const std::string env = "SLIM_HOME='" + home + "' " + slim_binary();
  auto a = run_command(env + " run stories -p 'Once upon a time' -n 12 --temp 0 2>/dev/null");
  auto b = run_command(env + " run " + stories + " -p 'Once upon a time' -n 12 --temp 0 2>/dev/null");
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
  auto t = slim("logits -m stories -p 'Once upon a time' --positions last --out '" + home + "/l.f32'");
  EXPECT_EQ(t.status, 0) << t.out;
  auto f = slim("fit stories");
  EXPECT_EQ(f.status, 0) << f.out;
}

// Verdict tests fix the runtime's size, so every process plans with the same
// baseline (the measured one varies by about 0.2 MiB from run to run).
const std::string kFixedRuntime = "SLIM_RUNTIME_BYTES=14000000 ";

nlohmann::json fit_json(const std::string& home, const std::string& args, bool fixed_runtime = true) {
  auto r = run_command((fixed_runtime ? kFixedRuntime : "") + "SLIM_HOME='" + home + "' " + slim_binary() + " fit --json " + args);
  EXPECT_EQ(r.status, 0) << r.out;
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    ADD_FAILURE() << "not JSON: " << r.out;
    return nlohmann::json::object();
  }
}

// A RAM budget between what stories260K needs at -c 256 and at -c 2048, so
// the verdicts do not depend on the size of the runtime.
std::string ram_between_256_and_2048(const std::string& home, const std::string& stories) {
  uint64_t small = fit_json(home, stories + " -c 256 --ram 1G")["total"].get<uint64_t>();
  uint64_t large = fit_json(home, stories + " -c 2048 --ram 1G")["total"].get<uint64_t>();
  return std::to_string((small + large) / 2 / 1024) + "K";
}

TEST_F(StoreCli, FitVerdicts) {
  SLIM_SHARED_FILE(stories, "models/stories260K.gguf");
  SLIM_SHARED_FILE(gemma, "models/synthetic/gemma2-F32.gguf");
  auto fits = fit_json(home, stories + " --ram 1G");
  EXPECT_EQ(fits["verdict"], "fits");
  EXPECT_EQ(fits["largest_ctx"], 2048);  // capped by the trained context
  EXPECT_EQ(fits["total"].get<uint64_t>(), fits["weights"].get<uint64_t>() + fits["kv_cache"].get<uint64_t>() +
                                                fits["compute"].get<uint64_t>() + fits["overhead"].get<uint64_t>());
  // A 64k context does not fit; a smaller one does.
  const std::string ram = ram_between_256_and_2048(home, stories);
  auto smaller = fit_json(home, stories + " -c 65536 --ram " + ram);
  EXPECT_EQ(smaller["verdict"], "fits with a smaller context");
  int best = smaller["largest_ctx"];
  EXPECT_GT(best, 256);
  EXPECT_LT(best, 2048);
  auto at_best = fit_json(home, stories + " -c " + std::to_string(best) + " --ram " + ram);
  EXPECT_EQ(at_best["verdict"], "fits");
  auto above = fit_json(home, stories + " -c " + std::to_string(best + 512) + " --ram " + ram);
  EXPECT_NE(above["verdict"], "fits");
  // F32 weights of 36 MiB do not fit in 30 MiB, a Q4_K_M of the same model would.
  auto no = fit_json(home, gemma + " -c 512 --ram 30M");
  EXPECT_EQ(no["verdict"], "does not fit");
  EXPECT_NE(no["advice"].get<std::string>().find("would fit"), std::string::npos) << no.dump();
  auto text = slim("fit " + gemma + " -c 512 --ram 30M");
  EXPECT_NE(text.out.find("verdict:    does not fit"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("KV cache:"), std::string::npos) << text.out;
  // q8_0 and parallel slots change the KV cache as sized
  auto f16 = fit_json(home, stories + " -c 4096 --parallel 2");
  auto q8 = fit_json(home, stories + " -c 4096 --parallel 2 --cache-type q8_0");
  auto one = fit_json(home, stories + " -c 4096");
  EXPECT_GT(f16["kv_cache"].get<uint64_t>(), one["kv_cache"].get<uint64_t>() * 19 / 10);
  EXPECT_LT(q8["kv_cache"].get<uint64_t>(), f16["kv_cache"].get<uint64_t>() * 6 / 10);
}

TEST_F(StoreCli, RunRefusesWhatDoesNotFitAndAutoPicksAContext) {
  SLIM_SHARED_FILE(stories, "models/stories260K.gguf");
  SLIM_SHARED_FILE(gemma, "models/synthetic/gemma2-F32.gguf");
  auto refused = slim("run " + gemma + " -c 512 -p hi -n 1", "SLIM_RAM=30M");
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find("does not fit"), std::string::npos) << refused.out;
  EXPECT_EQ(std::count(refused.out.begin(), refused.out.end(), '\n'), 1) << refused.out;
  // stories at its default context (2048) does not fit the budget; -c auto runs in it
  const std::string ram = ram_between_256_and_2048(home, stories);
  auto fits2048 = fit_json(home, stories + " -c 2048 --ram " + ram);
  ASSERT_NE(fits2048["verdict"], "fits");
  auto deflt = slim("run " + stories + " -p 'Once upon a time' -n 4", kFixedRuntime + "SLIM_RAM=" + ram);
  EXPECT_EQ(deflt.status, 1) << deflt.out;
  EXPECT_NE(deflt.out.find("-c "), std::string::npos) << deflt.out;
  auto autoc = slim("run " + stories + " -c auto -p 'Once upon a time' -n 4 2>/dev/null", kFixedRuntime + "SLIM_RAM=" + ram);
  EXPECT_EQ(autoc.status, 0) << autoc.out;
  EXPECT_FALSE(autoc.out.empty());
}

// Peak RSS of a child `slim run`, from wait4 (ru_maxrss is in KiB).
long long peak_rss_of_run(const std::string& model, int ctx, const std::string& prompt) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    std::string bin = slim_binary(), c = std::to_string(ctx);
    ::execl(bin.c_str(), bin.c_str(), "run", model.c_str(), "-c", c.c_str(), "-p", prompt.c_str(), "-n", "4",
            (char*)nullptr);
    ::_exit(127);
  }
  int st = 0;
  rusage ru{};
  if (::wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
  return (long long)ru.ru_maxrss * 1024;
}

TEST_F(StoreCli, EstimateWithinTenPercentOfPeakRss) {
  struct Case { const char* model; int ctx; };
  const Case cases[] = {{"models/stories260K.gguf", 256},          {"models/stories260K.gguf", 2048},
                        {"models/stories260K.gguf", 16384},        {"models/synthetic/llama-F32.gguf", 512},
                        {"models/synthetic/llama-Q4_K_M.gguf", 4096}, {"models/synthetic/gemma2-F32.gguf", 1024},
                        {"models/synthetic/gemma2-Q8_0.gguf", 8192}, {"models/synthetic/qwen3-Q4_K_M.gguf", 2048},
                        {"models/synthetic/phi3-Q8_0.gguf", 4096},   {"models/synthetic/gemma3-F32.gguf", 2048},
                        {"models/synthetic/qwen2-F32.gguf", 1024},   {"models/synthetic/llama3rope-Q8_0.gguf", 4096}};
  std::string text;
  while (text.size() < 4000) text += "Once upon a time there was a little girl named Lily who loved to play outside. ";
  for (const Case& c : cases) {
    SLIM_SHARED_FILE(path, c.model);
    auto plan = fit_json(home, path + " -c " + std::to_string(c.ctx), /*fixed_runtime=*/false);  // the real estimate
    const double est = plan["total"].get<double>();
    // a prompt that fills a whole batch (512 tokens) where the context allows
    std::string prompt = text;
    for (;;) {
      auto ids = run_command(slim_binary() + " tokenize -m " + path + " -p '" + prompt + "'");
      ASSERT_EQ(ids.status, 0) << ids.out;
      const long n = std::count(ids.out.begin(), ids.out.end(), ',') + 1;
      if (n <= std::min(c.ctx - 8, 520)) break;
      prompt.resize(prompt.size() * std::min(c.ctx - 8, 520) / n - 1);
    }
    const long long rss = peak_rss_of_run(path, c.ctx, prompt);
    ASSERT_GT(rss, 0) << "slim run failed on " << path;
    const double err = (est - rss) / rss;
    EXPECT_LT(std::abs(err), 0.10) << c.model << " -c " << c.ctx << ": estimate " << est / 1048576 << " MiB, peak RSS "
                                   << rss / 1048576.0 << " MiB";
    std::printf("  %-40s -c %-6d estimate %7.2f MiB  peak RSS %7.2f MiB  %+5.1f%%\n", c.model, c.ctx, est / 1048576,
                rss / 1048576.0, 100 * err);
  }
}

}  // namespace
}  // namespace slim::test
