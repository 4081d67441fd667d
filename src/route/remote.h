// A client for OpenAI-compatible endpoints (libcurl): one POST, its reply
// whole or as server-sent events passed on one by one, a connect and a total
// timeout, and cancellation. Connections go through net::perform only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "route/config.h"

namespace slim {

struct RemoteReply {
  bool ok = false;        // a 2xx reply, read to the end (and, streaming, ended by [DONE] or EOF)
  int http_status = 0;    // 0: no HTTP reply (unreachable, timeout, refused by policy)
  std::string failure;    // when !ok: "unreachable", "timeout", "http 500", "http 429", "malformed", "cancelled", "refused"
  std::string message;    // one line for the user
  std::string body;       // the reply body (not streaming)
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

// Called with the payload of each SSE `data:` event (not "[DONE]"); returning
// false stops the transfer (the user's client went away).
using SseHandler = std::function<bool(std::string_view data)>;

// POSTs `body` (JSON) to ep.base_url + path ("/chat/completions",
// "/completions"), with Authorization: Bearer $ep.api_key_env when set and
// ep.headers. With `on_event` the reply is read as an SSE stream. `cancel`
// (optional) aborts the transfer within ~100 ms when it becomes true.
RemoteReply remote_post(const RemoteEndpoint& ep, const std::string& path, const std::string& body,
                        const SseHandler& on_event = nullptr, const std::atomic<bool>* cancel = nullptr);

}  // namespace slim
