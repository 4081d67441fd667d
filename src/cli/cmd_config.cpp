// `slim config show`: the effective routing configuration, as TOML that
// `--config` would read back (or JSON), never showing an API key.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/cli.h"
#include "route/config.h"

namespace slim {

namespace {

nlohmann::json config_json(const RouteConfig& c) {
  using nlohmann::json;
  json j;
  j["file"] = c.path.empty() ? json(nullptr) : json(std::filesystem::absolute(c.path).string());
  j["policy"] = policy_name(c.policy);
  j["local"] = c.local_models;
  j["audit_log"] = c.audit_log.empty() ? json(nullptr) : json(c.audit_log);
  j["remote"] = json::array();
  for (const auto& ep : c.remotes) {
    json h = json::object();
    for (const auto& [k, v] : ep.headers) h[k] = v;
    const char* key = ep.api_key_env.empty() ? nullptr : std::getenv(ep.api_key_env.c_str());
    j["remote"].push_back({{"name", ep.name},
                           {"url", ep.base_url},
                           {"model", ep.model},
                           {"api_key_env", ep.api_key_env.empty() ? json(nullptr) : json(ep.api_key_env)},
                           {"api_key_set", key != nullptr && *key != '\0'},  // whether, never what
                           {"timeout", ep.timeout_s},
                           {"connect_timeout", ep.connect_timeout_s},
                           {"headers", h}});
  }
  json custom = json::array();
  for (const auto& r : c.privacy.custom) custom.push_back({{"name", r.name}, {"pattern", r.pattern}});
  j["privacy"] = {{"disabled", c.privacy.disabled}, {"forbid", c.privacy.forbid},
                  {"markers", c.privacy.markers}, {"custom", custom}};
  const RouteThresholds& t = c.route;
  j["route"] = {{"max_prompt_nll", t.max_prompt_nll},
                {"max_context_share", t.max_context_share},
                {"classifier", t.classifier.empty() ? json(nullptr) : json(t.classifier)},
                {"classifier_threshold", t.classifier_threshold},
                {"cascade", t.cascade},
                {"draft_tokens", t.draft_tokens},
                {"min_draft_logprob", t.min_draft_logprob},
                {"min_draft_p10", t.min_draft_p10},
                {"max_draft_repetition", t.max_draft_repetition}};
  return j;
}

}  // namespace

CommandRun register_config(CLI::App& app) {
  struct Opts { std::string config; bool json = false; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("config", "the routing configuration ($SLIM_HOME/config.toml)");
  cmd->require_subcommand(1);
  CLI::App* show = cmd->add_subcommand("show", "print the effective configuration (API keys are never shown)");
  show->add_option("--config", o->config, "config file (default: $SLIM_HOME/config.toml)");
  show->add_flag("--json", o->json, "print JSON instead of TOML");
  return [o, show]() {
    if (!show->parsed()) return fail("no config command given (try slim config --help)");
    auto c = o->config.empty() ? load_default_route_config() : load_route_config(o->config);
    if (!c) return fail(c.error());
    if (o->json) {
      std::printf("%s\n", config_json(*c).dump(2).c_str());
      return 0;
    }
    std::string head = c->path.empty() ? "# no config file: defaults (" + default_config_path() + " does not exist)\n"
                                       : "# config file: " + std::filesystem::absolute(c->path).string() + "\n";
    std::fputs((head + describe_route_config(*c)).c_str(), stdout);
    return 0;
  };
}

}  // namespace slim
