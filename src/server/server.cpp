// HTTP routes, request parsing and response formats (OpenAI and Ollama), the
// loaded-model table with keep-alive, auth, CORS and metrics.
#include "server/server.h"
#include "server/server_impl.h"

#include <httplib.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/socket.h>
#include <thread>

#include "chat/template.h"
#include "gguf/gguf.h"
#include "net/outbound.h"
#include "route/router.h"
#include "server/json_schema.h"
#include "server/scheduler.h"
#include "server/web_assets.h"
#include "store/planner.h"
#include "store/pull.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"

namespace slim {

Result<double> parse_duration_s(const std::string& s) { return parse_duration(s); }

Server::Impl::Impl(ServerOptions opts) : o(std::move(opts)) {
  for (const auto& m : o.models) {
    ModelEntry e;
    e.arg = m;
    std::error_code ec;
    if (std::filesystem::is_regular_file(m, ec)) {
      e.path = m;
      e.name = std::filesystem::path(m).stem().string();
    } else {
      e.name = m;
    }
    configured.push_back(e);
  }
  if (o.router) {
    std::string path = !o.audit_log.empty() ? o.audit_log : !o.router->config.audit_log.empty() ? o.router->config.audit_log
                                                                                                 : default_audit_path();
    audit = std::make_shared<AuditLog>(path);
  }
  routes();
  reaper = std::thread([this] { reap(); });
}

Server::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lk(reaper_mu);
    stopping = true;
  }
  reaper_cv.notify_all();
  reaper.join();
  std::map<std::string, std::shared_ptr<LoadedModel>> all;
  {
    std::lock_guard<std::mutex> lk(models_mu);
    all.swap(loaded);
  }
}

void Server::Impl::reap() {
  std::unique_lock<std::mutex> lk(reaper_mu);
  while (!stopping) {
    reaper_cv.wait_for(lk, std::chrono::milliseconds(200));
    std::vector<std::shared_ptr<LoadedModel>> gone;  // destroyed outside the lock
    {
      std::lock_guard<std::mutex> ml(models_mu);
      const auto now = Clock::now();
      for (auto it = loaded.begin(); it != loaded.end();) {
        LoadedModel& m = *it->second;
        if (m.in_flight == 0 && m.keep_alive_s >= 0 && now >= m.expires && m.sched->idle()) {
          gone.push_back(it->second);
          it = loaded.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
}

std::pair<std::string, std::string> Server::Impl::resolve(const std::string& requested) {
  std::string name = requested;
  if (name.empty()) {
    if (configured.empty()) bad_request("no model given ('model') and the server has no default model (--model)");
    name = configured[0].name;
  }
  for (auto& e : configured) {
    if (name != e.name && name != e.arg) continue;
    if (!e.path.empty()) return {e.name, e.path};
    name = e.arg;
    break;
  }
  auto store = Store::open(o.store_root);
  if (store) {
    auto m = store->get(name);
    if (m) return {m->full_name(), store->blob_path(m->digest)};
    throw ApiError{404, "model '" + name + "' not found: " + m.error(), "invalid_request_error", "model_not_found"};
  }
  throw ApiError{404, "model '" + name + "' not found", "invalid_request_error", "model_not_found"};
}

std::shared_ptr<Server::Impl::Lease> Server::Impl::acquire(const std::string& requested, double keep_alive_s) {
  auto [name, path] = resolve(requested);
  auto lease = std::make_shared<Lease>();
  lease->keep_alive_s = keep_alive_s;
  // Takes a lease on the model when it is loaded already.
  auto lease_loaded = [&]() {
    std::lock_guard<std::mutex> lk(models_mu);
    auto it = loaded.find(name);
    if (it == loaded.end()) return false;
    ++it->second->in_flight;
    lease->impl = this;
    lease->m = it->second;
    return true;
  };
  if (lease_loaded()) return lease;
  std::lock_guard<std::mutex> load_lock(load_mu);
  if (lease_loaded()) return lease;  // another request loaded it while we waited
  auto ct = parse_cache_type(o.cache_type);
  if (!ct) throw ApiError{500, ct.error(), "server_error", ""};
  EngineParams p;
  p.n_threads = o.n_threads;
  p.n_batch = o.n_batch;
  p.n_seq = o.parallel;
  p.cache_type = *ct;
  p.n_ctx = o.n_ctx;
  {
    auto f = GgufFile::open(path);
    if (!f) throw ApiError{500, "cannot load model '" + name + "': " + f.error(), "server_error", ""};
    if (p.n_ctx == 0) {
      auto arch = (*f)->get_string("general.architecture").value_or("");
      int trained = (int)(*f)->get_int(arch + ".context_length").value_or(4096);
      p.n_ctx = std::min(trained > 0 ? trained : 4096, 4096);
    }
  }
  // The memory planner decides before anything big is allocated.
  PlanParams plan{p.n_ctx, p.n_seq, p.n_batch, p.cache_type};
  auto ctx = plan_run(path, plan, false);
  if (!ctx) throw ApiError{507, "model '" + name + "' does not fit in memory: " + ctx.error(), "server_error", "insufficient_memory"};
  p.n_ctx = *ctx;
  auto engine = Engine::load(path, p);
  if (!engine) throw ApiError{500, "cannot load model '" + name + "': " + engine.error(), "server_error", ""};
  auto m = std::make_shared<LoadedModel>();
  m->name = name;
  m->path = path;
  auto src = (*engine)->model().file->get_string("tokenizer.chat_template");
  if (src) {
    auto t = ChatTemplate::parse(*src);
    if (t) { m->tmpl = std::move(*t); m->own_template = true; }
  }
  if (!m->tmpl) m->tmpl = std::move(*ChatTemplate::parse(kChatmlTemplate));
  std::error_code ec;
  m->size = std::filesystem::file_size(path, ec);
  SchedulerParams sp;
  sp.max_queue = o.max_queue;
  m->sched = std::make_unique<Scheduler>(std::move(*engine), sp);
  m->keep_alive_s = o.keep_alive_s;
  m->in_flight = 1;
  {
    std::lock_guard<std::mutex> lk(models_mu);
    loaded[name] = m;
  }
  lease->impl = this;
  lease->m = m;
  return lease;
}

void Server::Impl::release(LoadedModel& m, double keep_alive_s) {
  std::lock_guard<std::mutex> lk(models_mu);
  --m.in_flight;
  if (keep_alive_s > -2) m.keep_alive_s = keep_alive_s;
  const double ka = m.keep_alive_s < 0 ? 0 : m.keep_alive_s;
  m.expires = Clock::now() + std::chrono::milliseconds((int64_t)(ka * 1000));
  m.expires_wall = std::chrono::system_clock::now() + std::chrono::milliseconds((int64_t)(ka * 1000));
  if (keep_alive_s == 0) reaper_cv.notify_all();
}

std::string Server::Impl::check_auth(const httplib::Request& req) const {
  if (o.api_key.empty()) return "";
  if (req.method == "OPTIONS") return "";
  const std::string& p = req.path;
  bool api = p.rfind("/v1/", 0) == 0 || p.rfind("/api/", 0) == 0 || p == "/metrics";
  if (!api) return "";
  if (req.get_header_value("Authorization") == "Bearer " + o.api_key) return "";
  return req.has_header("Authorization") ? "invalid API key" : "missing API key (Authorization: Bearer KEY)";
}

void Server::Impl::count(const std::string& route, int status) {
  if (status < 0) status = 200;  // httplib fills in 200 after the handler
  std::lock_guard<std::mutex> lk(metrics_mu);
  ++requests[{route, status}];
}

std::string Server::Impl::metrics_text() {
  std::string out;
  out += "# HELP slim_requests_total HTTP requests by route and status.\n# TYPE slim_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lk(metrics_mu);
    for (auto& [k, v] : requests)
      out += format("slim_requests_total{route=\"%s\",status=\"%d\"} %llu\n", k.first.c_str(), k.second, (unsigned long long)v);
  }
  std::vector<std::pair<std::string, SchedulerStats>> stats;
  {
    std::lock_guard<std::mutex> lk(models_mu);
    for (auto& [name, m] : loaded) stats.emplace_back(name, m->sched->stats());
  }
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out += format("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (auto& [model, s] : stats) out += format("%s{model=\"%s\"} %s\n", name, model.c_str(), value(s).c_str());
  };
  auto num = [](double v) { return format("%.6g", v); };
  metric("slim_prompt_tokens_total", "counter", "Prompt tokens evaluated.", [&](const SchedulerStats& s) { return num((double)s.prompt_tokens); });
  metric("slim_generated_tokens_total", "counter", "Tokens generated.", [&](const SchedulerStats& s) { return num((double)s.generated_tokens); });
  metric("slim_tokens_per_second", "gauge", "Generated tokens per second of decode time, since load.",
         [&](const SchedulerStats& s) { return num(s.busy_ms > 0 ? s.generated_tokens * 1000.0 / s.busy_ms : 0); });
  metric("slim_model_requests_total", "counter", "Requests accepted into a model's queue.", [&](const SchedulerStats& s) { return num((double)s.requests); });
  metric("slim_queue_depth", "gauge", "Requests waiting for a slot.", [&](const SchedulerStats& s) { return num(s.queue_depth); });
  metric("slim_slots_busy", "gauge", "Slots running a request.", [&](const SchedulerStats& s) { return num(s.slots_busy); });
  metric("slim_slots_total", "gauge", "Slots of the model.", [&](const SchedulerStats& s) { return num(s.n_slots); });
  metric("slim_decode_steps_total", "counter", "Batched forward passes.", [&](const SchedulerStats& s) { return num((double)s.steps); });
  out += format("# HELP slim_models_loaded Models in memory.\n# TYPE slim_models_loaded gauge\nslim_models_loaded %d\n", (int)stats.size());
  out += "# HELP slim_route_requests_total Routed requests by outcome.\n# TYPE slim_route_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lk(metrics_mu);
    for (auto& [k, v] : route_counts) out += format("slim_route_requests_total{outcome=\"%s\"} %llu\n", k.c_str(), (unsigned long long)v);
  }
  out += format("# HELP slim_outbound_connections_total Outbound connections opened (pulls and escalations).\n"
                "# TYPE slim_outbound_connections_total counter\nslim_outbound_connections_total %llu\n",
                (unsigned long long)net::connections_attempted());
  out += format("# HELP slim_outbound_refused_total Outbound connections the local-only policy refused.\n"
                "# TYPE slim_outbound_refused_total counter\nslim_outbound_refused_total %llu\n",
                (unsigned long long)net::connections_refused());
  return out;
}

void Server::Impl::openai_chat(const httplib::Request& req, httplib::Response& res, bool chat) {
  json b = parse_body(req);
  if (is_routed(b)) return route_openai(b, res, chat);
  openai_local(b, res, chat, nullptr);
}

void Server::Impl::openai_local(const json& b, httplib::Response& res, bool chat, const json* route,
                                std::shared_ptr<GenRequest>* draft) {
  GenSpec g = openai_spec(b, chat);
  ojson messages;
  std::string prompt_text;
  std::vector<int32_t> prompt_ids;
  bool ids_given = false;
  if (chat) {
    messages = chat_messages(b);
  } else {
    if (!b.contains("prompt")) bad_request("'prompt' is required");
    const json& p = b["prompt"];
    if (p.is_string()) prompt_text = p.get<std::string>();
    else if (p.is_array() && p.size() == 1 && p[0].is_string()) prompt_text = p[0].get<std::string>();
    else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
      ids_given = true;
      for (const auto& x : p) {
        if (!x.is_number_integer()) bad_request("'prompt' token ids must be integers");
        prompt_ids.push_back(x.get<int32_t>());
      }
    } else bad_request("'prompt' must be a string (one prompt) or an array of token ids");
  }
  auto lease = acquire(g.model, -2);
  LoadedModel& m = *lease->m;
  const Tokenizer& tok = m.sched->tokenizer();
  std::vector<int32_t> prompt;
  if (chat) prompt = chat_tokens(m, messages);
  else if (ids_given) {
    for (int32_t id : prompt_ids)
      if (id < 0 || id >= tok.n_vocab()) bad_request(format("token id %d is outside the vocabulary", id));
    prompt = prompt_ids;
  } else prompt = tok.tokenize(prompt_text, true, true);
  fit_context(prompt, m, g.truncate);
  auto r = make_request(g, std::move(prompt), m);
  if (draft) {
    r->track_uncertainty = true;
    *draft = r;
  }
  submit_or_throw(m, r);

  const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++request_id);
  const int64_t created = unix_now();
  const std::string name = m.name;
  json x_slim = {{"backend", "local"}, {"model", name}};
  if (route) x_slim["route"] = *route;
  if (!g.stream) {
    GenChunk all = r->wait_all();
    if (r->finish_reason == "error") throw ApiError{500, r->error, "server_error", ""};
    json choice = {{"index", 0}, {"finish_reason", openai_finish(r->finish_reason)}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", all.text}};
      choice["logprobs"] = g.n_logprobs >= 0 ? chat_logprobs(all.logprobs) : json(nullptr);
    } else {
      choice["text"] = all.text;
      choice["logprobs"] = g.n_logprobs >= 0 ? completion_logprobs(all.logprobs, 0) : json(nullptr);
    }
    json body = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                 {"model", name}, {"system_fingerprint", std::string("slim-") + kVersion},
                 {"choices", json::array({choice})}, {"usage", usage_json(*r)}, {"x_slim", x_slim}};
    res.set_content(body.dump(), "application/json");
    return;
  }
  auto st = std::make_shared<StreamState>();
  st->lease = lease;
  st->req = r;
  st->sched = m.sched.get();
  auto base = [=](const json& choice) {
    return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                {"model", name}, {"system_fingerprint", std::string("slim-") + kVersion},
                {"choices", json::array({choice})}, {"x_slim", x_slim}};
  };
  const bool want_lp = g.n_logprobs >= 0;
  const bool include_usage = g.include_usage;
  stream_response(
      res, "text/event-stream", st,
      [=](StreamState& s, const GenChunk& c) -> std::string {
        json choice = {{"index", 0}, {"finish_reason", nullptr}};
        if (chat) {
          if (c.text.empty() && c.logprobs.empty()) {  // the opening delta
            choice["delta"] = {{"role", "assistant"}, {"content", ""}};
            choice["logprobs"] = nullptr;
            return sse(base(choice));
          }
          choice["delta"] = {{"content", c.text}};
          choice["logprobs"] = want_lp ? chat_logprobs(c.logprobs) : json(nullptr);
        } else {
          if (c.text.empty() && c.logprobs.empty()) return "";
          choice["text"] = c.text;
          choice["logprobs"] = want_lp ? completion_logprobs(c.logprobs, s.text_offset) : json(nullptr);
          s.text_offset += c.text.size();
        }
        return sse(base(choice));
      },
      [=](StreamState& s) -> std::string {
        GenRequest& rq = *s.req;
        if (rq.finish_reason == "error")
          return sse(error_body(ApiError{500, rq.error, "server_error", ""})) + "data: [DONE]\n\n";
        json choice = {{"index", 0}, {"finish_reason", openai_finish(rq.finish_reason)}, {"logprobs", nullptr}};
        if (chat) choice["delta"] = json::object();
        else choice["text"] = "";
        std::string out = sse(base(choice));
        if (include_usage) {
          json u = base(choice);
          u["choices"] = json::array();
          u["usage"] = usage_json(rq);
          out += sse(u);
        }
        return out + "data: [DONE]\n\n";
      });
}

void Server::Impl::openai_models(httplib::Response& res, const std::string& id) {
  json data = json::array();
  std::vector<std::string> seen;
  auto add = [&](const std::string& name, int64_t created, const char* owner = "slim") {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) return;
    seen.push_back(name);
    data.push_back({{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", owner}});
  };
  for (auto& e : configured) add(e.name, unix_now());
  if (auto store = Store::open(o.store_root)) {
    if (auto list = store->list())
      for (auto& m : *list) add(m.full_name(), (int64_t)m.modified);
  }
  // The router and the remote endpoints it may escalate to.
  if (o.router && !o.router->config.remotes.empty()) {
    add("auto", unix_now(), "slim-router");
    for (const auto& r : o.router->config.remotes) add(r.name, unix_now(), "remote");
  }
  if (!id.empty()) {
    for (const auto& m : data)
      if (m["id"] == id) { res.set_content(m.dump(), "application/json"); return; }
    throw ApiError{404, "model '" + id + "' not found", "invalid_request_error", "model_not_found"};
  }
  res.set_content(json({{"object", "list"}, {"data", data}}).dump(), "application/json");
}

namespace {

std::vector<std::string> embed_inputs(const json& b, const char* key) {
  if (!b.contains(key)) bad_request(std::string("'") + key + "' is required");
  const json& in = b[key];
  std::vector<std::string> out;
  if (in.is_string()) out.push_back(in.get<std::string>());
  else if (in.is_array()) {
    for (const auto& x : in) {
      if (!x.is_string()) bad_request(std::string("'") + key + "' must be a string or an array of strings");
      out.push_back(x.get<std::string>());
    }
  } else bad_request(std::string("'") + key + "' must be a string or an array of strings");
  if (out.empty()) bad_request(std::string("'") + key + "' is empty");
  if (out.size() > 256) bad_request("at most 256 inputs a request");
  return out;
}

// Float32 little-endian bytes in base64 (OpenAI's encoding_format "base64").
std::string base64_floats(const std::vector<float>& v) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int k = 0; k < 4; ++k) bytes[i * 4 + k] = (char)(u >> (8 * k) & 0xff);
  }
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = (uint32_t)(unsigned char)bytes[i] << 16;
    if (i + 1 < bytes.size()) n |= (uint32_t)(unsigned char)bytes[i + 1] << 8;
    if (i + 2 < bytes.size()) n |= (unsigned char)bytes[i + 2];
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += i + 1 < bytes.size() ? kAlphabet[n >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// Embeds each input through the scheduler (the engine's own thread).
std::vector<std::vector<float>> run_embeddings(LoadedModel& m, const std::vector<std::string>& inputs, bool truncate,
                                               int* n_tokens) {
  const Tokenizer& tok = m.sched->tokenizer();
  std::vector<std::shared_ptr<GenRequest>> reqs;
  for (const auto& text : inputs) {
    auto ids = tok.tokenize(text, true, false);
    if (ids.empty()) bad_request("an input is empty");
    if ((int)ids.size() > m.sched->n_ctx()) {
      if (!truncate)
        throw ApiError{400, format("an input is %d tokens but the context holds %d", (int)ids.size(), m.sched->n_ctx()),
                       "invalid_request_error", "context_length_exceeded"};
      ids.resize(m.sched->n_ctx());
    }
    *n_tokens += (int)ids.size();
    auto r = std::make_shared<GenRequest>();
    r->prompt = std::move(ids);
    r->embed = true;
    reqs.push_back(r);
  }
  std::vector<std::vector<float>> out;
  for (auto& r : reqs) {
    submit_or_throw(m, r);
    r->wait_all();
    if (r->finish_reason == "error") throw ApiError{500, r->error, "server_error", ""};
    out.push_back(std::move(r->embedding));
  }
  return out;
}

}  // namespace

void Server::Impl::openai_embeddings(const httplib::Request& req, httplib::Response& res) {
  json b = parse_body(req);
  auto inputs = embed_inputs(b, "input");
  std::string fmt = field<std::string>(b, "encoding_format", "float");
  if (fmt != "float" && fmt != "base64") bad_request("'encoding_format' must be \"float\" or \"base64\"");
  auto lease = acquire(field<std::string>(b, "model", ""), -2);
  int n_tokens = 0;
  auto embs = run_embeddings(*lease->m, inputs, false, &n_tokens);
  json data = json::array();
  for (size_t i = 0; i < embs.size(); ++i) {
    json e = fmt == "base64" ? json(base64_floats(embs[i])) : json(embs[i]);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", e}});
  }
  json body = {{"object", "list"}, {"data", data}, {"model", lease->m->name},
               {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}},
               {"x_slim", {{"backend", "local"}, {"model", lease->m->name}}}};
  res.set_content(body.dump(), "application/json");
}

void Server::Impl::ollama_generate(const httplib::Request& req, httplib::Response& res, bool chat) {
  json b = parse_body(req);
  if (is_routed(b)) return route_ollama(b, res, chat);
  ollama_local(b, res, chat, nullptr);
}

void Server::Impl::ollama_local(const json& b, httplib::Response& res, bool chat, const json* route) {
  GenSpec g = ollama_spec(b);
  ojson messages;
  std::string prompt_text, system;
  bool raw = false;
  if (chat) {
    if (!b.contains("messages") || (b["messages"].is_array() && b["messages"].empty())) {
      messages = ojson::array();
    } else {
      messages = chat_messages(b);
    }
  } else {
    prompt_text = field<std::string>(b, "prompt", "");
    system = field<std::string>(b, "system", "");
    raw = field<bool>(b, "raw", false);
  }
  auto t0 = Clock::now();
  auto lease = acquire(g.model, g.keep_alive_s);
  const double load_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  LoadedModel& m = *lease->m;
  const std::string name = m.name;
  const std::string created_at = iso_time(std::chrono::system_clock::now());
  // An empty request only loads (or, with keep_alive 0, unloads) the model.
  if ((chat && messages.empty()) || (!chat && prompt_text.empty() && !b.contains("prompt"))) {
    json body = {{"model", name}, {"created_at", created_at}, {"done", true},
                 {"done_reason", g.keep_alive_s == 0 ? "unload" : "load"}};
    if (chat) body["message"] = {{"role", "assistant"}, {"content", ""}};
    else body["response"] = "";
    res.set_content(body.dump(), "application/json");
    return;
  }
  const Tokenizer& tok = m.sched->tokenizer();
  std::vector<int32_t> prompt;
  if (chat) prompt = chat_tokens(m, messages);
  else if (raw || !m.own_template) {
    // A base model (no chat template of its own) continues the prompt as is.
    prompt = tok.tokenize(system.empty() ? prompt_text : system + "\n\n" + prompt_text, true, true);
  } else {
    ojson ms = ojson::array();
    if (!system.empty()) ms.push_back({{"role", "system"}, {"content", system}});
    ms.push_back({{"role", "user"}, {"content", prompt_text}});
    prompt = chat_tokens(m, ms);
  }
  fit_context(prompt, m, g.truncate);
  auto r = make_request(g, std::move(prompt), m);
  submit_or_throw(m, r);

  const json route_info = route ? *route : json();
  auto final_fields = [=](const GenRequest& rq, json& j) {
    j["done"] = true;
    j["done_reason"] = rq.finish_reason == "length" ? "length" : "stop";
    j["total_duration"] = (int64_t)std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    j["load_duration"] = (int64_t)load_ns;
    j["prompt_eval_count"] = rq.n_prompt;
    j["prompt_eval_duration"] = (int64_t)(rq.prefill_ms * 1e6);
    j["eval_count"] = rq.n_gen;
    j["eval_duration"] = (int64_t)(rq.decode_ms * 1e6);
    j["x_slim"] = {{"backend", "local"}, {"model", name}};
    if (route_info.is_object()) j["x_slim"]["route"] = route_info;
  };
  auto record = [=](const std::string& text) {
    json j = {{"model", name}, {"created_at", iso_time(std::chrono::system_clock::now())}};
    if (chat) j["message"] = {{"role", "assistant"}, {"content", text}};
    else j["response"] = text;
    j["done"] = false;
    return j;
  };
  if (!g.stream) {
    GenChunk all = r->wait_all();
    if (r->finish_reason == "error") throw ApiError{500, r->error, "server_error", ""};
    json j = record(all.text);
    final_fields(*r, j);
    res.set_content(j.dump(), "application/json");
    return;
  }
  auto st = std::make_shared<StreamState>();
  st->lease = lease;
  st->req = r;
  st->sched = m.sched.get();
  stream_response(
      res, "application/x-ndjson", st,
      [=](StreamState&, const GenChunk& c) -> std::string {
        if (c.text.empty()) return "";
        return record(c.text).dump() + "\n";
      },
      [=](StreamState& s) -> std::string {
        if (s.req->finish_reason == "error") return json({{"error", s.req->error}}).dump() + "\n";
        json j = record("");
        final_fields(*s.req, j);
        return j.dump() + "\n";
      });
}

void Server::Impl::ollama_tags(httplib::Response& res) {
  json models = json::array();
  std::vector<std::string> seen;
  for (auto& e : configured) {
    if (e.path.empty()) continue;
    std::error_code ec;
    auto mt = std::filesystem::last_write_time(e.path, ec);
    auto wall = std::chrono::system_clock::now();
    if (!ec) wall = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
                 mt - std::filesystem::file_time_type::clock::now() + std::chrono::system_clock::now());
    models.push_back({{"name", e.name}, {"model", e.name}, {"modified_at", iso_time(wall)},
                      {"size", std::filesystem::file_size(e.path, ec)}, {"digest", ""}, {"details", model_details(e.path)}});
    seen.push_back(e.name);
  }
  if (auto store = Store::open(o.store_root)) {
    if (auto list = store->list()) {
      for (auto& m : *list) {
        if (std::find(seen.begin(), seen.end(), m.full_name()) != seen.end()) continue;
        models.push_back({{"name", m.full_name()}, {"model", m.full_name()},
                          {"modified_at", iso_time(std::chrono::system_clock::from_time_t(m.modified))},
                          {"size", m.size}, {"digest", m.digest}, {"details", model_details(store->blob_path(m.digest))}});
      }
    }
  }
  if (o.router && !o.router->config.remotes.empty()) {
    const std::string now = iso_time(std::chrono::system_clock::now());
    json router_details = {{"format", "router"}, {"family", "slim-router"}, {"parameter_size", ""}, {"quantization_level", ""}};
    models.push_back({{"name", "auto"}, {"model", "auto"}, {"modified_at", now}, {"size", 0}, {"digest", ""},
                      {"details", router_details}});
    for (const auto& r : o.router->config.remotes) {
      json d = {{"format", "remote"}, {"family", "remote"}, {"parameter_size", ""}, {"quantization_level", ""}};
      models.push_back({{"name", r.name}, {"model", r.name}, {"remote_model", r.model}, {"remote_host", r.base_url},
                        {"modified_at", now}, {"size", 0}, {"digest", ""}, {"details", d}});
    }
  }
  res.set_content(json({{"models", models}}).dump(), "application/json");
}

void Server::Impl::ollama_show(const httplib::Request& req, httplib::Response& res) {
  json b = parse_body(req);
  std::string name = field<std::string>(b, "model", field<std::string>(b, "name", ""));
  if (name.empty()) bad_request("'model' is required");
  auto [full, path] = resolve(name);
  auto f = GgufFile::open(path);
  if (!f) throw ApiError{500, f.error(), "server_error", ""};
  json info = json::object();
  for (const auto& [k, v] : (*f)->metadata()) {
    if (k.rfind("tokenizer.ggml.", 0) == 0) continue;  // vocabularies are huge
    if (auto s = (*f)->get_string(k)) info[k] = *s;
    else if (auto i = (*f)->get_int(k)) info[k] = *i;
  }
  json body = {{"modelfile", ""}, {"parameters", ""},
               {"template", (*f)->get_string("tokenizer.chat_template").value_or("")},
               {"details", model_details(path)}, {"model_info", info}};
  if (auto lic = (*f)->get_string("general.license")) body["license"] = *lic;
  res.set_content(body.dump(), "application/json");
}

void Server::Impl::ollama_ps(httplib::Response& res) {
  json models = json::array();
  std::lock_guard<std::mutex> lk(models_mu);
  for (auto& [name, m] : loaded) {
    SchedulerStats s = m->sched->stats();
    json j = {{"name", name}, {"model", name}, {"size", m->size}, {"digest", m->digest},
              {"details", model_details(m->path)},
              {"expires_at", m->in_flight > 0 || m->keep_alive_s < 0 ? "0001-01-01T00:00:00Z" : iso_time(m->expires_wall)},
              {"size_vram", 0}, {"context_length", m->sched->n_ctx()},
              {"x_slim", {{"backend", "local"}, {"slots", s.n_slots}, {"slots_busy", s.slots_busy}, {"queue_depth", s.queue_depth}}}};
    models.push_back(j);
  }
  res.set_content(json({{"models", models}}).dump(), "application/json");
}

void Server::Impl::ollama_pull(const httplib::Request& req, httplib::Response& res) {
  json b = parse_body(req);
  std::string ref = field<std::string>(b, "model", field<std::string>(b, "name", ""));
  if (ref.empty()) bad_request("'model' is required");
  const bool stream = field<bool>(b, "stream", true);
  auto store = Store::open(o.store_root);
  if (!store) throw ApiError{500, store.error(), "server_error", ""};
  // The pull runs on its own thread; the response reports its status lines.
  struct PullState {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<json> lines;
    bool done = false;
  };
  auto ps = std::make_shared<PullState>();
  auto push = [ps](json j, bool last) {
    std::lock_guard<std::mutex> lk(ps->mu);
    ps->lines.push_back(std::move(j));
    if (last) ps->done = true;
    ps->cv.notify_all();
  };
  push({{"status", "pulling " + ref}}, false);
  std::string root = store->root();
  std::thread([ps, push, ref, root]() {
    auto st = Store::open(root);
    if (!st) { push({{"error", st.error()}}, true); return; }
    PullOptions po;
    po.quiet = true;
    po.on_progress = [push, ref](uint64_t done, int64_t total) {
      json line = {{"status", "pulling " + ref}, {"completed", done}};
      if (total >= 0) line["total"] = total;
      push(std::move(line), false);
    };
    auto m = pull_model(*st, ref, po);
    if (!m) { push({{"error", m.error()}}, true); return; }
    push({{"status", "verifying sha256 digest"}, {"digest", "sha256:" + m->digest}, {"total", m->size}, {"completed", m->size}}, false);
    push({{"status", "writing manifest"}, {"model", m->full_name()}}, false);
    push({{"status", "success"}}, true);
  }).detach();
  if (!stream) {
    std::unique_lock<std::mutex> lk(ps->mu);
    ps->cv.wait(lk, [&] { return ps->done; });
    json last = ps->lines.back();
    if (last.contains("error")) { res.status = 500; }
    res.set_content(last.dump(), "application/json");
    return;
  }
  res.set_chunked_content_provider("application/x-ndjson", [ps](size_t, httplib::DataSink& sink) -> bool {
    std::unique_lock<std::mutex> lk(ps->mu);
    ps->cv.wait_for(lk, std::chrono::seconds(1), [&] { return !ps->lines.empty() || ps->done; });
    while (!ps->lines.empty()) {
      std::string line = ps->lines.front().dump() + "\n";
      ps->lines.pop_front();
      if (!sink.write(line.data(), line.size())) return false;
    }
    if (ps->done) sink.done();
    return true;
  });
}

void Server::Impl::ollama_embed(const httplib::Request& req, httplib::Response& res) {
  json b = parse_body(req);
  auto inputs = embed_inputs(b, "input");
  GenSpec g;
  if (b.contains("keep_alive")) g = ollama_spec(json{{"keep_alive", b["keep_alive"]}});
  auto t0 = Clock::now();
  auto lease = acquire(field<std::string>(b, "model", ""), g.keep_alive_s);
  const double load_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  int n_tokens = 0;
  auto embs = run_embeddings(*lease->m, inputs, field<bool>(b, "truncate", true), &n_tokens);
  json body = {{"model", lease->m->name}, {"embeddings", embs},
               {"total_duration", (int64_t)std::chrono::duration<double, std::nano>(Clock::now() - t0).count()},
               {"load_duration", (int64_t)load_ns}, {"prompt_eval_count", n_tokens},
               {"x_slim", {{"backend", "local"}, {"model", lease->m->name}}}};
  res.set_content(body.dump(), "application/json");
}

void Server::Impl::routes() {
  http.set_payload_max_length(o.max_body);
  const int threads = std::max(o.http_threads, 16);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_keep_alive_max_count(100);
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  // The library listens with a backlog of 5, which drops connections when
  // dozens arrive at once; remember the socket to listen again with more.
  http.set_socket_options([this](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;
  });

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Slim-Backend", "local");
    if (!o.cors.empty()) {
      res.set_header("Access-Control-Allow-Origin", o.cors);
      res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {
      if (!o.cors.empty()) {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
      }
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    std::string auth = check_auth(req);
    if (!auth.empty()) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(req, res, ApiError{401, auth, "invalid_request_error", "invalid_api_key"});
      count("auth", 401);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Errors httplib produces itself (no route, body too large) get a JSON body too.
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404 ? "no route " + req.method + " " + req.path
                    : res.status == 413 ? format("the request body is larger than %zu bytes", o.max_body)
                    : res.status == 405 ? "method not allowed"
                    : "the request could not be handled";
    send_error(req, res, ApiError{res.status, msg, "invalid_request_error", ""});
  });
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    send_error(req, res, ApiError{500, msg, "server_error", ""});
  });

  // Wraps a handler: ApiError → its status and JSON body; counts the request.
  auto wrap = [this](const std::string& route, std::function<void(const httplib::Request&, httplib::Response&)> h) {
    return [this, route, h](const httplib::Request& req, httplib::Response& res) {
      try {
        h(req, res);
      } catch (const ApiError& e) {
        if (e.status == 503) res.set_header("Retry-After", "1");
        send_error(req, res, e);
      } catch (const json::exception& e) {
        send_error(req, res, ApiError{400, std::string("bad request: ") + e.what(), "invalid_request_error", ""});
      }
      count(route, res.status);
    };
  };

  http.Post("/v1/chat/completions", wrap("/v1/chat/completions", [this](auto& q, auto& r) { openai_chat(q, r, true); }));
  http.Post("/v1/completions", wrap("/v1/completions", [this](auto& q, auto& r) { openai_chat(q, r, false); }));
  http.Get("/v1/models", wrap("/v1/models", [this](auto&, auto& r) { openai_models(r); }));
  http.Get(R"(/v1/models/(.+))", wrap("/v1/models/ID", [this](auto& q, auto& r) { openai_models(r, q.matches[1].str()); }));
  http.Post("/v1/embeddings", wrap("/v1/embeddings", [this](auto& q, auto& r) { openai_embeddings(q, r); }));
  http.Post("/api/chat", wrap("/api/chat", [this](auto& q, auto& r) { ollama_generate(q, r, true); }));
  http.Post("/api/generate", wrap("/api/generate", [this](auto& q, auto& r) { ollama_generate(q, r, false); }));
  http.Get("/api/tags", wrap("/api/tags", [this](auto&, auto& r) { ollama_tags(r); }));
  http.Post("/api/show", wrap("/api/show", [this](auto& q, auto& r) { ollama_show(q, r); }));
  http.Get("/api/ps", wrap("/api/ps", [this](auto&, auto& r) { ollama_ps(r); }));
  http.Post("/api/pull", wrap("/api/pull", [this](auto& q, auto& r) { ollama_pull(q, r); }));
  http.Post("/api/embed", wrap("/api/embed", [this](auto& q, auto& r) { ollama_embed(q, r); }));
  http.Get("/api/version", wrap("/api/version", [](auto&, auto& r) {
    r.set_content(json({{"version", kVersion}}).dump(), "application/json");
  }));
  http.Get("/health", wrap("/health", [this](auto&, auto& r) {
    std::lock_guard<std::mutex> lk(models_mu);
    r.set_content(json({{"status", "ok"}, {"models_loaded", loaded.size()}}).dump(), "application/json");
  }));
  http.Get("/metrics", wrap("/metrics", [this](auto&, auto& r) {
    r.set_content(metrics_text(), "text/plain; version=0.0.4");
  }));
  // The chat page and its files.
  http.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
    std::string path = req.path == "/" ? "/index.html" : req.path;
    for (const auto& a : web_assets()) {
      if (path != a.path) continue;
      std::string ext = path.substr(path.rfind('.') + 1);
      const char* type = ext == "html" ? "text/html; charset=utf-8" : ext == "js" ? "text/javascript; charset=utf-8"
                       : ext == "css" ? "text/css; charset=utf-8" : ext == "svg" ? "image/svg+xml"
                       : ext == "json" ? "application/json" : ext == "png" ? "image/png" : "application/octet-stream";
      res.set_content(std::string(a.data, a.size), type);
      count("static", 200);
      return;
    }
    send_error(req, res, ApiError{404, "no route GET " + req.path, "invalid_request_error", ""});
    count("static", 404);
  });
}

Server::Server(ServerOptions o) : impl_(std::make_unique<Impl>(std::move(o))) {}
Server::~Server() {
  stop();
}

Status Server::bind() {
  if (impl_->o.parallel < 1 || impl_->o.parallel > 256) return Status::error("--parallel must be between 1 and 256");
  if (impl_->o.port == 0) {
    int p = impl_->http.bind_to_any_port(impl_->o.host);
    if (p <= 0) return Status::error("cannot listen on " + impl_->o.host);
    impl_->o.port = p;
  } else if (!impl_->http.bind_to_port(impl_->o.host, impl_->o.port)) {
    return Status::error(format("cannot listen on %s:%d (in use?)", impl_->o.host.c_str(), impl_->o.port));
  }
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  return Status();
}

int Server::port() const { return impl_->o.port; }

Status Server::run() {
  if (!impl_->http.listen_after_bind()) return Status::error("the server stopped with an error");
  return Status();
}

void Server::stop() {
  if (impl_) impl_->http.stop();
}

}  // namespace slim
