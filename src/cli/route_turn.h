// The router on the terminal (`slim run --route auto`): each prompt or chat
// turn is judged by the router; one that goes remote (the policy allowing,
// `ask` asking y/n on the terminal) is streamed from the endpoint through the
// privacy guard and the audit log, and a remote failure falls back to the
// local model with a notice on stderr.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "route/audit.h"
#include "route/router.h"

namespace slim {

struct TerminalRouter {
  std::shared_ptr<const Router> router;
  std::unique_ptr<AuditLog> audit;
  int64_t n_requests = 0;
  nlohmann::json last_route;  // the last turn's decision, for --json
};

Result<std::unique_ptr<TerminalRouter>> make_terminal_router(const RouteConfig& c);

// Decides one turn (`messages` is the conversation, OpenAI style; `text` the
// new user text). Returns the remote answer, already written to stdout when
// `print`, or nothing when the local model is to answer.
std::optional<std::string> route_turn(TerminalRouter& tr, Engine& e, const nlohmann::json& messages,
                                      const std::string& text, const SamplerParams& sp, int n_predict, bool print);

}  // namespace slim
