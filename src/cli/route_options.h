// Flags shared by the commands that route (serve, run): the config file and
// the quick overrides of it for one remote endpoint and the policy.
#pragma once

#include <string>

#include "route/config.h"

namespace CLI { class App; }

namespace slim {

struct RouteFlags {
  std::string config;          // --config FILE (default: $SLIM_HOME/config.toml when it exists)
  std::string remote_url, remote_model, remote_name, remote_key_env, remote_timeout;
  std::string policy;
  std::string audit_log;
};

void add_route_flags(CLI::App& cmd, RouteFlags& f);
// The config file with the flags applied on top; a flag endpoint replaces a
// file endpoint of the same name. Under local-only, outbound connections are
// switched off for the whole process (net::set_local_only).
Result<RouteConfig> resolve_route_config(const RouteFlags& f);

}  // namespace slim
