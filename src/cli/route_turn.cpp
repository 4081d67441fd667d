// Terminal routing of one turn.
#include "cli/route_turn.h"

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "route/escalate.h"

namespace slim {

Result<std::unique_ptr<TerminalRouter>> make_terminal_router(const RouteConfig& c) {
  auto r = Router::create(c);
  if (!r) return r.status();
  auto tr = std::make_unique<TerminalRouter>();
  tr->router = *r;
  tr->audit = std::make_unique<AuditLog>(c.audit_log.empty() ? default_audit_path() : c.audit_log);
  return tr;
}

namespace {

// y/n on the controlling terminal (stdin may be the prompt itself).
bool confirm(const std::string& question) {
  std::ifstream tty("/dev/tty");
  if (!tty || !isatty(2)) {
    std::fprintf(stderr, "slim: route: %s — no terminal to ask, so it stays local\n", question.c_str());
    return false;
  }
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  std::getline(tty, answer);
  return !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
}

}  // namespace

std::optional<std::string> route_turn(TerminalRouter& tr, Engine& e, const nlohmann::json& messages,
                                      const std::string& text, const SamplerParams& sp, int n_predict, bool print) {
  const RouteConfig& cfg = tr.router->config;
  auto s = engine_prompt_signals(e, *tr.router, text);
  if (!s) {
    std::fprintf(stderr, "slim: route: %s; answering locally\n", s.error().c_str());
    return std::nullopt;
  }
  RouteDecision d = decide_prompt(cfg.route, *s);
  tr.last_route = d.to_json();
  tr.last_route["policy"] = policy_name(cfg.policy);
  auto local = [&](const std::string& why) -> std::optional<std::string> {
    std::fprintf(stderr, "[route: local — %s]\n", why.c_str());
    tr.last_route["decision"] = "local";
    if (d.remote) tr.last_route["kept_local"] = why;
    return std::nullopt;
  };
  if (!d.remote) return local(d.reason);
  const std::string text_all = escalation_text({{"messages", messages}}, true);
  const std::string forbid = forbid_reason(cfg.privacy, tr.router->detector->find(text_all), text_all);
  if (cfg.remotes.empty()) return local(d.reason + "; no remote endpoint is configured");
  if (!forbid.empty()) return local(forbid);
  if (cfg.policy == Policy::LocalOnly) return local(d.reason + "; the local-only policy keeps it here");
  const RemoteEndpoint& ep = cfg.remotes.front();
  std::string decision = "remote";
  if (cfg.policy == Policy::Ask) {
    if (!confirm("Send this to '" + ep.name + "' (" + ep.model + ")? " + d.reason)) return local("not confirmed");
    decision = "confirmed";
  }
  std::fprintf(stderr, "[route: remote %s (%s) — %s]\n", ep.name.c_str(), ep.model.c_str(), d.reason.c_str());
  nlohmann::json body = {{"messages", messages}};
  if (n_predict > 0) body["max_tokens"] = n_predict;
  body["temperature"] = sp.temperature;
  if (sp.top_p < 1) body["top_p"] = sp.top_p;
  Escalation esc;
  esc.endpoint = &ep;
  esc.chat = true;
  esc.body = body;
  esc.stream = true;
  esc.request_id = "run-" + std::to_string(getpid()) + "-" + std::to_string(++tr.n_requests);
  esc.decision = decision;
  esc.route = d;
  std::string answer;
  EscalationResult r = escalate(*tr.router, *tr.audit, esc, [&](nlohmann::json& ev) {
    if (ev.contains("choices") && ev["choices"].is_array())
      for (const auto& c : ev["choices"])
        if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") && c["delta"]["content"].is_string()) {
          const std::string piece = c["delta"]["content"].get<std::string>();
          answer += piece;
          if (print) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
          }
        }
    return true;
  });
  tr.last_route["endpoint"] = ep.name;
  if (!r.reply.ok) {
    tr.last_route["fallback"] = {{"failure", r.reply.failure}, {"message", r.reply.message}};
    if (answer.empty()) return local("the remote failed (" + r.reply.failure + ": " + r.reply.message + ")");
    std::fprintf(stderr, "\n[route: the remote stream broke off (%s)]\n", r.reply.message.c_str());
  }
  return answer;
}

}  // namespace slim
