// Redact → audit → send → restore.
#include "route/escalate.h"

#include <memory>

#include "store/sha256.h"

namespace slim {

using json = nlohmann::json;

namespace {

// Every string value of the body leaves the machine, so every one is
// redacted (only the model name is ours to set); object keys are structure.
void redact_strings(json& j, privacy::Redaction& r) {
  if (j.is_string()) {
    j = r.redact(j.get_ref<const std::string&>());
  } else if (j.is_array()) {
    for (auto& x : j) redact_strings(x, r);
  } else if (j.is_object()) {
    for (auto& [k, v] : j.items())
      if (k != "model") redact_strings(v, r);
  }
}

void restore_strings(json& j, const privacy::Redaction& r) {
  if (j.is_string()) j = r.restore(j.get_ref<const std::string&>());
  else if (j.is_array() || j.is_object())
    for (auto& x : j) restore_strings(x, r);
}

void collect_text(const json& j, std::string& out) {
  if (j.is_string()) { out += j.get_ref<const std::string&>(); out += '\n'; }
  else if (j.is_array() || j.is_object())
    for (const auto& x : j) collect_text(x, out);
}

}  // namespace

std::string escalation_text(const json& body, bool chat) {
  std::string out;
  if (chat && body.contains("messages")) collect_text(body["messages"], out);
  else if (!chat && body.contains("prompt")) collect_text(body["prompt"], out);
  if (body.contains("tools")) collect_text(body["tools"], out);
  return out;
}

EscalationResult escalate(const Router& router, AuditLog& audit, const Escalation& e, const EventHandler& on_event,
                          const std::atomic<bool>* cancel) {
  EscalationResult res;
  const RemoteEndpoint& ep = *e.endpoint;
  const std::string text = escalation_text(e.body, e.chat);
  res.forbidden = forbid_reason(router.config.privacy, router.detector->find(text), text);
  if (!res.forbidden.empty()) {
    res.reply.failure = "forbidden";
    res.reply.message = res.forbidden;
    return res;
  }
  json body = e.body;
  body.erase("x_slim");
  privacy::Redaction red(router.detector);
  redact_strings(body, red);
  body["model"] = ep.model;
  body["stream"] = e.stream;
  if (!e.stream) body.erase("stream_options");
  const std::string payload = body.dump();
  res.redactions = red.counts();

  AuditEntry a;
  a.request_id = e.request_id;
  a.decision = e.decision;
  a.reason = e.route.reason;
  a.signals = e.route.signals;
  a.endpoint = ep.name;
  a.url = ep.base_url + (e.chat ? "/chat/completions" : "/completions");
  a.model = ep.model;
  a.bytes_sent = payload.size();
  a.payload_sha256 = sha256_hex(payload);
  a.redactions = res.redactions;
  // Written before anything leaves: an escalation the log does not have
  // never happened.
  if (auto st = audit.append(a); !st) {
    res.reply.failure = "audit";
    res.reply.message = "the audit log cannot be written (" + st.message() + "); nothing was sent";
    return res;
  }
  res.sent = true;
  const std::string path = e.chat ? "/chat/completions" : "/completions";
  if (!e.stream) {
    res.reply = remote_post(ep, path, payload, nullptr, cancel);
    if (res.reply.ok) {
      res.response = json::parse(res.reply.body, nullptr, false);
      if (!res.response.is_object() || !res.response.contains("choices")) {
        res.reply.ok = false;
        res.reply.failure = "malformed";
        res.reply.message = "the remote reply has no 'choices'";
      } else {
        restore_strings(res.response, red);
      }
    }
    return res;
  }
  // Streaming: one restorer per choice index (the text of a placeholder can
  // be split across events).
  std::map<int, std::unique_ptr<privacy::StreamRestorer>> restorers;
  json last_event;
  bool stopped = false;
  auto restore_field = [&](json& choice, int index, const char* key, const char* sub) {
    json* field = nullptr;
    if (sub) {
      if (choice.contains(key) && choice[key].is_object() && choice[key].contains(sub) && choice[key][sub].is_string())
        field = &choice[key][sub];
    } else if (choice.contains(key) && choice[key].is_string()) {
      field = &choice[key];
    }
    if (!field) return;
    auto& rs = restorers[index];
    if (!rs) rs = std::make_unique<privacy::StreamRestorer>(red);
    *field = rs->push(field->get_ref<const std::string&>());
  };
  res.reply = remote_post(
      ep, path, payload,
      [&](std::string_view data) {
        json ev = json::parse(data, nullptr, false);
        if (!ev.is_object()) return true;  // a keep-alive or a vendor comment: not ours to pass on
        if (ev.contains("choices") && ev["choices"].is_array()) {
          for (auto& ch : ev["choices"]) {
            if (!ch.is_object()) continue;
            const int index = ch.value("index", 0);
            restore_field(ch, index, "delta", "content");
            restore_field(ch, index, "text", nullptr);
          }
        }
        last_event = ev;
        ++res.n_events;
        if (on_event && !on_event(ev)) { stopped = true; return false; }
        return true;
      },
      cancel);
  // Text still held back by a restorer (the stream ended inside what looked
  // like a placeholder) goes out as one more event.
  if (!stopped && on_event && last_event.is_object()) {
    for (auto& [index, rs] : restorers) {
      std::string rest = rs->finish();
      if (rest.empty()) continue;
      json ev = last_event;
      json ch = {{"index", index}, {"finish_reason", nullptr}};
      if (e.chat) ch["delta"] = {{"content", rest}};
      else ch["text"] = rest;
      ev["choices"] = json::array({ch});
      on_event(ev);
    }
  }
  return res;
}

}  // namespace slim
