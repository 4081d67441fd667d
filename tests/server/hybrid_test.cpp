// The hybrid router in the server, end to end on 127.0.0.1: stories260K as
// the local model and a recording OpenAI-compatible server as the remote one
// (tests/route/recording_server.h), which keeps exactly what it received.
// Covers auto routing on both APIs, streaming on both paths, the privacy
// guard (the PII set never reaches the remote; answers are restored), the
// policies, remote failures falling back in time, and the audit log.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "net/outbound.h"
#include "route/audit.h"
#include "route/recording_server.h"
#include "route/router.h"
#include "server/server.h"
#include "test_util.h"

namespace slim {
namespace {

using json = nlohmann::json;
using test::Mode;

const bool kIgnoreSigpipe = [] { std::signal(SIGPIPE, SIG_IGN); return true; }();

const char* kStory = "Once there was a little girl who loved to play in the park.";
const char* kCode = "Write a SQL query that joins the orders table with customers and sums revenue per country.";

struct Hybrid {
  test::RecordingServer remote;
  std::string dir, audit_path;
  std::unique_ptr<Server> srv;
  std::thread th;
  int port = 0;

  explicit Hybrid(Policy policy, double timeout_s = 3, std::function<void(RouteConfig&)> tweak = nullptr) {
    EXPECT_TRUE(remote.start());
    static std::atomic<int> n{0};
    dir = test::temp_dir() + "/hybrid-" + std::to_string(++n);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    audit_path = dir + "/audit.jsonl";
    RouteConfig cfg;
    cfg.policy = policy;
    RemoteEndpoint ep;
    ep.name = "cloud";
    ep.base_url = remote.base_url();
    ep.model = "big-model";
    ep.timeout_s = timeout_s;
    ep.connect_timeout_s = 1;
    cfg.remotes.push_back(ep);
    cfg.privacy.forbid = {"secret"};
    cfg.audit_log = audit_path;
    if (tweak) tweak(cfg);
    net::set_local_only(policy == Policy::LocalOnly);
    auto router = Router::create(cfg);
    EXPECT_TRUE(router) << router.error();
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.models = {test::shared_path("models/stories260K.gguf")};
    o.parallel = 4;
    o.n_ctx = 512;
    o.store_root = dir + "/store";
    o.router = *router;
    srv = std::make_unique<Server>(o);
    Status st = srv->bind();
    EXPECT_TRUE(st) << st.message();
    port = srv->port();
    th = std::thread([this] { srv->run(); });
    for (int i = 0; i < 200; ++i) {
      httplib::Client c("127.0.0.1", port);
      if (auto r = c.Get("/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Hybrid() {
    srv->stop();
    th.join();
    net::set_local_only(false);
  }
  httplib::Result post(const std::string& path, const json& body) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60);
    return c.Post(path.c_str(), body.dump(), "application/json");
  }
  std::vector<json> audit() const {
    auto r = read_audit(audit_path);
    EXPECT_TRUE(r) << r.error();
    return r ? *r : std::vector<json>{};
  }
};

json chat(const std::string& model, const std::string& content, bool stream = false, int max_tokens = 16) {
  return {{"model", model}, {"messages", {{{"role", "user"}, {"content", content}}}}, {"max_tokens", max_tokens},
          {"temperature", 0}, {"stream", stream}};
}

std::string content_of(const json& body) { return body["choices"][0]["message"]["content"].get<std::string>(); }

// SSE "data:" payloads of a stream body, [DONE] excluded.
std::vector<json> sse_events(const std::string& body) {
  std::vector<json> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find("\n\n", pos);
    std::string d = body.substr(pos + 6, end - pos - 6);
    if (d != "[DONE]") out.push_back(json::parse(d));
    pos = end;
  }
  return out;
}

TEST(Hybrid, ModelsListAutoAndTheRemote) {
  Hybrid h(Policy::Auto);
  httplib::Client c("127.0.0.1", h.port);
  auto r = c.Get("/v1/models");
  ASSERT_TRUE(r);
  std::set<std::string> ids;
  const json models = json::parse(r->body);
  for (auto& m : models["data"]) ids.insert(m["id"].get<std::string>());
  EXPECT_TRUE(ids.count("stories260K") && ids.count("auto") && ids.count("cloud")) << r->body;
  auto t = c.Get("/api/tags");
  ASSERT_TRUE(t);
  std::set<std::string> names;
  const json tags = json::parse(t->body);
  for (auto& m : tags["models"]) names.insert(m["name"].get<std::string>());
  EXPECT_TRUE(names.count("stories260K") && names.count("auto") && names.count("cloud")) << t->body;
}

TEST(Hybrid, AutoAnswersStoriesLocallyAndEscalatesTheRest) {
  Hybrid h(Policy::Auto);
  auto local = h.post("/v1/chat/completions", chat("auto", kStory));
  ASSERT_TRUE(local);
  ASSERT_EQ(local->status, 200) << local->body;
  EXPECT_EQ(local->get_header_value("X-Slim-Backend"), "local");
  json lb = json::parse(local->body);
  EXPECT_EQ(lb["x_slim"]["backend"], "local");
  EXPECT_EQ(lb["x_slim"]["route"]["decision"], "local");
  EXPECT_TRUE(lb["x_slim"]["route"]["signals"].contains("nll_mean"));
  EXPECT_EQ(h.remote.request_count(), 0u);
  EXPECT_TRUE(h.audit().empty());

  auto remote = h.post("/v1/chat/completions", chat("auto", kCode));
  ASSERT_TRUE(remote);
  ASSERT_EQ(remote->status, 200) << remote->body;
  EXPECT_EQ(remote->get_header_value("X-Slim-Backend"), "remote");
  json rb = json::parse(remote->body);
  EXPECT_EQ(rb["x_slim"]["backend"], "remote");
  EXPECT_EQ(rb["x_slim"]["endpoint"], "cloud");
  EXPECT_EQ(rb["x_slim"]["route"]["decision"], "remote");
  EXPECT_EQ(content_of(rb), std::string("echo: ") + kCode);
  ASSERT_EQ(h.remote.request_count(), 1u);
  json sent = json::parse(h.remote.requests()[0].body);
  EXPECT_EQ(sent["model"], "big-model");
  EXPECT_FALSE(sent.contains("x_slim"));
  auto audit = h.audit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["endpoint"], "cloud");
  EXPECT_EQ(audit[0]["decision"], "remote");
  EXPECT_EQ(audit[0]["bytes_sent"].get<uint64_t>(), h.remote.requests()[0].body.size());
  EXPECT_EQ(audit[0]["request_id"], rb["id"]);
}

TEST(Hybrid, StreamingOnBothPathsAndBothApis) {
  Hybrid h(Policy::Auto);
  h.remote.set_split_bytes(7);  // events arrive in pieces
  for (const char* prompt : {kStory, kCode}) {
    auto r = h.post("/v1/chat/completions", chat("auto", prompt, true));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    auto events = sse_events(r->body);
    ASSERT_FALSE(events.empty());
    std::string text;
    for (auto& ev : events) {
      EXPECT_TRUE(ev.contains("x_slim")) << ev.dump();
      if (ev["choices"].size() && ev["choices"][0]["delta"].contains("content"))
        text += ev["choices"][0]["delta"]["content"].get<std::string>();
    }
    const bool remote = prompt == kCode;
    EXPECT_EQ(r->get_header_value("X-Slim-Backend"), remote ? "remote" : "local");
    EXPECT_EQ(events.back()["x_slim"]["backend"], remote ? "remote" : "local") << events.back().dump();
    if (remote) {
      EXPECT_EQ(text.rfind(std::string("echo: ") + kCode, 0), 0u) << text;
    }
    EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);
  }
  // Ollama: NDJSON records, the last with done and x_slim.
  json ob = {{"model", "auto"}, {"messages", {{{"role", "user"}, {"content", kCode}}}}, {"options", {{"temperature", 0}}}};
  auto r = h.post("/api/chat", ob);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string text;
  json last;
  std::istringstream lines(r->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    last = json::parse(line);
    text += last["message"]["content"].get<std::string>();
  }
  EXPECT_TRUE(last["done"].get<bool>());
  EXPECT_EQ(last["x_slim"]["backend"], "remote");
  EXPECT_EQ(text.rfind(std::string("echo: ") + kCode, 0), 0u) << text;
  // /api/generate, not streaming, local.
  auto g = h.post("/api/generate", {{"model", "auto"}, {"prompt", kStory}, {"stream", false}, {"options", {{"num_predict", 8}}}});
  ASSERT_TRUE(g);
  ASSERT_EQ(g->status, 200) << g->body;
  EXPECT_EQ(json::parse(g->body)["x_slim"]["route"]["decision"], "local");
  EXPECT_EQ(h.audit().size(), 2u);  // the streamed SQL prompt and the Ollama chat; the stories stayed
}

// Every prompt of the PII set goes to the remote by name: no listed value
// reaches it, every look-alike does, and the echoed answer comes back with
// the values restored (streamed and not).
TEST(Hybrid, PrivacyGuardOnThePiiSet) {
  const std::string path = std::string(SLIM_SOURCE_DIR) + "/tests/privacy/pii_set.jsonl";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path;
  Hybrid h(Policy::Auto, 3, [](RouteConfig& c) { c.privacy.forbid.clear(); });
  h.remote.set_split_bytes(5);
  int n = 0, n_values = 0, n_lookalikes = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json row = json::parse(line);
    const std::string prompt = row["prompt"];
    const bool stream = n % 2 == 1;
    auto r = h.post("/v1/chat/completions", chat("cloud", prompt, stream));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string received = h.remote.requests().back().body;
    for (auto& v : row["values"]) {
      EXPECT_EQ(received.find(v["value"].get<std::string>()), std::string::npos)
          << v["category"] << " value '" << v["value"].get<std::string>() << "' reached the remote: " << received;
      ++n_values;
    }
    for (auto& l : row["lookalikes"]) {
      EXPECT_NE(json::parse(received)["messages"][0]["content"].get<std::string>().find(l.get<std::string>()),
                std::string::npos)
          << "look-alike '" << l.get<std::string>() << "' was redacted";
      ++n_lookalikes;
    }
    std::string answer;
    if (stream) {
      for (auto& ev : sse_events(r->body))
        if (ev["choices"].size() && ev["choices"][0].contains("delta") && ev["choices"][0]["delta"].contains("content"))
          answer += ev["choices"][0]["delta"]["content"].get<std::string>();
      EXPECT_EQ(answer.rfind("echo: " + prompt, 0), 0u) << answer;
    } else {
      answer = content_of(json::parse(r->body));
      EXPECT_EQ(answer, "echo: " + prompt);
    }
    ++n;
  }
  EXPECT_GE(n, 150);
  EXPECT_GT(n_values, 150);
  EXPECT_GT(n_lookalikes, 30);
  // The audit log counts redactions by category and never holds a value.
  auto audit = h.audit();
  ASSERT_EQ((int)audit.size(), n);
  const std::string log = test::read_file(h.audit_path);
  EXPECT_EQ(log.find("john.doe@example.com"), std::string::npos);
  EXPECT_EQ(audit[0]["redactions"]["email"], 1);
}

TEST(Hybrid, LocalOnlyMakesNoOutboundConnection) {
  const uint64_t before = net::connections_attempted();
  Hybrid h(Policy::LocalOnly);
  auto a = h.post("/v1/chat/completions", chat("auto", kCode));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 200) << a->body;
  json ab = json::parse(a->body);
  EXPECT_EQ(ab["x_slim"]["backend"], "local");
  EXPECT_EQ(ab["x_slim"]["route"]["router_decision"], "remote");
  EXPECT_NE(ab["x_slim"]["route"]["kept_local"].get<std::string>().find("local-only"), std::string::npos);
  auto e = h.post("/v1/chat/completions", chat("cloud", kCode));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 403) << e->body;
  auto o = h.post("/api/chat", {{"model", "cloud"}, {"messages", {{{"role", "user"}, {"content", kCode}}}}});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, 403) << o->body;
  EXPECT_EQ(h.remote.request_count(), 0u);
  EXPECT_EQ(net::connections_attempted(), before);
  EXPECT_TRUE(h.audit().empty());
}

TEST(Hybrid, AskPolicyAnswersLocallyAndOffersTheEscalation) {
  Hybrid h(Policy::Ask);
  auto r = h.post("/v1/chat/completions", chat("auto", kCode));
  ASSERT_TRUE(r);
  json b = json::parse(r->body);
  EXPECT_EQ(b["x_slim"]["backend"], "local");
  EXPECT_TRUE(b["x_slim"]["route"]["escalation_available"].get<bool>());
  EXPECT_EQ(b["x_slim"]["route"]["endpoint"], "cloud");
  EXPECT_EQ(h.remote.request_count(), 0u);
  // The user confirms by naming the endpoint.
  auto c = h.post("/v1/chat/completions", chat("cloud", kCode));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get_header_value("X-Slim-Backend"), "remote");
  EXPECT_EQ(h.remote.request_count(), 1u);
}

TEST(Hybrid, PrivacyRulesForbidEscalation) {
  Hybrid h(Policy::Auto);
  // A marker, a forbidden category (secret), the per-request flag.
  const std::vector<json> bodies = {
      chat("auto", std::string(kCode) + " #private"),
      chat("auto", std::string(kCode) + " The password=hunter2-Very-Secret is in the config."),
      [] { json b = chat("auto", kCode); b["x_slim"] = {{"local_only", true}}; return b; }(),
  };
  for (const auto& body : bodies) {
    auto r = h.post("/v1/chat/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json b = json::parse(r->body);
    EXPECT_EQ(b["x_slim"]["backend"], "local") << r->body;
    EXPECT_TRUE(b["x_slim"]["route"].contains("kept_local")) << r->body;
    json named = body;
    named["model"] = "cloud";
    auto n = h.post("/v1/chat/completions", named);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->status, 403) << n->body;
  }
  EXPECT_EQ(h.remote.request_count(), 0u);
  EXPECT_TRUE(h.audit().empty());
}

// Down, slower than the timeout, 500, 429, garbage, cut off: each falls back
// to the local answer, visibly, within the timeout.
TEST(Hybrid, RemoteFailuresFallBackInTime) {
  const double timeout_s = 1.5;
  Hybrid h(Policy::Auto, timeout_s);
  h.remote.set_slow_ms(6000);
  struct Case {
    Mode mode;
    const char* failure;
  };
  const Case cases[] = {{Mode::Down, "unreachable"}, {Mode::Slow, "timeout"}, {Mode::Http500, "http 500"},
                        {Mode::Http429, "http 429"},  {Mode::Garbage, "malformed"}, {Mode::CutOff, ""}};
  int attempts = 0;
  for (const Case& c : cases) {
    h.remote.set_mode(c.mode);
    for (bool stream : {false, true}) {
      auto t0 = std::chrono::steady_clock::now();
      auto r = h.post("/v1/chat/completions", chat("auto", kCode, stream));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++attempts;
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      EXPECT_LT(s, timeout_s + 2.0) << "mode " << (int)c.mode;
      json fb;
      if (stream) {
        auto events = sse_events(r->body);
        ASSERT_FALSE(events.empty());
        fb = events.back()["x_slim"]["route"]["fallback"];
      } else {
        fb = json::parse(r->body)["x_slim"]["route"]["fallback"];
      }
      ASSERT_TRUE(fb.is_object()) << "mode " << (int)c.mode << " stream " << stream << ": " << r->body;
      if (*c.failure) EXPECT_EQ(fb["failure"], c.failure) << r->body;
      else EXPECT_FALSE(fb["failure"].get<std::string>().empty());
    }
  }
  h.remote.set_mode(Mode::Normal);
  EXPECT_EQ((int)h.audit().size(), attempts);  // one entry per escalation attempt
}

// 1,000 requests from 8 clients, a mix of prompts that stay and prompts that
// leave: exactly one audit entry per escalation, ids unique, none lost.
TEST(Hybrid, AuditLogKeepsEveryEscalationUnderLoad) {
  Hybrid h(Policy::Auto);
  std::atomic<int> next{0}, remote{0}, failed{0};
  std::mutex ids_mu;
  std::set<std::string> remote_ids;
  const int total = 1000;
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", h.port);
      c.set_read_timeout(60);
      for (int i; (i = next++) < total;) {
        json body = chat("auto", i % 3 == 0 ? std::string(kCode) + " #" + std::to_string(i) : kStory, false, 4);
        auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
        if (!r || r->status != 200) { ++failed; continue; }
        json b = json::parse(r->body);
        if (b["x_slim"]["backend"] == "remote") {
          ++remote;
          std::lock_guard<std::mutex> lk(ids_mu);
          remote_ids.insert(b["id"].get<std::string>());
        }
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(remote.load(), 300);
  std::printf("audit under load: %d requests, %d escalated\n", total, remote.load());
  auto audit = h.audit();
  EXPECT_EQ((int)audit.size(), remote.load());
  std::set<std::string> logged;
  for (auto& a : audit) logged.insert(a["request_id"].get<std::string>());
  EXPECT_EQ(logged, remote_ids);
  EXPECT_EQ((int)h.remote.request_count(), remote.load());
}

}  // namespace
}  // namespace slim

namespace slim {
namespace {

// Cascade mode: the local draft is judged before anyone sees it.
TEST(Hybrid, CascadeKeepsSureDraftsAndEscalatesUnsureOnes) {
  {
    Hybrid h(Policy::Auto, 3, [](RouteConfig& c) { c.route.cascade = true; });
    for (bool stream : {false, true}) {
      auto r = h.post("/v1/chat/completions", chat("auto", kStory, stream, 24));
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      json route = stream ? sse_events(r->body).back()["x_slim"]["route"] : json::parse(r->body)["x_slim"]["route"];
      EXPECT_EQ(route["decision"], "local") << route.dump();
      EXPECT_TRUE(route["cascade"].get<bool>());
      EXPECT_GT(route["draft"]["draft_tokens"].get<int>(), 0);
      EXPECT_LE(route["draft"]["logprob_mean"].get<double>(), 0.0);
    }
    EXPECT_EQ(h.remote.request_count(), 0u);
  }
  // A bar no draft can clear: the same prompt goes out after its draft.
  Hybrid h(Policy::Auto, 3, [](RouteConfig& c) {
    c.route.cascade = true;
    c.route.min_draft_logprob = -1e-6;
  });
  auto r = h.post("/api/chat", {{"model", "auto"}, {"stream", false}, {"messages", {{{"role", "user"}, {"content", kStory}}}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json b = json::parse(r->body);
  EXPECT_EQ(b["x_slim"]["backend"], "remote") << r->body;
  EXPECT_NE(b["x_slim"]["route"]["reason"].get<std::string>().find("draft"), std::string::npos);
  EXPECT_EQ(h.remote.request_count(), 1u);
  ASSERT_EQ(h.audit().size(), 1u);
  EXPECT_TRUE(h.audit()[0]["signals"].contains("draft"));
}

}  // namespace
}  // namespace slim

#include "engine/engine.h"

namespace slim {
namespace {

// The server's signals (computed in the scheduler's batches) equal the
// terminal's (computed with the engine alone), also for a prompt long enough
// to be sampled rather than scored whole.
TEST(Hybrid, ServerSignalsEqualTheCommandLine) {
  Hybrid h(Policy::Auto);
  EngineParams ep;
  ep.n_ctx = 512;
  auto e = Engine::load(test::shared_path("models/stories260K.gguf"), ep);
  ASSERT_TRUE(e) << e.error();
  RouteConfig cfg;
  auto router = Router::create(cfg);
  ASSERT_TRUE(router);
  std::string long_story;
  for (int i = 0; i < 12; ++i) long_story += "Tom and his dog went to the park to play with a big red ball. ";
  for (const std::string& text : {std::string(kStory), long_story}) {
    auto r = h.post("/v1/completions", {{"model", "auto"}, {"prompt", text}, {"max_tokens", 2}, {"temperature", 0}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json sig = json::parse(r->body)["x_slim"]["route"]["signals"];
    auto s = engine_prompt_signals(**e, **router, text);
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(sig["prompt_tokens"].get<int>(), s->n_tokens);
    EXPECT_NEAR(sig["nll_mean"].get<double>(), s->nll_mean, 2e-3) << text.size();
    EXPECT_NEAR(sig["nll_p90"].get<double>(), s->nll_p90, 2e-3);
  }
  EXPECT_GT(routing_tokens((*e)->tokenizer(), long_story).size(), kMaxScored + 1);
}

}  // namespace
}  // namespace slim
