// The `slim` command line: subcommands registered on one CLI11 app. Every
// command reports bad input as one line on stderr and exits with status 1.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace CLI { class App; }

namespace slim {

int cli_main(int argc, char** argv);

// A subcommand: registers its options on `app` and returns the function that
// runs it after parsing (returns the exit status).
using CommandRun = std::function<int()>;
using CommandRegister = CommandRun (*)(CLI::App& app);

// One line "slim: error: MSG" on stderr; returns 1 for `return fail(...)`.
int fail(const std::string& msg);

// The whole of a text file; "cannot read the WHAT PATH" when it cannot be opened.
Result<std::string> read_text_file(const std::string& path, const char* what = "text file");

// Comma-separated integers ("1,2,3"); empty on error with `err` set.
std::vector<int32_t> parse_id_list(const std::string& s, std::string* err);

// The command registrations (one file each).
CommandRun register_run(CLI::App& app);
CommandRun register_logits(CLI::App& app);
CommandRun register_info(CLI::App& app);
CommandRun register_tokenize(CLI::App& app);
CommandRun register_detokenize(CLI::App& app);
CommandRun register_template(CLI::App& app);
CommandRun register_bench(CLI::App& app);
CommandRun register_synth(CLI::App& app);
CommandRun register_quantize(CLI::App& app);  // cmd_quantize.cpp
CommandRun register_prune(CLI::App& app);     // cmd_prune.cpp
CommandRun register_train(CLI::App& app);     // cmd_train.cpp: slim train
CommandRun register_distill(CLI::App& app);   // cmd_train.cpp: slim distill
// The model store and the memory planner (cmd_store.cpp, cmd_fit.cpp).
CommandRun register_pull(CLI::App& app);
CommandRun register_import(CLI::App& app);
CommandRun register_list(CLI::App& app);
CommandRun register_show(CLI::App& app);
CommandRun register_rm(CLI::App& app);
CommandRun register_cp(CLI::App& app);
CommandRun register_fit(CLI::App& app);
CommandRun register_serve(CLI::App& app);  // cmd_serve.cpp
CommandRun register_audit(CLI::App& app);  // cmd_audit.cpp: slim audit
CommandRun register_perplexity(CLI::App& app);  // cmd_perplexity.cpp
CommandRun register_imatrix(CLI::App& app);     // cmd_imatrix.cpp
CommandRun register_config(CLI::App& app);  // cmd_config.cpp: slim config show
CommandRun register_route(CLI::App& app);   // cmd_route.cpp: slim route explain|decide|calibrate|train

}  // namespace slim
