// Routing flags on top of the config file.
#include "cli/route_options.h"

#include <CLI/CLI.hpp>

#include "net/outbound.h"
#include "server/server.h"

namespace slim {

void add_route_flags(CLI::App& cmd, RouteFlags& f) {
  cmd.add_option("--config", f.config, "routing config (default: $SLIM_HOME/config.toml when it exists)");
  cmd.add_option("--remote-url", f.remote_url, "an OpenAI-compatible endpoint, up to /v1 (e.g. http://127.0.0.1:8081/v1)");
  cmd.add_option("--remote-model", f.remote_model, "the model name to ask the endpoint for");
  cmd.add_option("--remote-name", f.remote_name, "the name the endpoint goes by here (default: remote)");
  cmd.add_option("--remote-key-env", f.remote_key_env, "environment variable holding the endpoint's API key");
  cmd.add_option("--remote-timeout", f.remote_timeout, "total time allowed for a remote answer (default 30s)");
  cmd.add_option("--policy", f.policy, "what may leave the machine: local-only, ask or auto (default: the config's, else ask)");
  cmd.add_option("--audit-log", f.audit_log, "the audit log of escalations (default: $SLIM_HOME/audit.jsonl)");
}

Result<RouteConfig> resolve_route_config(const RouteFlags& f) {
  auto c = f.config.empty() ? load_default_route_config() : load_route_config(f.config);
  if (!c) return c.status();
  RouteConfig cfg = std::move(*c);
  if (!f.remote_url.empty() || !f.remote_model.empty()) {
    if (f.remote_url.empty() || f.remote_model.empty())
      return Status::error("--remote-url and --remote-model go together");
    if (f.remote_url.rfind("http://", 0) != 0 && f.remote_url.rfind("https://", 0) != 0)
      return Status::error("--remote-url must start with http:// or https://");
    RemoteEndpoint ep;
    ep.name = f.remote_name.empty() ? "remote" : f.remote_name;
    if (ep.name == "auto") return Status::error("--remote-name cannot be 'auto' (that is the router)");
    ep.base_url = f.remote_url;
    while (!ep.base_url.empty() && ep.base_url.back() == '/') ep.base_url.pop_back();
    ep.model = f.remote_model;
    ep.api_key_env = f.remote_key_env;
    if (!f.remote_timeout.empty()) {
      auto t = parse_duration_s(f.remote_timeout);
      if (!t || *t <= 0) return Status::error("bad --remote-timeout '" + f.remote_timeout + "'");
      ep.timeout_s = *t;
      ep.connect_timeout_s = std::min(ep.connect_timeout_s, *t);
    }
    std::erase_if(cfg.remotes, [&](const RemoteEndpoint& r) { return r.name == ep.name; });
    cfg.remotes.insert(cfg.remotes.begin(), ep);
  }
  if (!f.policy.empty()) {
    auto p = parse_policy(f.policy);
    if (!p) return p.status();
    cfg.policy = *p;
  }
  if (!f.audit_log.empty()) cfg.audit_log = f.audit_log;
  net::set_local_only(cfg.policy == Policy::LocalOnly);
  return cfg;
}

}  // namespace slim
