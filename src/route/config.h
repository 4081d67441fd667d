// The routing configuration: local models, remote endpoints, the escalation
// policy, privacy rules and routing thresholds. Read from
// $SLIM_HOME/config.toml (or --config FILE) with toml++; flags override it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace slim {

// What may leave the machine: nothing (local-only); an escalation the user
// confirms (ask: the terminal asks, the server answers locally and says an
// escalation is available); or whatever the router decides (auto).
enum class Policy { LocalOnly, Ask, Auto };
const char* policy_name(Policy p);                  // "local-only", "ask", "auto"
Result<Policy> parse_policy(const std::string& s);

// An OpenAI-compatible endpoint (OpenAI, vLLM, TGI, llama.cpp, Ollama, slim).
struct RemoteEndpoint {
  std::string name = "remote";   // how requests and responses name it
  std::string base_url;          // up to and including /v1, e.g. http://127.0.0.1:8081/v1
  std::string model;             // the model name sent to the endpoint
  std::string api_key_env;       // environment variable holding the API key ("": none)
  double timeout_s = 30;         // whole request
  double connect_timeout_s = 5;
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  bool operator==(const RemoteEndpoint&) const = default;
};

struct CustomPrivacyRule {
  std::string name;     // category name, e.g. "employee_id" (placeholder [EMPLOYEE_ID_1])
  std::string pattern;  // PCRE2
  bool operator==(const CustomPrivacyRule&) const = default;
};

struct PrivacyConfig {
  std::vector<std::string> disabled;            // built-in categories switched off
  std::vector<std::string> forbid;              // categories whose presence forbids escalation
  std::vector<std::string> markers{"#private"};  // a prompt containing one never leaves
  std::vector<CustomPrivacyRule> custom;
  bool operator==(const PrivacyConfig&) const = default;
};

struct RouteThresholds {
  // Prompt signals (before generating).
  double max_prompt_nll = 3.4;       // mean nats/token of the prompt under the local model; above → remote
  double max_context_share = 0.9;    // prompt tokens over this share of the local context → remote
  std::string classifier;            // trained classifier file ("": none); the file names it relative to its
                                     // folder, loading makes it absolute
  double classifier_threshold = 0.5; // P(remote) above → remote
  // Draft signals (cascade mode: a local draft first, escalated when unsure).
  bool cascade = false;
  int draft_tokens = 64;
  double min_draft_logprob = -2.5;   // mean token log-probability of the draft; below → remote
  double min_draft_p10 = -6.0;       // 10th percentile of token log-probabilities; below → remote
  double max_draft_repetition = 0.5; // share of repeated 4-grams in the draft; above → remote
  bool operator==(const RouteThresholds&) const = default;
};

struct RouteConfig {
  std::string path;                       // the file read ("": none, defaults)
  std::vector<std::string> local_models;  // files or store names; the first is the default
  std::vector<RemoteEndpoint> remotes;
  Policy policy = Policy::Ask;
  PrivacyConfig privacy;
  RouteThresholds route;
  std::string audit_log;                  // "": $SLIM_HOME/audit.jsonl
  bool operator==(const RouteConfig&) const = default;
};

// Reads a config file. Unknown keys and wrong types are one-line errors
// naming the key and its line ("config.toml:12: unknown key 'route.foo'").
Result<RouteConfig> load_route_config(const std::string& path);
// $SLIM_HOME/config.toml when it exists, else the defaults (path "").
Result<RouteConfig> load_default_route_config();
// The file `slim config show` and `slim route calibrate` use: --config or $SLIM_HOME/config.toml.
std::string default_config_path();

// Writes the [route] thresholds into the config file at `path` (created when
// missing), keeping its other settings; atomic (temporary name, rename).
Status save_route_thresholds(const std::string& path, const RouteThresholds& t);

// The effective configuration as TOML text; API keys are never printed, only
// whether their variable is set.
std::string describe_route_config(const RouteConfig& c);

}  // namespace slim
