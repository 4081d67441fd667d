// The HTTP server end to end on 127.0.0.1: OpenAI and Ollama routes with the
// real stories260K model, parallel streams equal to single-client runs,
// constrained JSON, and the robustness cases (bad input, auth, body size,
// context overflow, many connections, a full queue, a client that vanishes).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "server/json_schema.h"
#include "server/server.h"
#include "test_util.h"

namespace slim {
namespace {

using json = nlohmann::json;

const bool kIgnoreSigpipe = [] { std::signal(SIGPIPE, SIG_IGN); return true; }();

class TestServer {
 public:
  explicit TestServer(ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.store_root.empty()) o.store_root = test::temp_dir() + "/store";
    srv_ = std::make_unique<Server>(o);
    Status st = srv_->bind();
    EXPECT_TRUE(st) << st.message();
    port_ = srv_->port();
    th_ = std::thread([this] { srv_->run(); });
    for (int i = 0; i < 200; ++i) {
      httplib::Client c("127.0.0.1", port_);
      if (auto r = c.Get("/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~TestServer() {
    srv_->stop();
    th_.join();
  }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60);
    return c;
  }
  httplib::Result post(const std::string& path, const json& body) const {
    return client().Post(path.c_str(), body.dump(), "application/json");
  }
  // A metric's value for the model (0 when absent).
  double metric(const std::string& name) const {
    auto r = client().Get("/metrics");
    if (!r) return -1;
    std::smatch m;
    std::regex re(name + "\\{model=\"[^\"]*\"\\} ([0-9.e+]+)");
    if (std::regex_search(r->body, m, re)) return std::stod(m[1]);
    return 0;
  }

 private:
  std::unique_ptr<Server> srv_;
  std::thread th_;
  int port_ = 0;
};

ServerOptions stories_options(int parallel = 4, int ctx = 512) {
  ServerOptions o;
  o.models = {test::shared_path("models/stories260K.gguf")};
  o.parallel = parallel;
  o.n_ctx = ctx;
  o.n_threads = 1;
  return o;
}

// The text of an SSE completion stream, checking its framing.
std::string sse_text(const std::string& body, bool chat, json* usage = nullptr, std::string* finish = nullptr) {
  std::string text;
  size_t pos = 0;
  bool done = false;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    std::string data = ev.substr(6);
    if (data == "[DONE]") { done = true; continue; }
    json j = json::parse(data);
    if (j.contains("usage") && usage) *usage = j["usage"];
    if (j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (!c["finish_reason"].is_null() && finish) *finish = c["finish_reason"];
    if (chat) {
      if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    } else {
      text += c["text"].get<std::string>();
    }
  }
  EXPECT_TRUE(done) << "no data: [DONE]";
  return text;
}

TEST(Server, CompletionMatchesSlimRun) {
  TestServer s(stories_options(2));
  auto r = s.post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("X-Slim-Backend"), "local");
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["x_slim"]["backend"], "local");
  EXPECT_EQ(j["x_slim"]["model"], "stories260K");
  EXPECT_EQ(j["usage"]["completion_tokens"], 24);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  auto cli = test::run_command(test::slim_binary() + " run -m " + test::shared_path("models/stories260K.gguf") +
                               " -c 512 -p 'Once upon a time' -n 24 --temp 0 2>/dev/null");
  ASSERT_EQ(cli.status, 0);
  ASSERT_FALSE(cli.out.empty());
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>() + "\n", cli.out);  // run ends its output with a newline
}

TEST(Server, ParallelStreamsEqualSingleClientOutputs) {
  TestServer s(stories_options(8));
  std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Tom and Sue went", "One day, a bird",
                                      "The sun was", "Lily had a red", "In the park", "A big fish"};
  auto request = [&](size_t i) {
    return json{{"prompt", prompts[i]}, {"max_tokens", 40 + 5 * (int)i}, {"temperature", 0}, {"stream", true}};
  };
  std::vector<std::string> single(prompts.size()), parallel(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto r = s.post("/v1/completions", request(i));
    ASSERT_TRUE(r && r->status == 200);
    single[i] = sse_text(r->body, false);
    ASSERT_FALSE(single[i].empty());
  }
  std::vector<std::thread> ts;
  std::vector<int> status(prompts.size(), 0);
  std::atomic<int> max_busy{0};
  for (size_t i = 0; i < prompts.size(); ++i)
    ts.emplace_back([&, i] {
      auto r = s.post("/v1/completions", request(i));
      if (!r) return;
      status[i] = r->status;
      parallel[i] = sse_text(r->body, false);
    });
  for (auto& t : ts) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(status[i], 200);
    EXPECT_EQ(parallel[i], single[i]) << "prompt " << i;
  }
  // The requests were batched: fewer forward passes than tokens generated.
  EXPECT_LT(s.metric("slim_decode_steps_total"), s.metric("slim_generated_tokens_total"));
}

TEST(Server, ChatStreamUsageAndPrefixReuse) {
  TestServer s(stories_options(2));
  json req = {{"model", "stories260K"}, {"messages", {{{"role", "user"}, {"content", "Tell me a story about a cat."}}}},
              {"max_tokens", 16}, {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  auto r = s.post("/v1/chat/completions", req);
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "");
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  json usage;
  std::string finish;
  std::string text = sse_text(r->body, true, &usage, &finish);
  EXPECT_EQ(usage["completion_tokens"], 16);
  EXPECT_EQ(finish, "length");
  // The second turn reuses the cached first turn.
  req["messages"].push_back({{"role", "assistant"}, {"content", text}});
  req["messages"].push_back({{"role", "user"}, {"content", "And then?"}});
  req["stream"] = false;
  auto r2 = s.post("/v1/chat/completions", req);
  ASSERT_TRUE(r2 && r2->status == 200) << r2->body;
  json j = json::parse(r2->body);
  EXPECT_GT(j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 10);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
}

TEST(Server, LogprobsAreLogSoftmax) {
  TestServer s(stories_options(1));
  auto r = s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 5},
                                           {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 3}});
  ASSERT_TRUE(r && r->status == 200) << r->body;
  json content = json::parse(r->body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 5u);
  for (const auto& t : content) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    // Greedy: the chosen token is the most likely one.
    EXPECT_DOUBLE_EQ(t["logprob"].get<double>(), t["top_logprobs"][0]["logprob"].get<double>());
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][1]["logprob"].get<double>());
    double p = 0;
    for (const auto& a : t["top_logprobs"]) p += std::exp(a["logprob"].get<double>());
    EXPECT_LE(p, 1.0 + 1e-5);
  }
}

TEST(Server, JsonSchemaIsEnforced) {
  TestServer s(stories_options(1));
  json schema = {{"type", "object"},
                 {"properties", {{"ok", {{"type", "boolean"}}}, {"color", {{"enum", {"red", "green"}}}}}},
                 {"required", {"ok", "color"}}};
  auto r = s.post("/v1/chat/completions",
                  {{"messages", {{{"role", "user"}, {"content", "Give me JSON"}}}}, {"max_tokens", 200}, {"temperature", 0},
                   {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", schema}}}}}});
  ASSERT_TRUE(r && r->status == 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  json out = json::parse(j["choices"][0]["message"]["content"].get<std::string>());
  ASSERT_TRUE(out.is_object());
  EXPECT_TRUE(out["ok"].is_boolean());
  EXPECT_TRUE(out["color"] == "red" || out["color"] == "green");
  EXPECT_EQ(out.size(), 2u);
  // Ollama's format "json" with sampling: still an object.
  auto o = s.post("/api/generate", {{"prompt", "Once"}, {"format", "json"}, {"stream", false},
                                    {"options", {{"temperature", 0.9}, {"seed", 3}, {"num_predict", 400}}}});
  ASSERT_TRUE(o && o->status == 200) << o->body;
  json oj = json::parse(o->body);
  if (oj["done_reason"] == "stop") {
    EXPECT_TRUE(json::parse(oj["response"].get<std::string>()).is_object());
  }
  // Unsupported schema keywords are refused, not ignored.
  auto bad = s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                             {"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", {{"anyOf", json::array()}}}}}}}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST(Server, OllamaRoutes) {
  TestServer s(stories_options(2));
  auto c = s.client();
  auto v = c.Get("/api/version");
  ASSERT_TRUE(v && v->status == 200);
  EXPECT_TRUE(json::parse(v->body).contains("version"));
  auto tags = c.Get("/api/tags");
  ASSERT_TRUE(tags && tags->status == 200);
  EXPECT_EQ(json::parse(tags->body)["models"][0]["name"], "stories260K");
  EXPECT_EQ(json::parse(tags->body)["models"][0]["details"]["family"], "llama");
  auto show = s.post("/api/show", {{"model", "stories260K"}});
  ASSERT_TRUE(show && show->status == 200) << show->body;
  EXPECT_EQ(json::parse(show->body)["model_info"]["general.architecture"], "llama");
  // Streaming chat: NDJSON records, the last one done with counts.
  auto chat = s.post("/api/chat", {{"model", "stories260K"}, {"messages", {{{"role", "user"}, {"content", "Hello"}}}},
                                   {"options", {{"num_predict", 6}, {"temperature", 0}}}});
  ASSERT_TRUE(chat && chat->status == 200) << chat->body;
  EXPECT_NE(chat->get_header_value("Content-Type").find("application/x-ndjson"), std::string::npos);
  std::istringstream lines(chat->body);
  std::string line, text;
  json last;
  int n = 0;
  while (std::getline(lines, line)) {
    last = json::parse(line);
    if (!last["done"].get<bool>()) text += last["message"]["content"].get<std::string>();
    ++n;
  }
  EXPECT_GE(n, 2);
  EXPECT_TRUE(last["done"].get<bool>());
  EXPECT_EQ(last["eval_count"], 6);
  EXPECT_EQ(last["done_reason"], "length");
  EXPECT_GT(last["prompt_eval_count"].get<int>(), 0);
  // Non-streaming generate equals the streamed text of the same request.
  auto g1 = s.post("/api/generate", {{"model", "stories260K"}, {"prompt", "The cat"}, {"stream", false},
                                     {"options", {{"num_predict", 10}, {"temperature", 0}}}});
  auto g2 = s.post("/api/generate", {{"model", "stories260K"}, {"prompt", "The cat"},
                                     {"options", {{"num_predict", 10}, {"temperature", 0}}}});
  ASSERT_TRUE(g1 && g2 && g1->status == 200 && g2->status == 200);
  std::string streamed;
  std::istringstream l2(g2->body);
  while (std::getline(l2, line)) streamed += json::parse(line)["response"].get<std::string>();
  EXPECT_EQ(json::parse(g1->body)["response"].get<std::string>(), streamed);
  auto ps = c.Get("/api/ps");
  ASSERT_TRUE(ps && ps->status == 200);
  EXPECT_EQ(json::parse(ps->body)["models"][0]["name"], "stories260K");
  // keep_alive 0 unloads once the request is done.
  auto unload = s.post("/api/generate", {{"model", "stories260K"}, {"keep_alive", 0}});
  ASSERT_TRUE(unload && unload->status == 200);
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gone = json::parse(c.Get("/api/ps")->body)["models"].empty();
  }
  EXPECT_TRUE(gone);
}

TEST(Server, Embeddings) {
  TestServer s(stories_options(2));
  auto r = s.post("/v1/embeddings", {{"input", {"a cat", "a dog", "a cat"}}});
  ASSERT_TRUE(r && r->status == 200) << r->body;
  json d = json::parse(r->body)["data"];
  ASSERT_EQ(d.size(), 3u);
  std::vector<std::vector<float>> e;
  for (auto& x : d) e.push_back(x["embedding"].get<std::vector<float>>());
  double norm = 0;
  for (float v : e[0]) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_EQ(e[0], e[2]);
  EXPECT_NE(e[0], e[1]);
  // base64: the same floats, little-endian.
  auto b = s.post("/v1/embeddings", {{"input", "a cat"}, {"encoding_format", "base64"}});
  ASSERT_TRUE(b && b->status == 200) << b->body;
  std::string b64 = json::parse(b->body)["data"][0]["embedding"];
  std::string bytes;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i + 3 < b64.size(); i += 4) {
    uint32_t n = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      n <<= 6;
      if (b64[i + k] == '=') ++pad; else n |= (uint32_t)alphabet.find(b64[i + k]);
    }
    for (int k = 0; k < 3 - pad; ++k) bytes += (char)(n >> (16 - 8 * k) & 0xff);
  }
  ASSERT_EQ(bytes.size(), e[0].size() * 4);
  std::vector<float> decoded(e[0].size());
  std::memcpy(decoded.data(), bytes.data(), bytes.size());
  EXPECT_EQ(decoded, e[0]);
  auto o = s.post("/api/embed", {{"model", "stories260K"}, {"input", "a cat"}});
  ASSERT_TRUE(o && o->status == 200) << o->body;
  EXPECT_EQ(json::parse(o->body)["embeddings"][0].get<std::vector<float>>(), e[0]);
}

TEST(Server, ModelsListAndWebPage) {
  TestServer s(stories_options(1));
  auto c = s.client();
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m && m->status == 200);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "stories260K");
  auto one = c.Get("/v1/models/stories260K");
  ASSERT_TRUE(one && one->status == 200);
  EXPECT_EQ(json::parse(one->body)["object"], "model");
  auto none = c.Get("/v1/models/nope");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto missing = c.Get("/no/such/file.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(json::parse(missing->body).contains("error"));
}

// Every error: the status, and OpenAI's {"error": {"message", "type"}} body.
void expect_openai_error(const httplib::Result& r, int status, const std::string& needle = "") {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body);
  ASSERT_TRUE(j["error"].is_object()) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  if (!needle.empty()) {
    EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r->body;
  }
}

TEST(ServerRobustness, MalformedJsonAndWrongTypes) {
  TestServer s(stories_options(1));
  auto c = s.client();
  expect_openai_error(c.Post("/v1/chat/completions", "{\"messages\": [", "application/json"), 400, "not valid JSON");
  expect_openai_error(c.Post("/v1/completions", "[1,2]", "application/json"), 400, "object");
  json msg = {{{"role", "user"}, {"content", "hi"}}};
  expect_openai_error(s.post("/v1/chat/completions", {{"messages", msg}, {"temperature", "hot"}}), 400, "temperature");
  expect_openai_error(s.post("/v1/chat/completions", {{"messages", "hi"}}), 400, "messages");
  expect_openai_error(s.post("/v1/chat/completions", {{"messages", msg}, {"max_tokens", "10"}}), 400, "max_tokens");
  expect_openai_error(s.post("/v1/chat/completions", {{"messages", {{{"role", 3}, {"content", "x"}}}}}), 400, "role");
  expect_openai_error(s.post("/v1/chat/completions", {{"messages", msg}, {"n", 2}}), 400, "n");
  expect_openai_error(s.post("/v1/chat/completions", {{"messages", msg}, {"stop", 5}}), 400, "stop");
  expect_openai_error(s.post("/v1/completions", {{"prompt", 5}}), 400, "prompt");
  expect_openai_error(s.post("/v1/embeddings", {{"input", {1.5}}}), 400, "input");
  // Ollama routes answer {"error": "message"}.
  auto o = s.post("/api/chat", {{"messages", msg}, {"options", {{"num_predict", "x"}}}});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, 400);
  EXPECT_TRUE(json::parse(o->body)["error"].is_string());
  // The server still works.
  auto ok = s.post("/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(ServerRobustness, UnknownModel) {
  TestServer s(stories_options(1));
  auto r = s.post("/v1/chat/completions", {{"model", "no-such-model"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}});
  expect_openai_error(r, 404, "no-such-model");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_not_found");
  auto o = s.post("/api/show", {{"model", "no-such-model"}});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, 404);
}

TEST(ServerRobustness, ApiKey) {
  ServerOptions o = stories_options(1);
  o.api_key = "sekret";
  o.cors = "*";
  TestServer s(o);
  auto c = s.client();
  expect_openai_error(c.Get("/v1/models"), 401, "missing API key");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  expect_openai_error(c.Get("/v1/models", wrong), 401, "invalid API key");
  auto api = c.Get("/api/tags");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 401);
  httplib::Headers right = {{"Authorization", "Bearer sekret"}};
  auto ok = c.Get("/v1/models", right);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Access-Control-Allow-Origin"), "*");
  auto health = c.Get("/health");  // not an API route
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto pre = c.Options("/v1/chat/completions");  // CORS preflight carries no credentials
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
}

TEST(ServerRobustness, OversizeBody) {
  ServerOptions o = stories_options(1);
  o.max_body = 4096;
  TestServer s(o);
  std::string big = json({{"prompt", std::string(10000, 'a')}}).dump();
  expect_openai_error(s.client().Post("/v1/completions", big, "application/json"), 413, "larger");
}

TEST(ServerRobustness, ContextOverflow) {
  TestServer s(stories_options(1, 64));
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "the little dog ran ";
  auto r = s.post("/v1/completions", {{"prompt", long_prompt}, {"max_tokens", 4}});
  expect_openai_error(r, 400, "context");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "context_length_exceeded");
  auto t = s.post("/v1/completions", {{"prompt", long_prompt}, {"max_tokens", 4}, {"truncate", true}});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->status, 200) << t->body;
  EXPECT_LT(json::parse(t->body)["usage"]["prompt_tokens"].get<int>(), 64);
}

TEST(ServerRobustness, SixtyFourConcurrentConnections) {
  ServerOptions o = stories_options(4);
  o.max_queue = 64;
  TestServer s(o);
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 64; ++i)
    ts.emplace_back([&, i] {
      json body = {{"prompt", "Once upon a time " + std::to_string(i)}, {"max_tokens", 8}, {"temperature", 0},
                   {"stream", i % 2 == 0}};
      auto r = s.post("/v1/completions", body);
      if (r && r->status == 200) ++ok;
      else ADD_FAILURE() << "request " << i << ": " << (r ? r->body : httplib::to_string(r.error()));
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 64) << s.client().Get("/metrics")->body;
  EXPECT_EQ(s.metric("slim_slots_busy"), 0);
  EXPECT_EQ(s.metric("slim_queue_depth"), 0);
}

TEST(ServerRobustness, FullQueueIs503WithRetryAfter) {
  ServerOptions o = stories_options(1, 2048);
  o.max_queue = 1;
  TestServer s(o);
  std::vector<std::thread> ts;
  std::atomic<int> ok{0}, busy{0};
  std::atomic<bool> retry_after{true};
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&] {
      auto r = s.post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 300}, {"temperature", 0}});
      if (!r) return;
      if (r->status == 200) ++ok;
      if (r->status == 503) {
        ++busy;
        if (r->get_header_value("Retry-After").empty()) retry_after = false;
        if (!json::parse(r->body)["error"].is_object()) retry_after = false;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_GE(ok.load(), 1);
  EXPECT_GE(busy.load(), 1);
  EXPECT_EQ(ok + busy, 8);
  EXPECT_TRUE(retry_after.load());
}

// Sends a raw streaming request, reads the first bytes of the answer, closes.
void start_and_drop(int port, const std::string& body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, (sockaddr*)&a, sizeof a), 0);
  std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), (ssize_t)req.size());
  std::string got;
  char buf[4096];
  while (got.find("data: ") == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, n);
  }
  EXPECT_NE(got.find("data: "), std::string::npos);
  close(fd);
}

TEST(ServerRobustness, DisconnectMidStreamFreesTheSlot) {
  TestServer s(stories_options(1, 2048));
  // Unhindered, this request generates until the context is full (~2040 tokens).
  json body = {{"prompt", "Once upon a time"}, {"max_tokens", 100000}, {"temperature", 0}, {"stream", true}};
  start_and_drop(s.port(), body.dump());
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    freed = s.metric("slim_slots_busy") == 0;
  }
  EXPECT_TRUE(freed);
  const double generated = s.metric("slim_generated_tokens_total");
  EXPECT_LT(generated, 1500) << "the generation was not cancelled";
  // The single slot serves the next request.
  auto r = s.post("/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 3}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// /api/pull through the store, from a file server on loopback: NDJSON lines
// with byte progress, then success, and the model is in the store.
TEST(ServerPull, StreamsProgressAndInstalls) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  const std::string bytes = test::read_file(path);
  httplib::Server files;
  files.Get("/stories.gguf", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(bytes, "application/octet-stream");
  });
  const int port = files.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { files.listen_after_bind(); });
  TestServer s(stories_options(1));
  auto r = s.post("/api/pull", {{"model", "http://127.0.0.1:" + std::to_string(port) + "/stories.gguf"}});
  files.stop();
  serving.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::istringstream lines(r->body);
  std::string line, last;
  bool complete_progress = false;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    json j = json::parse(line);
    ASSERT_FALSE(j.contains("error")) << line;
    if (j.contains("completed") && j.contains("total") && j["total"] == bytes.size() && j["completed"] == bytes.size())
      complete_progress = true;
    last = line;
  }
  EXPECT_TRUE(complete_progress) << r->body;
  EXPECT_EQ(json::parse(last)["status"], "success") << r->body;
  auto tags = s.client().Get("/api/tags");
  ASSERT_TRUE(tags);
  EXPECT_NE(tags->body.find("stories"), std::string::npos) << tags->body;
}

TEST(ServerRobustness, PullOfABadReferenceReportsAnError) {
  TestServer s(stories_options(1));
  auto r = s.post("/api/pull", {{"model", "ftp://nowhere/x.gguf"}, {"stream", false}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_TRUE(json::parse(r->body)["error"].is_string());
}

TEST(ServerUnit, DurationsAndSchemas) {
  EXPECT_DOUBLE_EQ(*parse_duration_s("5m"), 300);
  EXPECT_DOUBLE_EQ(*parse_duration_s("1h30m"), 5400);
  EXPECT_DOUBLE_EQ(*parse_duration_s("300"), 300);
  EXPECT_DOUBLE_EQ(*parse_duration_s("-1"), -1);
  EXPECT_FALSE(parse_duration_s("5x"));
  EXPECT_FALSE(parse_duration_s(""));
  auto s = compile_json_schema(json::parse(R"({"type":"object","properties":{"a":{"type":["integer","null"]},
      "b":{"type":"array","items":{"type":"string"}}},"required":["a"]})"));
  ASSERT_TRUE(s) << s.error();
  JsonMatcher m(*s);
  EXPECT_TRUE(m.feed("{\"a\": null, \"b\": [\"x\"]}") && m.can_end());
  JsonMatcher m2(*s);
  EXPECT_FALSE(m2.feed("{\"b\": [1"));
  EXPECT_FALSE(compile_json_schema(json::parse(R"({"type":"object","required":["zz"],"properties":{}})")));
  EXPECT_FALSE(compile_json_schema(json::parse(R"({"type":"strnig"})")));
  EXPECT_FALSE(schema_from_response_format(json{{"type", "yaml"}}));
  EXPECT_TRUE(schema_from_response_format(json{{"type", "text"}}) && !*schema_from_response_format(json{{"type", "text"}}));
}

}  // namespace
}  // namespace slim
