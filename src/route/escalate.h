// Sending one request to a remote endpoint the only way slim does it: the
// privacy guard redacts every message first, the audit log gets its entry
// before a byte leaves, the reply's placeholders are restored (also across
// streamed chunks), and a failure comes back as a reason to answer locally.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "route/audit.h"
#include "route/remote.h"
#include "route/router.h"

namespace slim {

struct Escalation {
  const RemoteEndpoint* endpoint = nullptr;
  bool chat = true;                 // /chat/completions (messages) or /completions (prompt)
  nlohmann::json body;              // an OpenAI request body, as the user sent it (unredacted)
  bool stream = false;
  std::string request_id;
  std::string decision;             // audit: "remote", "explicit", "confirmed"
  RouteDecision route;              // audit: why
};

struct EscalationResult {
  RemoteReply reply;
  nlohmann::json response;          // not streaming: the reply with placeholders restored
  std::map<std::string, int> redactions;
  std::string forbidden;            // non-empty: the privacy rules kept it here (nothing sent)
  bool sent = false;                // the audit entry was written and the request went out
  int n_events = 0;                 // streamed events passed on
};

// The text a request sends: every message's content (and text parts), or the prompt.
std::string escalation_text(const nlohmann::json& body, bool chat);

// Called with each streamed event (a chat.completion.chunk or
// text_completion object) after its text was restored; false cancels.
using EventHandler = std::function<bool(nlohmann::json& event)>;

EscalationResult escalate(const Router& router, AuditLog& audit, const Escalation& e, const EventHandler& on_event = nullptr,
                          const std::atomic<bool>* cancel = nullptr);

}  // namespace slim
