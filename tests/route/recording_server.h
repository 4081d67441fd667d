// A recording OpenAI-compatible server on 127.0.0.1 for tests (cpp-httplib).
// It records every request it receives (method, path, headers, body) and
// behaves as told: a normal reply (a chat completion or completion echoing
// the prompt, or an SSE stream of N chunks then [DONE]), a slow one, HTTP 500,
// HTTP 429 with Retry-After, garbage, a reply cut off mid-way, or down (the
// port not listening). Streams deliberately mix the framings the SSE spec
// allows (CR LF and LF endings, comments, event/id fields, data split over
// several lines) and can be written in pieces of a few bytes.
//
//   slim::test::RecordingServer srv;
//   srv.start();
//   ep.base_url = srv.base_url();          // http://127.0.0.1:PORT/v1
//   srv.set_mode(slim::test::Mode::Slow);
//   srv.requests().back().header("authorization");
//
// Tests link it with cpp-httplib (PkgConfig::HTTPLIB).
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace slim::test {

enum class Mode {
  Normal,   // 200: a completion, or a stream of N chunks then [DONE]
  Slow,     // waits slow_ms before the normal reply (longer than a client's timeout)
  Http500,  // 500 with an OpenAI-style error body
  Http429,  // 429 with Retry-After: 7
  Garbage,  // 200 with a body that is not JSON; a stream with no JSON event
  CutOff,   // the connection drops mid-reply (after cut_after events when streaming)
  Down,     // nothing listens on the port
};

struct RecordedRequest {
  std::string method, path, body;
  std::multimap<std::string, std::string> headers;  // lower-case names
  // The first value of a header ("" when absent); the name in any case.
  std::string header(const std::string& name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? "" : it->second;
  }
  bool has_header(const std::string& name) const { return headers.count(lower(name)) > 0; }
  static std::string lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
  }
};

class RecordingServer {
 public:
  RecordingServer() = default;
  RecordingServer(const RecordingServer&) = delete;
  RecordingServer& operator=(const RecordingServer&) = delete;
  ~RecordingServer() { stop(); }

  // Listens on 127.0.0.1 (a free port the first time, the same port after
  // Down). False when it cannot bind.
  bool start() {
    std::lock_guard<std::mutex> lk(life_mu_);
    return start_locked();
  }
  void stop() {
    std::lock_guard<std::mutex> lk(life_mu_);
    stop_locked();
  }

  int port() const { return port_; }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string base_url() const { return origin() + "/v1"; }

  // Down stops listening; any other mode listens again (on the same port).
  void set_mode(Mode m) {
    std::lock_guard<std::mutex> lk(life_mu_);
    mode_ = m;
    if (m == Mode::Down) stop_locked();
    else if (!svr_ && port_ > 0) start_locked();
  }
  Mode mode() const { return mode_; }

  // Knobs (any time, also while serving).
  void set_stream_chunks(int n) { chunks_ = n; }           // content events in a stream (default 5)
  void set_chunk_delay_ms(int ms) { chunk_delay_ms_ = ms; }  // pause between events (default 0)
  void set_split_bytes(int n) { split_bytes_ = n; }        // write the stream n bytes at a time (0: an event at a time)
  void set_slow_ms(int ms) { slow_ms_ = ms; }              // Slow's wait (default 5000)
  void set_cut_after(int n) { cut_after_ = n; }            // events before a CutOff stream drops (default 2)
  void set_end_without_done(bool on) { no_done_ = on; }    // a stream ends at EOF: no [DONE], no final blank line

  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lk(rec_mu_);
    return requests_;
  }
  size_t request_count() const {
    std::lock_guard<std::mutex> lk(rec_mu_);
    return requests_.size();
  }
  void clear() {
    std::lock_guard<std::mutex> lk(rec_mu_);
    requests_.clear();
  }

  // The stream a normal streaming request gets, as bytes on the wire (for
  // tests that compare what the client parsed with what was sent).
  struct StreamPlan {
    std::vector<std::string> events;  // the JSON payloads, in order
    std::string wire;                 // the SSE text
  };
  StreamPlan plan_stream(const std::string& model, const std::string& prompt, bool chat, int n) const {
    StreamPlan p;
    p.wire = ": recording-server says hello\r\n\r\n";
    for (int k = 0; k <= n; ++k) {
      const bool last = k == n;  // the closing chunk: finish_reason, no text
      nlohmann::json choice = {{"index", 0}, {"finish_reason", last ? nlohmann::json("stop") : nlohmann::json(nullptr)}};
      std::string text = last ? "" : (k == 0 ? "echo: " + prompt + " " : "w" + std::to_string(k) + " ");
      if (chat) choice["delta"] = last ? nlohmann::json::object() : nlohmann::json{{"content", text}};
      else choice["text"] = text;
      nlohmann::json ev = {{"id", "rec-" + std::to_string(k)},
                           {"object", chat ? "chat.completion.chunk" : "text_completion"},
                           {"created", 1700000000},
                           {"model", model},
                           {"choices", nlohmann::json::array({choice})}};
      std::string data = ev.dump();
      p.events.push_back(data);
      const bool final_unterminated = last && no_done_;
      switch (k % 3) {
        case 0:  // CR LF endings
          p.wire += "data: " + data + (final_unterminated ? "" : "\r\n\r\n");
          break;
        case 1:  // LF endings, other fields, no space after the colon, a comment inside the event
          p.wire += "event: message\nid: " + std::to_string(k) + "\n: comment inside\ndata:" + data +
                    (final_unterminated ? "" : "\n\n");
          break;
        default:  // data over two lines: the parts join with LF, which JSON takes as whitespace
          p.events.back() = "{\n" + data.substr(1);
          p.wire += "data: {\r\ndata: " + data.substr(1) + (final_unterminated ? "" : "\r\n\r\n");
          break;
      }
    }
    if (!no_done_) p.wire += "data: [DONE]\n\n" "data: {\"after\":\"done\"}\n\n";  // nothing after [DONE] counts
    return p;
  }

 private:
  bool start_locked() {
    if (svr_) return true;
    auto svr = std::make_unique<httplib::Server>();
    svr->set_tcp_nodelay(true);  // pieces of a stream leave when written
    svr->set_keep_alive_timeout(1);
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    svr->Post(".*", handler);
    svr->Get(".*", handler);
    if (port_ > 0) {
      if (!svr->bind_to_port("127.0.0.1", port_)) return false;
    } else {
      port_ = svr->bind_to_any_port("127.0.0.1");
      if (port_ <= 0) return false;
    }
    stopping_ = false;
    httplib::Server* raw = svr.get();
    thread_ = std::thread([raw] { raw->listen_after_bind(); });
    // stop() before the accept loop runs would be lost: wait for it.
    for (int i = 0; i < 2000 && !raw->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    svr_ = std::move(svr);
    return true;
  }

  void stop_locked() {
    if (!svr_) return;
    {
      std::lock_guard<std::mutex> lk(wait_mu_);
      stopping_ = true;
    }
    wait_cv_.notify_all();
    svr_->stop();
    if (thread_.joinable()) thread_.join();
    svr_.reset();
  }

  // Sleeps up to `ms`; false when the server is stopping.
  bool pause(int ms) {
    std::unique_lock<std::mutex> lk(wait_mu_);
    return !wait_cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopping_; });
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    {
      RecordedRequest r;
      r.method = req.method;
      r.path = req.path;
      r.body = req.body;
      for (const auto& [k, v] : req.headers) r.headers.emplace(RecordedRequest::lower(k), v);
      std::lock_guard<std::mutex> lk(rec_mu_);
      requests_.push_back(std::move(r));
    }
    const Mode mode = mode_;
    auto error = [&](int status, const std::string& message, const char* type) {
      res.status = status;
      res.set_content(nlohmann::json{{"error", {{"message", message}, {"type", type}}}}.dump(), "application/json");
    };
    if (mode == Mode::Http500) return error(500, "internal failure (recording server)", "server_error");
    if (mode == Mode::Http429) {
      res.set_header("Retry-After", "7");
      return error(429, "Rate limit reached for requests (recording server)", "rate_limit_error");
    }
    if (mode == Mode::Slow && !pause(slow_ms_)) return error(503, "stopping", "server_error");

    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (req.method == "POST" && !body.is_object()) return error(400, "request body is not JSON", "invalid_request_error");
    const bool chat = req.path.find("/chat/completions") != std::string::npos;
    const bool stream = body.is_object() && body.value("stream", false);
    const std::string model = body.is_object() ? body.value("model", std::string("unnamed")) : "unnamed";
    std::string prompt;
    if (chat && body.contains("messages") && body["messages"].is_array() && !body["messages"].empty()) {
      const auto& last = body["messages"].back();
      if (last.is_object() && last.contains("content") && last["content"].is_string()) prompt = last["content"];
    } else if (body.is_object() && body.contains("prompt") && body["prompt"].is_string()) {
      prompt = body["prompt"];
    }

    if (mode == Mode::Garbage) {
      if (!stream) return res.set_content("<html><body>surprise, not JSON</body></html>", "text/html");
      res.set_content(
          "data: not json at all\n\nthis line is no field\n\ndata: {\"unterminated\": \n\ndata: [1,2,3]\n\n"
          "data: [DONE]\n\n",
          "text/event-stream");
      return;
    }
    if (!stream) {
      nlohmann::json choice = {{"index", 0}, {"finish_reason", "stop"}};
      if (chat) choice["message"] = {{"role", "assistant"}, {"content", "echo: " + prompt}};
      else choice["text"] = "echo: " + prompt;
      std::string reply = nlohmann::json{{"id", "rec-1"},
                                         {"object", chat ? "chat.completion" : "text_completion"},
                                         {"created", 1700000000},
                                         {"model", model},
                                         {"choices", nlohmann::json::array({choice})},
                                         {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}}}
                              .dump();
      if (mode == Mode::CutOff) {  // announce the whole length, send half, drop the connection
        auto half = std::make_shared<std::string>(reply.substr(0, reply.size() / 2));
        res.set_content_provider(reply.size(), "application/json",
                                 [half](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset == 0) sink.write(half->data(), half->size());
                                   return false;
                                 });
        return;
      }
      return res.set_content(reply, "application/json");
    }

    // A stream: the planned text, cut short in CutOff mode, written event by
    // event (or in split_bytes pieces) with the configured pauses.
    StreamPlan plan = plan_stream(model, prompt, chat, chunks_);
    std::vector<std::string> pieces;
    {
      // Split the wire text back into its events (each ends in a blank line).
      size_t pos = 0;
      while (pos < plan.wire.size()) {
        size_t e1 = plan.wire.find("\r\n\r\n", pos), e2 = plan.wire.find("\n\n", pos);
        size_t end = std::min(e1 == std::string::npos ? plan.wire.size() : e1 + 4,
                              e2 == std::string::npos ? plan.wire.size() : e2 + 2);
        pieces.push_back(plan.wire.substr(pos, end - pos));
        pos = end;
      }
    }
    bool cut = mode == Mode::CutOff;
    if (cut) {
      // the hello comment, cut_after events, then half an event
      size_t keep = std::min(pieces.size(), (size_t)cut_after_ + 1);
      pieces.resize(keep);
      pieces.push_back("data: {\"choices\":[{\"delta\":{\"content\":\"tru");
    }
    const int delay = chunk_delay_ms_, split = split_bytes_;
    auto shared = std::make_shared<std::vector<std::string>>(std::move(pieces));
    res.set_chunked_content_provider("text/event-stream", [this, shared, cut, delay, split](size_t, httplib::DataSink& sink) {
      for (size_t i = 0; i < shared->size(); ++i) {
        if (i > 0 && delay > 0 && !pause(delay)) return false;
        const std::string& p = (*shared)[i];
        if (split <= 0) {
          if (!sink.write(p.data(), p.size())) return false;
          continue;
        }
        for (size_t off = 0; off < p.size(); off += split) {
          if (!sink.write(p.data() + off, std::min<size_t>(split, p.size() - off))) return false;
          std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
      }
      if (cut) {
        pause(50);
        return false;  // no terminating chunk: the client sees the connection drop mid-reply
      }
      sink.done();
      return true;
    });
  }

  std::mutex life_mu_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<Mode> mode_{Mode::Normal};
  std::atomic<int> chunks_{5}, chunk_delay_ms_{0}, split_bytes_{0}, slow_ms_{5000}, cut_after_{2};
  std::atomic<bool> no_done_{false};

  mutable std::mutex rec_mu_;
  std::vector<RecordedRequest> requests_;

  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  bool stopping_ = false;
};

}  // namespace slim::test
