// Internal to the server: request parsing and response helpers shared by
// the OpenAI, Ollama and routed (hybrid) handlers, the loaded-model record,
// and the server's state (Server::Impl).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chat/template.h"
#include "server/json_schema.h"
#include "server/scheduler.h"
#include "route/audit.h"
#include "server/server.h"

namespace slim {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

inline constexpr const char* kVersion = "0.1.0";

// A request error: the HTTP status, OpenAI's error type and code.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;
};

[[noreturn]] void bad_request(const std::string& msg);
json error_body(const ApiError& e);
void send_error(const httplib::Request& req, httplib::Response& res, const ApiError& e);

// Typed field access: absent or null gives the default; a wrong type is a 400.
template <class T>
T field(const json& body, const char* key, T def);
template <> double field(const json& b, const char* k, double def);
template <> int64_t field(const json& b, const char* k, int64_t def);
template <> bool field(const json& b, const char* k, bool def);
template <> std::string field(const json& b, const char* k, std::string def);

json parse_body(const httplib::Request& req);
std::vector<std::string> stop_list(const json& b, const char* key);
std::string iso_time(std::chrono::system_clock::time_point t);
int64_t unix_now();
json bytes_of(const std::string& s);
std::string message_text(const json& m);
ojson chat_messages(const json& b);
Result<double> parse_duration(const std::string& s);

struct LoadedModel {
  std::string name, path;
  std::unique_ptr<Scheduler> sched;
  std::optional<ChatTemplate> tmpl;  // the model's, else ChatML
  bool own_template = false;
  uint64_t size = 0;
  std::string digest;
  // Guarded by Impl::models_mu.
  int in_flight = 0;
  double keep_alive_s = 300;
  Clock::time_point expires;
  std::chrono::system_clock::time_point expires_wall;
};

// What a generation request asks for, parsed from either API.
struct GenSpec {
  std::string model;
  bool stream = false;
  bool include_usage = false;
  int64_t n_predict = -1;
  SamplerParams sp;
  std::vector<std::string> stop;
  int n_logprobs = -1;
  std::shared_ptr<const JsonSchema> schema;
  bool truncate = false;
  double keep_alive_s = -2;
};

std::vector<int32_t> chat_tokens(const LoadedModel& m, const ojson& messages);
void fit_context(std::vector<int32_t>& prompt, const LoadedModel& m, bool truncate);
std::shared_ptr<GenRequest> make_request(const GenSpec& g, std::vector<int32_t> prompt, const LoadedModel& m);
void submit_or_throw(LoadedModel& m, const std::shared_ptr<GenRequest>& r);
GenSpec openai_spec(const json& b, bool chat);
GenSpec ollama_spec(const json& b);
json usage_json(const GenRequest& r);
json chat_logprobs(const std::vector<TokenLogprob>& lps);
json completion_logprobs(const std::vector<TokenLogprob>& lps, size_t text_offset);
std::string openai_finish(const std::string& reason);

// Keeps the request (and the model lease) alive for a streaming response and
// cancels it when the client goes away before the end.
struct StreamState {
  std::shared_ptr<void> lease;
  std::shared_ptr<GenRequest> req;
  Scheduler* sched = nullptr;
  bool finished = false;
  bool started = false;
  size_t text_offset = 0;
  ~StreamState() {
    if (!finished && req && sched) sched->cancel(req);
  }
};

void stream_response(httplib::Response& res, const char* content_type, std::shared_ptr<StreamState> st,
                     std::function<std::string(StreamState&, const GenChunk&)> emit_chunk,
                     std::function<std::string(StreamState&)> emit_end);
std::string sse(const json& j);
json model_details(const std::string& path);

struct ModelEntry {
  std::string name, arg, path;  // a --model argument: its name, as given, and the file when it is one
};

struct Server::Impl {
  ServerOptions o;
  httplib::Server http;
  std::vector<ModelEntry> configured;

  std::mutex models_mu;
  std::map<std::string, std::shared_ptr<LoadedModel>> loaded;
  std::mutex load_mu;

  std::thread reaper;
  std::mutex reaper_mu;
  std::condition_variable reaper_cv;
  bool stopping = false;

  std::mutex metrics_mu;
  std::map<std::pair<std::string, int>, uint64_t> requests;  // (route, status) → count
  std::atomic<int64_t> request_id{0};
  int listen_fd = -1;

  // Hybrid routing (with o.router).
  std::shared_ptr<AuditLog> audit;  // shared with escalation threads that may outlive a request
  std::map<std::string, uint64_t> route_counts;  // "local", "remote", "fallback", "kept_local" → requests (metrics_mu)

  explicit Impl(ServerOptions opts);
  ~Impl();
  void routes();
  void reap();

  // A model in use: loaded (on first use) and kept while the lease lives.
  struct Lease {
    Impl* impl = nullptr;
    std::shared_ptr<LoadedModel> m;
    double keep_alive_s = -2;  // -2: the server default
    Lease() = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { if (impl && m) impl->release(*m, keep_alive_s); }
  };
  std::shared_ptr<Lease> acquire(const std::string& name, double keep_alive_s);
  void release(LoadedModel& m, double keep_alive_s);
  std::pair<std::string, std::string> resolve(const std::string& name);  // name, path

  std::string check_auth(const httplib::Request& req) const;
  void count(const std::string& route, int status);
  std::string metrics_text();

  // Handlers.
  void openai_chat(const httplib::Request& req, httplib::Response& res, bool chat);
  // The local answer; `route` (the router's decision) joins x_slim when given.
  // With `draft` (cascade mode), the request records each token's log-probability
  // and entropy and is handed back for the router to judge.
  void openai_local(const json& b, httplib::Response& res, bool chat, const json* route,
                    std::shared_ptr<GenRequest>* draft = nullptr);
  void ollama_local(const json& b, httplib::Response& res, bool chat, const json* route);
  // Hybrid routing (hybrid.cpp): requests for `auto` or a remote endpoint.
  bool is_routed(const json& b) const;
  void route_openai(const json& b, httplib::Response& res, bool chat);
  void route_ollama(const json& b, httplib::Response& res, bool chat);
  void openai_models(httplib::Response& res, const std::string& id = "");
  void openai_embeddings(const httplib::Request& req, httplib::Response& res);
  void ollama_generate(const httplib::Request& req, httplib::Response& res, bool chat);
  void ollama_tags(httplib::Response& res);
  void ollama_show(const httplib::Request& req, httplib::Response& res);
  void ollama_ps(httplib::Response& res);
  void ollama_pull(const httplib::Request& req, httplib::Response& res);
  void ollama_embed(const httplib::Request& req, httplib::Response& res);
};

}  // namespace slim
