// remote_post against the recording server on 127.0.0.1: what arrives (path,
// body, bearer key, headers), streams passed on event by event however the
// bytes are split, every failure mode classified within its timeout,
// cancellation within a fraction of a second, and the local-only refusal.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "net/outbound.h"
#include "recording_server.h"
#include "route/remote.h"

using slim::RemoteEndpoint;
using slim::RemoteReply;
using slim::remote_post;
using slim::test::Mode;
using slim::test::RecordingServer;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class RemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Loopback only: no proxy from the environment may see these requests.
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) ::unsetenv(v);
    ::setenv("no_proxy", "127.0.0.1", 1);
    ::unsetenv("SLIM_TEST_REMOTE_KEY");
    slim::net::set_local_only(false);
    ASSERT_TRUE(srv.start());
    ep.name = "rec";
    ep.base_url = srv.base_url();
    ep.model = "rec-model";
    ep.timeout_s = 1.0;
    ep.connect_timeout_s = 1.0;
  }
  void TearDown() override {
    slim::net::set_local_only(false);
    ::unsetenv("SLIM_TEST_REMOTE_KEY");
  }

  static std::string chat_body(const std::string& text, bool stream) {
    return json{{"model", "rec-model"}, {"stream", stream}, {"messages", {{{"role", "user"}, {"content", text}}}}}.dump();
  }

  // A streaming POST collecting every event passed on.
  RemoteReply stream(std::vector<std::string>& events, const std::string& text = "hi",
                     const std::atomic<bool>* cancel = nullptr) {
    return remote_post(
        ep, "/chat/completions", chat_body(text, true),
        [&](std::string_view d) {
          events.emplace_back(d);
          return true;
        },
        cancel);
  }

  RecordingServer srv;
  RemoteEndpoint ep;
};

TEST_F(RemoteTest, ChatCompletionArrivesAndComesBack) {
  const std::string body = chat_body("hello there", false);
  RemoteReply r = remote_post(ep, "/chat/completions", body);
  ASSERT_TRUE(r.ok) << r.failure << ": " << r.message;
  EXPECT_EQ(r.http_status, 200);
  EXPECT_TRUE(r.failure.empty());
  json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "echo: hello there");
  EXPECT_EQ(r.bytes_sent, body.size());
  EXPECT_EQ(r.bytes_received, r.body.size());

  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/v1/chat/completions");
  EXPECT_EQ(reqs[0].body, body);
  EXPECT_EQ(reqs[0].header("content-type"), "application/json");
  EXPECT_EQ(reqs[0].header("accept"), "application/json");
  EXPECT_FALSE(reqs[0].has_header("authorization"));
}

TEST_F(RemoteTest, CompletionsPathAndTrailingSlashInBaseUrl) {
  ep.base_url = srv.base_url() + "/";
  const std::string body = json{{"model", "rec-model"}, {"prompt", "once upon"}}.dump();
  RemoteReply r = remote_post(ep, "/completions", body);
  ASSERT_TRUE(r.ok) << r.failure << ": " << r.message;
  EXPECT_EQ(json::parse(r.body)["choices"][0]["text"], "echo: once upon");
  ASSERT_EQ(srv.request_count(), 1u);
  EXPECT_EQ(srv.requests()[0].path, "/v1/completions");
}

TEST_F(RemoteTest, StreamPassesEveryEventInOrderAndStopsAtDone) {
  srv.set_stream_chunks(7);
  std::vector<std::string> events;
  RemoteReply r = stream(events, "tell me");
  ASSERT_TRUE(r.ok) << r.failure << ": " << r.message;
  EXPECT_EQ(r.http_status, 200);
  // Exactly the payloads sent (multi-line data joined with LF), nothing after [DONE].
  EXPECT_EQ(events, srv.plan_stream("rec-model", "tell me", true, 7).events);
  ASSERT_EQ(events.size(), 8u);
  EXPECT_EQ(json::parse(events[0])["choices"][0]["delta"]["content"], "echo: tell me ");
  EXPECT_EQ(json::parse(events[3])["choices"][0]["delta"]["content"], "w3 ");
  EXPECT_EQ(json::parse(events[7])["choices"][0]["finish_reason"], "stop");
  for (const auto& e : events) EXPECT_EQ(e.find("after"), std::string::npos);
  ASSERT_EQ(srv.request_count(), 1u);
  EXPECT_EQ(srv.requests()[0].header("accept"), "text/event-stream");
  EXPECT_TRUE(r.body.empty());
}

TEST_F(RemoteTest, StreamSplitIntoTinyPiecesIsReassembled) {
  srv.set_stream_chunks(4);
  const auto want = srv.plan_stream("rec-model", "split me", true, 4).events;
  for (int split : {1, 2, 5, 13}) {
    srv.set_split_bytes(split);
    std::vector<std::string> events;
    ep.timeout_s = 10;  // a byte at a time takes a while
    RemoteReply r = stream(events, "split me");
    ASSERT_TRUE(r.ok) << "split " << split << ": " << r.failure << ": " << r.message;
    EXPECT_EQ(events, want) << "split " << split;
  }
}

TEST_F(RemoteTest, StreamEventsArriveOneByOneNotAtTheEnd) {
  srv.set_stream_chunks(4);
  srv.set_chunk_delay_ms(150);
  ep.timeout_s = 5;
  std::vector<double> at;
  const auto t0 = Clock::now();
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("x", true), [&](std::string_view) {
    at.push_back(seconds_since(t0));
    return true;
  });
  const double total = seconds_since(t0);
  ASSERT_TRUE(r.ok) << r.failure << ": " << r.message;
  ASSERT_EQ(at.size(), 5u);
  // Each event was handed on when it arrived, ~150 ms after the one before.
  EXPECT_LT(at[0], total - 0.4);
  for (size_t i = 1; i < at.size(); ++i) EXPECT_GT(at[i] - at[i - 1], 0.08) << i;
}

TEST_F(RemoteTest, StreamEndingAtEofWithoutDoneDeliversTheLastEvent) {
  srv.set_end_without_done(true);
  srv.set_stream_chunks(5);
  std::vector<std::string> events;
  RemoteReply r = stream(events, "eof");
  ASSERT_TRUE(r.ok) << r.failure << ": " << r.message;
  EXPECT_EQ(events, srv.plan_stream("rec-model", "eof", true, 5).events);
}

TEST_F(RemoteTest, BearerKeyFromTheEnvironmentOnlyWhenSet) {
  ep.api_key_env = "SLIM_TEST_REMOTE_KEY";
  ::setenv("SLIM_TEST_REMOTE_KEY", "sk-test-123", 1);
  ASSERT_TRUE(remote_post(ep, "/chat/completions", chat_body("a", false)).ok);
  ::unsetenv("SLIM_TEST_REMOTE_KEY");
  ASSERT_TRUE(remote_post(ep, "/chat/completions", chat_body("b", false)).ok);
  ::setenv("SLIM_TEST_REMOTE_KEY", "", 1);
  ASSERT_TRUE(remote_post(ep, "/chat/completions", chat_body("c", false)).ok);
  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("authorization"), "Bearer sk-test-123");
  EXPECT_FALSE(reqs[1].has_header("authorization"));
  EXPECT_FALSE(reqs[2].has_header("authorization"));
}

TEST_F(RemoteTest, ExtraHeadersAreSentAndCannotInjectOthers) {
  ep.headers = {{"X-Team", "blue"}, {"OpenAI-Organization", "org-1"}, {"X-Evil", "a\r\nX-Injected: 1"}};
  ASSERT_TRUE(remote_post(ep, "/chat/completions", chat_body("h", false)).ok);
  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("x-team"), "blue");
  EXPECT_EQ(reqs[0].header("openai-organization"), "org-1");
  EXPECT_FALSE(reqs[0].has_header("x-injected"));
}

TEST_F(RemoteTest, SlowEndpointTimesOutWithinTheTimeout) {
  srv.set_mode(Mode::Slow);
  for (bool streaming : {false, true}) {
    std::vector<std::string> events;
    const auto t0 = Clock::now();
    RemoteReply r = streaming ? stream(events) : remote_post(ep, "/chat/completions", chat_body("s", false));
    const double took = seconds_since(t0);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.failure, "timeout") << r.message;
    EXPECT_EQ(r.http_status, 0);
    EXPECT_GE(took, 0.9);
    EXPECT_LT(took, ep.timeout_s + 0.5);
    EXPECT_TRUE(events.empty());
  }
  EXPECT_EQ(srv.request_count(), 2u);
}

TEST_F(RemoteTest, StreamStallingMidWayTimesOut) {
  srv.set_stream_chunks(20);
  srv.set_chunk_delay_ms(400);
  std::vector<std::string> events;
  const auto t0 = Clock::now();
  RemoteReply r = stream(events);
  EXPECT_LT(seconds_since(t0), ep.timeout_s + 0.5);
  EXPECT_EQ(r.failure, "timeout") << r.message;
  EXPECT_EQ(r.http_status, 200);
  EXPECT_GE(events.size(), 1u);
  EXPECT_LT(events.size(), 10u);
}

TEST_F(RemoteTest, Http500IsClassifiedWithTheErrorExcerpt) {
  srv.set_mode(Mode::Http500);
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("e", false));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "http 500");
  EXPECT_EQ(r.http_status, 500);
  EXPECT_NE(r.message.find("internal failure (recording server)"), std::string::npos) << r.message;
  std::vector<std::string> events;
  RemoteReply s = stream(events);
  EXPECT_EQ(s.failure, "http 500");
  EXPECT_TRUE(events.empty());
}

TEST_F(RemoteTest, Http429CarriesRetryAfter) {
  srv.set_mode(Mode::Http429);
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("r", false));
  EXPECT_EQ(r.failure, "http 429");
  EXPECT_EQ(r.http_status, 429);
  EXPECT_NE(r.message.find("retry after 7 s"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("Rate limit reached"), std::string::npos) << r.message;
}

TEST_F(RemoteTest, GarbageIsMalformed) {
  srv.set_mode(Mode::Garbage);
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("g", false));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "malformed");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_NE(r.message.find("not a JSON object"), std::string::npos) << r.message;
  std::vector<std::string> events;
  RemoteReply s = stream(events);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.failure, "malformed") << s.message;
  EXPECT_TRUE(events.empty());  // nothing that is not a JSON object is passed on
}

TEST_F(RemoteTest, CutOffReplyIsNotOk) {
  srv.set_mode(Mode::CutOff);
  srv.set_cut_after(2);
  std::vector<std::string> events;
  RemoteReply s = stream(events);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.failure, "malformed") << s.message;
  EXPECT_NE(s.message.find("cut off"), std::string::npos) << s.message;
  EXPECT_EQ(events.size(), 2u);  // what arrived whole was passed on, the torn event was not
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("c", false));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "malformed") << r.message;
}

TEST_F(RemoteTest, DownIsUnreachableAtOnce) {
  srv.set_mode(Mode::Down);
  for (bool streaming : {false, true}) {
    std::vector<std::string> events;
    const auto t0 = Clock::now();
    RemoteReply r = streaming ? stream(events) : remote_post(ep, "/chat/completions", chat_body("d", false));
    EXPECT_LT(seconds_since(t0), 0.5);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.failure, "unreachable") << r.message;
    EXPECT_EQ(r.http_status, 0);
    EXPECT_EQ(r.bytes_sent, 0u);
    EXPECT_NE(r.message.find("127.0.0.1:" + std::to_string(srv.port())), std::string::npos) << r.message;
  }
  srv.set_mode(Mode::Normal);  // and back: the same port serves again
  EXPECT_TRUE(remote_post(ep, "/chat/completions", chat_body("up", false)).ok);
  EXPECT_EQ(srv.request_count(), 1u);
}

TEST_F(RemoteTest, CancelMidStreamReturnsPromptly) {
  srv.set_stream_chunks(50);
  srv.set_chunk_delay_ms(200);  // ten seconds of stream
  ep.timeout_s = 20;
  std::atomic<bool> cancel{false};
  std::atomic<int> seen{0};
  Clock::time_point cancelled_at;
  std::thread canceller([&] {
    while (seen < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // mid-gap: no bytes are flowing
    cancelled_at = Clock::now();
    cancel = true;
  });
  RemoteReply r = remote_post(
      ep, "/chat/completions", chat_body("c", true),
      [&](std::string_view) {
        ++seen;
        return true;
      },
      &cancel);
  const auto returned = Clock::now();
  canceller.join();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "cancelled") << r.message;
  EXPECT_LT(std::chrono::duration<double>(returned - cancelled_at).count(), 0.5);
  EXPECT_LT(seen.load(), 5);
}

TEST_F(RemoteTest, CancelWhileWaitingForTheFirstByteReturnsPromptly) {
  // libcurl calls its progress callback only about once a second while
  // nothing arrives; three tries make a lucky pass without the watchdog unlikely.
  srv.set_mode(Mode::Slow);
  ep.timeout_s = 10;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::atomic<bool> cancel{false};
    Clock::time_point cancelled_at;
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      cancelled_at = Clock::now();
      cancel = true;
    });
    RemoteReply r = remote_post(ep, "/chat/completions", chat_body("w", false), nullptr, &cancel);
    const auto returned = Clock::now();
    canceller.join();
    EXPECT_EQ(r.failure, "cancelled") << r.message;
    EXPECT_LT(std::chrono::duration<double>(returned - cancelled_at).count(), 0.3) << "attempt " << attempt;
  }
}

TEST_F(RemoteTest, CancelledBeforeStartSendsNothing) {
  std::atomic<bool> cancel{true};
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("n", false), nullptr, &cancel);
  EXPECT_EQ(r.failure, "cancelled");
  EXPECT_EQ(srv.request_count(), 0u);
}

TEST_F(RemoteTest, HandlerReturningFalseStopsTheStream) {
  srv.set_stream_chunks(50);
  srv.set_chunk_delay_ms(200);
  ep.timeout_s = 20;
  int n = 0;
  const auto t0 = Clock::now();
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("s", true), [&](std::string_view) { return ++n < 2; });
  EXPECT_LT(seconds_since(t0), 1.0);
  EXPECT_EQ(n, 2);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "cancelled") << r.message;
}

TEST_F(RemoteTest, LocalOnlyRefusesWithoutARequest) {
  slim::net::set_local_only(true);
  const uint64_t refused = slim::net::connections_refused();
  std::vector<std::string> events;
  RemoteReply r = remote_post(ep, "/chat/completions", chat_body("secret", false));
  RemoteReply s = stream(events);
  for (const RemoteReply* x : {&r, &s}) {
    EXPECT_FALSE(x->ok);
    EXPECT_EQ(x->failure, "refused") << x->message;
    EXPECT_NE(x->message.find("local-only"), std::string::npos) << x->message;
    EXPECT_EQ(x->bytes_sent, 0u);
    EXPECT_EQ(x->http_status, 0);
  }
  EXPECT_EQ(slim::net::connections_refused(), refused + 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(srv.request_count(), 0u);
}

}  // namespace
