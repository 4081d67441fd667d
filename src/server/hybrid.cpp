// Hybrid routing in the server: requests for the model `auto` are decided
// per request (local model first; a remote endpoint when the router says the
// request is beyond the local model and the policy and privacy rules allow
// it), and requests naming a remote endpoint go to it through the same policy
// and privacy guard. A remote answer is passed on chunk by chunk with its
// placeholders restored; a remote failure falls back to the local answer with
// a visible notice (x_slim.route.fallback).
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "route/escalate.h"
#include "route/router.h"
#include "server/server_impl.h"
#include "tokenizer/tokenizer.h"

namespace slim {

namespace {

// The last user message's text (what the router judges) and the features a
// request asks for that a local model lacks.
struct RequestView {
  std::string text;
  bool tools = false;
  bool images = false;
};

RequestView view_openai(const json& b, bool chat) {
  RequestView v;
  if (chat) {
    if (!b.contains("messages") || !b["messages"].is_array() || b["messages"].empty())
      bad_request("'messages' must be a non-empty array");
    for (const auto& m : b["messages"]) {
      if (!m.is_object()) bad_request("each message must be an object");
      const json& c = m.contains("content") ? m["content"] : json();
      if (c.is_array())
        for (const auto& p : c)
          if (p.is_object() && p.value("type", "") != "text") v.images = true;
      if (m.value("role", "") == "user") {
        v.text.clear();
        if (c.is_string()) v.text = c.get<std::string>();
        else if (c.is_array())
          for (const auto& p : c)
            if (p.is_object() && p.value("type", "") == "text" && p.contains("text") && p["text"].is_string())
              v.text += p["text"].get<std::string>();
      }
    }
  } else {
    if (!b.contains("prompt")) bad_request("'prompt' is required");
    const json& p = b["prompt"];
    if (p.is_string()) v.text = p.get<std::string>();
    else if (p.is_array() && p.size() == 1 && p[0].is_string()) v.text = p[0].get<std::string>();
    else bad_request("'prompt' must be a string for the router (token ids cannot be sent to another model)");
  }
  v.tools = b.contains("tools") && b["tools"].is_array() && !b["tools"].empty();
  return v;
}

// An Ollama request as the OpenAI chat request a remote endpoint understands.
json ollama_as_openai(const json& b, bool chat) {
  json o = {{"model", b.value("model", "")}};
  json messages = json::array();
  if (chat) {
    if (!b.contains("messages") || !b["messages"].is_array() || b["messages"].empty())
      bad_request("'messages' must be a non-empty array");
    for (const auto& m : b["messages"]) {
      if (!m.is_object() || !m.contains("role")) bad_request("each message needs a 'role'");
      json mm = {{"role", m["role"]}, {"content", m.contains("content") ? m["content"] : json("")}};
      if (m.contains("images") && m["images"].is_array() && !m["images"].empty()) {
        json parts = json::array({{{"type", "text"}, {"text", mm["content"]}}});
        for (const auto& img : m["images"])
          parts.push_back({{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + img.get<std::string>()}}}});
        mm["content"] = parts;
      }
      messages.push_back(mm);
    }
  } else {
    const std::string system = field<std::string>(b, "system", "");
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    messages.push_back({{"role", "user"}, {"content", field<std::string>(b, "prompt", "")}});
  }
  o["messages"] = messages;
  if (b.contains("tools")) o["tools"] = b["tools"];
  o["stream"] = field<bool>(b, "stream", true);
  // Ollama's last record carries token counts: ask the endpoint for them.
  if (o["stream"].get<bool>()) o["stream_options"] = {{"include_usage", true}};
  if (b.contains("options") && b["options"].is_object()) {
    const json& op = b["options"];
    for (const char* k : {"temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "stop"})
      if (op.contains(k)) o[k] = op[k];
    if (op.contains("num_predict") && op["num_predict"].is_number_integer() && op["num_predict"].get<int64_t>() > 0)
      o["max_tokens"] = op["num_predict"];
  }
  if (b.contains("format")) {
    const json& f = b["format"];
    if (f.is_string() && f == "json") o["response_format"] = {{"type", "json_object"}};
    else if (f.is_object()) o["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "output"}, {"schema", f}}}};
  }
  if (b.contains("x_slim")) o["x_slim"] = b["x_slim"];
  return o;
}

// What the router made of one request.
struct Plan {
  const RemoteEndpoint* endpoint = nullptr;  // set: escalate to it
  std::string audit_decision;                // "remote" (auto) or "explicit"
  RouteDecision decision;                    // the signals' verdict
  json route;                                // x_slim.route
  std::string veto;                          // why nothing may leave ("": it may, to `remotes[0]`)
};

// The channel between the thread streaming a remote reply and the HTTP
// handler writing it to the client.
struct RemoteStream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<json> events;
  bool done = false;
  EscalationResult result;
  std::atomic<bool> cancel{false};

  // The next event (true), or the end (false); waits at most `timeout`.
  bool next(json& out, std::chrono::milliseconds timeout, bool* timed_out) {
    std::unique_lock<std::mutex> lk(mu);
    *timed_out = !cv.wait_for(lk, timeout, [&] { return done || !events.empty(); });
    if (!events.empty()) {
      out = std::move(events.front());
      events.pop_front();
      return true;
    }
    return !done;
  }
};

void set_backend(httplib::Response& res, const char* backend) {
  res.headers.erase("X-Slim-Backend");
  res.set_header("X-Slim-Backend", backend);
}

}  // namespace

bool Server::Impl::is_routed(const json& b) const {
  if (!o.router || !b.contains("model") || !b["model"].is_string()) return false;
  const std::string m = b["model"].get<std::string>();
  return m == "auto" || o.router->remote(m) != nullptr;
}

namespace {

std::string json_str(const json& b, const char* k) {
  return b.contains(k) && b[k].is_string() ? b[k].get<std::string>() : "";
}

}  // namespace

// The decision for one request. `ob` is the request as OpenAI would take it.
static Plan make_plan(Server::Impl& s, const json& ob, const RequestView& v) {
  const Router& router = *s.o.router;
  const RouteConfig& cfg = router.config;
  Plan p;
  const std::string name = json_str(ob, "model");
  const bool explicit_remote = name != "auto";
  const bool local_only_flag = ob.contains("x_slim") && ob["x_slim"].is_object() &&
                               ob["x_slim"].value("local_only", false) == true;
  const std::string text = escalation_text(ob, ob.contains("messages"));
  const std::string forbid = forbid_reason(cfg.privacy, router.detector->find(text), text);
  if (explicit_remote) {
    const RemoteEndpoint* ep = router.remote(name);
    auto refuse = [&](const std::string& why) {
      throw ApiError{403, "not sent to '" + name + "': " + why, "permission_error", "escalation_forbidden"};
    };
    if (cfg.policy == Policy::LocalOnly) refuse("the local-only policy keeps every request on this machine");
    if (local_only_flag) refuse("the request asked to stay on this machine (x_slim.local_only)");
    if (!forbid.empty()) refuse(forbid);
    p.endpoint = ep;
    p.audit_decision = "explicit";
    p.decision.remote = true;
    p.decision.reason = "the request named the endpoint '" + name + "'";
    p.route = p.decision.to_json();
    p.route["policy"] = policy_name(cfg.policy);
    return p;
  }
  // `auto`: the local model's view of the prompt first.
  auto lease = s.acquire("", -2);
  LoadedModel& m = *lease->m;
  const Tokenizer& tok = m.sched->tokenizer();
  auto t0 = Clock::now();
  std::vector<int32_t> tokens = routing_tokens(tok, v.text);
  PromptSignals sig;
  if ((int)tokens.size() < m.sched->n_ctx()) {
    auto r = std::make_shared<GenRequest>();
    r->prompt = tokens;
    r->n_predict = 0;
    r->score_prompt = true;
    submit_or_throw(m, r);
    r->wait_all();
    if (r->finish_reason == "error") throw ApiError{500, r->error, "server_error", ""};
    sig = prompt_signals(tok, tokens, r->prompt_nll, m.sched->n_ctx(), v.text.size());
    router.classify(v.text, sig);
  } else {
    sig.n_tokens = (int)tokens.size();
    sig.n_ctx = m.sched->n_ctx();
  }
  sig.wants_tools = v.tools;
  sig.wants_images = v.images;
  sig.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  p.decision = decide_prompt(cfg.route, sig);
  p.route = p.decision.to_json();
  p.route["policy"] = policy_name(cfg.policy);
  // The policy and the privacy rules may keep the request here whatever the signals say.
  if (cfg.remotes.empty()) p.veto = "no remote endpoint is configured";
  else if (local_only_flag) p.veto = "the request asked to stay on this machine (x_slim.local_only)";
  else if (!forbid.empty()) p.veto = forbid;
  else if (cfg.policy == Policy::LocalOnly) p.veto = "the local-only policy keeps every request on this machine";
  else if (cfg.policy == Policy::Ask)
    p.veto = "the ask policy escalates only what the user confirms: send the request again with model '" +
             cfg.remotes.front().name + "'";
  if (!p.decision.remote) return p;
  if (!p.veto.empty()) {
    p.route["decision"] = "local";
    p.route["router_decision"] = "remote";
    p.route["kept_local"] = p.veto;
    if (cfg.policy == Policy::Ask && !cfg.remotes.empty()) {
      p.route["escalation_available"] = true;
      p.route["endpoint"] = cfg.remotes.front().name;
    }
    return p;
  }
  p.endpoint = &cfg.remotes.front();
  p.audit_decision = "remote";
  return p;
}

// Runs the escalation on its own thread, streaming into a RemoteStream, and
// waits until the first event or the end: the caller then knows whether the
// answer is remote (headers not yet sent) or must fall back.
static std::shared_ptr<RemoteStream> start_remote(Server::Impl& s, const Plan& p, const json& ob, bool chat,
                                                  bool stream, const std::string& id) {
  auto rs = std::make_shared<RemoteStream>();
  Escalation e;
  e.endpoint = p.endpoint;
  e.chat = chat;
  e.body = ob;
  e.stream = stream;
  e.request_id = id;
  e.decision = p.audit_decision;
  e.route = p.decision;
  std::shared_ptr<const Router> router = s.o.router;
  // The thread is detached: it owns what it uses, so a server stopped
  // mid-escalation leaves it nothing dangling.
  std::shared_ptr<AuditLog> audit = s.audit;
  std::thread([rs, router, audit, e] {
    EscalationResult r = escalate(*router, *audit, e,
                                  e.stream ? EventHandler([&](json& ev) {
                                    {
                                      std::lock_guard<std::mutex> lk(rs->mu);
                                      rs->events.push_back(ev);
                                    }
                                    rs->cv.notify_all();
                                    return !rs->cancel.load();
                                  })
                                           : EventHandler(),
                                  &rs->cancel);
    {
      std::lock_guard<std::mutex> lk(rs->mu);
      rs->result = std::move(r);
      rs->done = true;
    }
    rs->cv.notify_all();
  }).detach();
  // Bounded by the endpoint's timeout (remote_post never outlives it).
  std::unique_lock<std::mutex> lk(rs->mu);
  rs->cv.wait(lk, [&] { return rs->done || !rs->events.empty(); });
  return rs;
}

static json fallback_route(const Plan& p, const EscalationResult& r, const std::string& id) {
  json route = p.route;
  route["decision"] = "local";
  // `attempted`: the audit log has the attempt, under `audit_id`.
  route["fallback"] = {{"endpoint", p.endpoint->name}, {"failure", r.reply.failure}, {"message", r.reply.message},
                       {"attempted", r.sent}, {"audit_id", id}};
  return route;
}

static json remote_x_slim(const Plan& p) {
  return {{"backend", "remote"}, {"endpoint", p.endpoint->name}, {"model", p.endpoint->model}, {"route", p.route}};
}

static void count_route(Server::Impl& s, const std::string& outcome) {
  std::lock_guard<std::mutex> lk(s.metrics_mu);
  ++s.route_counts[outcome];
}

// Sends the remote stream to the client: `emit` turns one event into bytes,
// `end` writes the close (with the fallback notice when the stream broke).
static void stream_remote(httplib::Response& res, const char* content_type, std::shared_ptr<RemoteStream> rs,
                          std::function<std::string(json&)> emit, std::function<std::string(const EscalationResult&)> end) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      content_type,
      [rs, emit, end](size_t, httplib::DataSink& sink) -> bool {
        json ev;
        while (true) {
          bool timed_out = false;
          bool more = rs->next(ev, std::chrono::milliseconds(250), &timed_out);
          if (!more) {
            std::string tail = end(rs->result);
            if (!tail.empty() && !sink.write(tail.data(), tail.size())) return false;
            sink.done();
            return true;
          }
          if (timed_out) {
            if (!sink.is_writable()) { rs->cancel = true; return false; }
            continue;
          }
          std::string out = emit(ev);
          if (out.empty()) continue;
          if (!sink.write(out.data(), out.size())) { rs->cancel = true; return false; }
          return true;
        }
      },
      [rs](bool) { rs->cancel = true; });
}

// Cascade mode: the local answer is written whole first (not streamed) and
// judged by how sure the model was while writing its first draft_tokens
// tokens. Returns the accepted local answer (an OpenAI response body), or
// nothing after turning `p` into an escalation.
static std::optional<json> cascade(Server::Impl& s, Plan& p, const json& openai_body, bool chat) {
  const RouteConfig& cfg = s.o.router->config;
  json d = openai_body;
  d.erase("model");
  d.erase("x_slim");
  d.erase("stream_options");
  d["stream"] = false;
  httplib::Response scratch;
  std::shared_ptr<GenRequest> draft;
  s.openai_local(d, scratch, chat, &p.route, &draft);
  json local = json::parse(scratch.body, nullptr, false);
  if (!draft || !local.is_object()) return local;
  const size_t n = std::min<size_t>(draft->gen_logprob.size(), (size_t)cfg.route.draft_tokens);
  DraftSignals ds = draft_signals(std::vector<float>(draft->gen_logprob.begin(), draft->gen_logprob.begin() + n),
                                  std::vector<float>(draft->gen_entropy.begin(), draft->gen_entropy.begin() + n),
                                  std::vector<int32_t>(draft->gen_tokens.begin(), draft->gen_tokens.begin() + n));
  RouteDecision dd = decide_draft(cfg.route, PromptSignals{}, ds);
  p.route["draft"] = to_json(ds);
  p.route["cascade"] = true;
  if (!dd.remote) {
    p.route["reason"] = dd.reason;
    local["x_slim"]["route"] = p.route;
    return local;
  }
  p.route["decision"] = "remote";
  p.route["reason"] = dd.reason;
  p.decision.remote = true;
  p.decision.reason = dd.reason;
  p.decision.signals = p.route["signals"];
  p.decision.signals["draft"] = p.route["draft"];
  p.endpoint = &cfg.remotes.front();
  p.audit_decision = "remote";
  return std::nullopt;
}

static bool cascade_applies(const Server::Impl& s, const Plan& p) {
  return s.o.router->config.route.cascade && !p.endpoint && p.veto.empty() && !p.decision.remote &&
         !s.o.router->config.remotes.empty();
}

// An accepted local draft as the stream a client asked for.
static void send_openai_draft(httplib::Response& res, json local, bool chat, bool stream) {
  if (!stream) {
    res.set_content(local.dump(), "application/json");
    return;
  }
  json ch = local["choices"][0];
  const std::string text = chat ? ch["message"]["content"].get<std::string>() : ch["text"].get<std::string>();
  json base = local;
  base.erase("usage");
  base["object"] = chat ? "chat.completion.chunk" : "text_completion";
  auto chunk = [&](json delta, json finish) {
    json c = {{"index", 0}, {"finish_reason", finish}, {"logprobs", nullptr}};
    if (chat) c["delta"] = delta;
    else c["text"] = delta.value("content", "");
    base["choices"] = json::array({c});
    return sse(base);
  };
  std::string out;
  if (chat) out += chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
  out += chunk({{"content", text}}, nullptr);
  out += chunk(json::object(), ch["finish_reason"]);
  out += "data: [DONE]\n\n";
  res.set_header("Cache-Control", "no-cache");
  res.set_content(out, "text/event-stream");
}

void Server::Impl::route_openai(const json& b, httplib::Response& res, bool chat) {
  RequestView v = view_openai(b, chat);
  Plan p = make_plan(*this, b, v);
  json local_body = b;
  local_body.erase("model");
  local_body.erase("x_slim");
  const bool stream = field<bool>(b, "stream", false);
  if (cascade_applies(*this, p)) {
    if (auto local = cascade(*this, p, b, chat)) {
      count_route(*this, "local");
      return send_openai_draft(res, *local, chat, stream);
    }
  }
  if (!p.endpoint) {
    count_route(*this, p.route.value("router_decision", "") == "remote" ? "kept_local" : "local");
    return openai_local(local_body, res, chat, &p.route);
  }
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++request_id);
  auto rs = start_remote(*this, p, b, chat, stream, id);
  bool failed_early;
  {
    std::lock_guard<std::mutex> lk(rs->mu);
    failed_early = rs->done && rs->events.empty() && (!rs->result.reply.ok || !stream);
  }
  if (failed_early && !rs->result.reply.ok) {
    count_route(*this, "fallback");
    json route = fallback_route(p, rs->result, id);
    return openai_local(local_body, res, chat, &route);
  }
  count_route(*this, "remote");
  set_backend(res, "remote");
  const json x_slim = remote_x_slim(p);
  if (!stream) {
    json body = rs->result.response;
    body["x_slim"] = x_slim;
    body["model"] = p.endpoint->name;
    body["id"] = id;  // ours, as the audit log has it
    res.set_content(body.dump(), "application/json");
    return;
  }
  const std::string name = p.endpoint->name;
  stream_remote(
      res, "text/event-stream", rs,
      [x_slim, name, id](json& ev) {
        ev["x_slim"] = x_slim;
        ev["model"] = name;
        ev["id"] = id;
        return sse(ev);
      },
      [x_slim, p, chat](const EscalationResult& r) {
        std::string out;
        if (!r.reply.ok) {
          // The stream broke off after it started: say so in a last chunk.
          json x = x_slim;
          x["route"]["fallback"] = {{"endpoint", p.endpoint->name}, {"failure", r.reply.failure},
                                    {"message", r.reply.message}, {"attempted", r.sent}, {"after_events", r.n_events}};
          json ch = {{"index", 0}, {"finish_reason", "stop"}};
          if (chat) ch["delta"] = json::object();
          else ch["text"] = "";
          out += sse({{"object", chat ? "chat.completion.chunk" : "text_completion"}, {"choices", json::array({ch})},
                      {"x_slim", x}});
        }
        return out + "data: [DONE]\n\n";
      });
}

void Server::Impl::route_ollama(const json& b, httplib::Response& res, bool chat) {
  json ob = ollama_as_openai(b, chat);
  RequestView v = view_openai(ob, true);
  if (b.contains("images") && b["images"].is_array() && !b["images"].empty()) v.images = true;
  Plan p = make_plan(*this, ob, v);
  json local_body = b;
  local_body.erase("model");
  local_body.erase("x_slim");
  const bool stream = field<bool>(b, "stream", true);
  if (cascade_applies(*this, p)) {
    if (auto local = cascade(*this, p, ob, true)) {
      // The accepted draft in Ollama's form (one record, or one record and the end when streaming).
      count_route(*this, "local");
      json j = {{"model", (*local)["model"]}, {"created_at", iso_time(std::chrono::system_clock::now())}, {"done", true},
                {"done_reason", (*local)["choices"][0]["finish_reason"] == "length" ? "length" : "stop"},
                {"prompt_eval_count", (*local)["usage"]["prompt_tokens"]}, {"eval_count", (*local)["usage"]["completion_tokens"]},
                {"x_slim", (*local)["x_slim"]}};
      const std::string text = (*local)["choices"][0]["message"]["content"].get<std::string>();
      if (chat) j["message"] = {{"role", "assistant"}, {"content", stream ? "" : text}};
      else j["response"] = stream ? "" : text;
      if (!stream) return res.set_content(j.dump(), "application/json");
      json first = j;
      first["done"] = false;
      first.erase("done_reason");
      first.erase("x_slim");
      if (chat) first["message"]["content"] = text;
      else first["response"] = text;
      return res.set_content(first.dump() + "\n" + j.dump() + "\n", "application/x-ndjson");
    }
  }
  if (!p.endpoint) {
    count_route(*this, p.route.value("router_decision", "") == "remote" ? "kept_local" : "local");
    return ollama_local(local_body, res, chat, &p.route);
  }
  const std::string id = "route-" + std::to_string(++request_id);
  auto t0 = Clock::now();
  auto rs = start_remote(*this, p, ob, true, stream, id);
  bool failed_early;
  {
    std::lock_guard<std::mutex> lk(rs->mu);
    failed_early = rs->done && rs->events.empty() && !rs->result.reply.ok;
  }
  if (failed_early) {
    count_route(*this, "fallback");
    json route = fallback_route(p, rs->result, id);
    return ollama_local(local_body, res, chat, &route);
  }
  count_route(*this, "remote");
  set_backend(res, "remote");
  const json x_slim = remote_x_slim(p);
  const std::string name = p.endpoint->name;
  auto record = [name, chat](const std::string& text) {
    json j = {{"model", name}, {"created_at", iso_time(std::chrono::system_clock::now())}};
    if (chat) j["message"] = {{"role", "assistant"}, {"content", text}};
    else j["response"] = text;
    j["done"] = false;
    return j;
  };
  auto finish = [x_slim, t0](json& j, const json& usage, const std::string& reason) {
    j["done"] = true;
    j["done_reason"] = reason == "length" ? "length" : "stop";
    j["total_duration"] = (int64_t)std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    if (usage.is_object()) {
      j["prompt_eval_count"] = usage.value("prompt_tokens", 0);
      j["eval_count"] = usage.value("completion_tokens", 0);
    }
    j["x_slim"] = x_slim;
  };
  if (!stream) {
    const json& r = rs->result.response;
    std::string text;
    std::string reason = "stop";
    if (r.contains("choices") && r["choices"].is_array() && !r["choices"].empty()) {
      const json& c = r["choices"][0];
      if (c.contains("message") && c["message"].is_object() && c["message"].contains("content") &&
          c["message"]["content"].is_string())
        text = c["message"]["content"].get<std::string>();
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) reason = c["finish_reason"].get<std::string>();
    }
    json j = record(text);
    finish(j, r.contains("usage") ? r["usage"] : json(), reason);
    res.set_content(j.dump(), "application/json");
    return;
  }
  auto last_reason = std::make_shared<std::string>("stop");
  auto usage = std::make_shared<json>();
  stream_remote(
      res, "application/x-ndjson", rs,
      [record, last_reason, usage](json& ev) -> std::string {
        if (ev.contains("usage") && ev["usage"].is_object()) *usage = ev["usage"];
        std::string text;
        if (ev.contains("choices") && ev["choices"].is_array())
          for (const auto& c : ev["choices"]) {
            if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
                c["delta"]["content"].is_string())
              text += c["delta"]["content"].get<std::string>();
            if (c.contains("finish_reason") && c["finish_reason"].is_string()) *last_reason = c["finish_reason"];
          }
        if (text.empty()) return "";
        return record(text).dump() + "\n";
      },
      [record, finish, last_reason, usage, x_slim, p](const EscalationResult& r) {
        json j = record("");
        finish(j, *usage, *last_reason);
        if (!r.reply.ok)
          j["x_slim"]["route"]["fallback"] = {{"endpoint", p.endpoint->name}, {"failure", r.reply.failure},
                                              {"message", r.reply.message}, {"attempted", r.sent},
                                              {"after_events", r.n_events}};
        return j.dump() + "\n";
      });
}

}  // namespace slim
