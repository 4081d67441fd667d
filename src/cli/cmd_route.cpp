// `slim route`: the router on the terminal. `explain` prints every signal of
// one prompt and the decision; `decide --jsonl` decides a stream of prompts;
// `calibrate` picks thresholds from labelled prompts and writes them to the
// config; `train` fits the optional classifier and stores it beside the config.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/options.h"
#include "route/router.h"

namespace slim {

namespace {

struct RouteOpts {
  ModelOptions m;
  std::string config;
};

void add_route_options(CLI::App* cmd, RouteOpts& o) {
  // No positional MODEL here: the positionals are the prompt or the data.
  cmd->add_option("-m,--model", o.m.model, "the local model (file or store name; default: the config's first)");
  cmd->add_option("-c,--ctx-size", o.m.n_ctx, "context size in tokens (default: the model's, at most 4096)");
  cmd->add_option("-t,--threads", o.m.n_threads, "threads (default: physical cores)");
  cmd->add_option("--config", o.config, "config file (default: $SLIM_HOME/config.toml)");
}

Result<RouteConfig> route_config(const RouteOpts& o) {
  return o.config.empty() ? load_default_route_config() : load_route_config(o.config);
}

// The engine of the local model: -m, else the config's first local model.
Result<std::unique_ptr<Engine>> local_engine(RouteOpts& o, const RouteConfig& c) {
  if (o.m.model.empty()) {
    if (c.local_models.empty()) return Status::error("no local model: give -m MODEL or set 'local' in the config");
    o.m.model = c.local_models.front();
  }
  return load_engine(o.m);
}

// Signals of every labelled row with the local model.
Status score_rows(Engine& e, const Router& r, std::vector<LabelledPrompt>& rows) {
  for (auto& row : rows) {
    auto s = engine_prompt_signals(e, r, row.prompt);
    if (!s) return s.status();
    row.signals = *s;
  }
  return Status();
}

void print_calibration(const Calibration& c, const char* what) {
  std::printf("%s: %d prompts (%d labelled local), score %s\n", what, c.n, c.n_local, c.score.c_str());
  std::printf("  accuracy %.1f%%, answered locally %.1f%%, local-labelled kept local %.1f%%, remote-labelled sent %.1f%%\n",
              c.accuracy * 100, c.local_fraction * 100, c.local_kept * 100, c.remote_sent * 100);
}

std::string config_target(const RouteOpts& o) { return o.config.empty() ? default_config_path() : o.config; }

}  // namespace

CommandRun register_route(CLI::App& app) {
  CLI::App* route = app.add_subcommand("route", "the hybrid router: explain, decide, calibrate, train");
  route->require_subcommand(1);

  auto ex = std::make_shared<RouteOpts>();
  auto ex_prompt = std::make_shared<std::string>();
  auto ex_json = std::make_shared<bool>(false);
  CLI::App* explain = route->add_subcommand("explain", "print every routing signal of a prompt and the decision");
  add_route_options(explain, *ex);
  explain->add_option("PROMPT", *ex_prompt, "the prompt")->required();
  explain->add_flag("--json", *ex_json, "one JSON object");

  auto de = std::make_shared<RouteOpts>();
  auto de_jsonl = std::make_shared<bool>(false);
  CLI::App* decide = route->add_subcommand("decide", "decide a JSON prompt string a line on stdin, one JSON object a line out");
  add_route_options(decide, *de);
  decide->add_flag("--jsonl", *de_jsonl, "JSON lines in and out (the only format)")->required();

  auto ca = std::make_shared<RouteOpts>();
  auto ca_data = std::make_shared<std::string>();
  auto ca_target = std::make_shared<double>(0.85);
  auto ca_dry = std::make_shared<bool>(false);
  CLI::App* cal = route->add_subcommand("calibrate", "pick routing thresholds from labelled prompts and write them to the config");
  add_route_options(cal, *ca);
  cal->add_option("DATA", *ca_data, "JSONL rows {\"prompt\": ..., \"label\": \"local\"|\"remote\"}")->required();
  cal->add_option("--target-local", *ca_target,
                  "the share of local-labelled prompts that must stay local (default 0.85); the most accurate threshold meeting it wins");
  cal->add_flag("--dry-run", *ca_dry, "print the thresholds, write nothing");

  auto tr = std::make_shared<RouteOpts>();
  auto tr_data = std::make_shared<std::string>();
  auto tr_out = std::make_shared<std::string>();
  auto tr_target = std::make_shared<double>(0.85);
  CLI::App* train = route->add_subcommand("train", "fit the routing classifier (hashed n-grams + model signals) on labelled prompts");
  add_route_options(train, *tr);
  train->add_option("DATA", *tr_data, "JSONL rows {\"prompt\": ..., \"label\": \"local\"|\"remote\"}")->required();
  train->add_option("-o,--out", *tr_out, "classifier file (default: route-classifier.json beside the config)");
  train->add_option("--target-local", *tr_target, "as for calibrate, on cross-validated probabilities");

  return [=]() -> int {
    if (explain->parsed()) {
      auto c = route_config(*ex);
      if (!c) return fail(c.error());
      auto r = Router::create(*c);
      if (!r) return fail(r.error());
      auto e = local_engine(*ex, *c);
      if (!e) return fail(e.error());
      auto s = engine_prompt_signals(**e, **r, *ex_prompt);
      if (!s) return fail(s.error());
      RouteDecision d = decide_prompt(c->route, *s);
      auto findings = (*r)->detector->find(*ex_prompt);
      std::map<std::string, int> by_cat;
      for (auto& f : findings) ++by_cat[f.category];
      const std::string forbid = forbid_reason(c->privacy, findings, *ex_prompt);
      if (*ex_json) {
        nlohmann::json j = d.to_json();
        j["policy"] = policy_name(c->policy);
        j["privacy"] = {{"findings", by_cat}, {"forbidden", forbid}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      std::printf("decision: %s\nreason:   %s\npolicy:   %s\n", d.remote ? "remote" : "local", d.reason.c_str(),
                  policy_name(c->policy));
      std::printf("signals:\n");
      for (auto& [k, v] : d.signals.items()) std::printf("  %-16s %s\n", k.c_str(), v.dump().c_str());
      std::printf("privacy:\n");
      if (by_cat.empty()) std::printf("  no personal data or secrets found\n");
      for (auto& [k, n] : by_cat) std::printf("  %-16s %d (redacted before anything leaves)\n", k.c_str(), n);
      if (!forbid.empty()) std::printf("  escalation forbidden: %s\n", forbid.c_str());
      return 0;
    }
    if (decide->parsed()) {
      auto c = route_config(*de);
      if (!c) return fail(c.error());
      auto r = Router::create(*c);
      if (!r) return fail(r.error());
      auto e = local_engine(*de, *c);
      if (!e) return fail(e.error());
      std::string line;
      int n = 0;
      while (std::getline(std::cin, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_string()) return fail(format("stdin line %d: expected a JSON string (the prompt)", n));
        auto s = engine_prompt_signals(**e, **r, j.get<std::string>());
        if (!s) return fail(s.error());
        RouteDecision d = decide_prompt(c->route, *s);
        std::printf("%s\n", d.to_json().dump().c_str());
        std::fflush(stdout);
      }
      return 0;
    }
    if (cal->parsed() || train->parsed()) {
      RouteOpts& o = cal->parsed() ? *ca : *tr;
      const std::string& data = cal->parsed() ? *ca_data : *tr_data;
      const double target = cal->parsed() ? *ca_target : *tr_target;
      if (!(target >= 0 && target <= 1)) return fail("--target-local must be between 0 and 1");
      auto c = route_config(o);
      if (!c) return fail(c.error());
      auto rows = read_labelled_prompts(data);
      if (!rows) return fail(rows.error());
      RouteConfig plain = *c;
      if (train->parsed()) plain.route.classifier.clear();  // the signals, not the old classifier's view
      auto r = Router::create(plain);
      if (!r) return fail(r.error());
      auto e = local_engine(o, *c);
      if (!e) return fail(e.error());
      if (auto st = score_rows(**e, **r, *rows); !st) return fail(st.message());
      const std::string cfg = config_target(o);
      RouteThresholds t = c->route;
      if (cal->parsed()) {
        Calibration nll = calibrate(*rows, target, t);
        print_calibration(nll, "perplexity threshold");
        t.max_prompt_nll = nll.thresholds.max_prompt_nll;
        std::printf("  max_prompt_nll = %.4f\n", t.max_prompt_nll);
        if ((*r)->classifier) {
          std::vector<double> p;
          for (auto& row : *rows) p.push_back(row.signals.classifier_p);
          Calibration cl = calibrate(*rows, target, t, &p);
          print_calibration(cl, "classifier threshold");
          t.classifier_threshold = cl.thresholds.classifier_threshold;
          std::printf("  classifier_threshold = %.4f\n", t.classifier_threshold);
        }
        if (*ca_dry) return 0;
      } else {
        std::vector<double> cv = cross_validated_p(*rows, 5);
        Calibration cl = calibrate(*rows, target, t, &cv);
        print_calibration(cl, "classifier, 5-fold cross-validated");
        RouteClassifier model = train_classifier(*rows);
        std::string out = *tr_out;
        if (out.empty()) out = (std::filesystem::path(cfg).parent_path() / "route-classifier.json").string();
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(out).parent_path(), ec);
        if (auto st = save_classifier(out, model); !st) return fail(st.message());
        std::printf("wrote %s\n", out.c_str());
        // Stored relative to the config when it sits beside it.
        auto rel = std::filesystem::path(out).lexically_relative(std::filesystem::path(cfg).parent_path());
        t.classifier = (!rel.empty() && rel.native()[0] != '.') ? rel.string() : std::filesystem::absolute(out).string();
        t.classifier_threshold = cl.thresholds.classifier_threshold;
        std::printf("  classifier_threshold = %.4f\n", t.classifier_threshold);
      }
      if (auto st = save_route_thresholds(cfg, t); !st) return fail(st.message());
      std::printf("wrote the [route] thresholds to %s\n", cfg.c_str());
      return 0;
    }
    return fail("slim route needs a subcommand: explain, decide, calibrate or train");
  };
}

}  // namespace slim
