// Command dispatch and shared CLI helpers.
#include "cli/cli.h"
#include "store/planner.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace slim {

int fail(const std::string& msg) {
  std::fprintf(stderr, "slim: error: %s\n", msg.c_str());
  return 1;
}

Result<std::string> read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error(std::string("cannot read the ") + what + " " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<int32_t> parse_id_list(const std::string& s, std::string* err) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string part = s.substr(i, j - i);
    try {
      size_t used = 0;
      long v = std::stol(part, &used);
      if (used != part.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(part);
      ids.push_back((int32_t)v);
    } catch (const std::exception&) {
      *err = "bad token id '" + part + "' in '" + s + "'";
      return {};
    }
    i = j + 1;
  }
  if (ids.empty()) *err = "no token ids given";
  return ids;
}

int cli_main(int argc, char** argv) {
  runtime_baseline_bytes();  // the memory planner's measure of the runtime alone, before any model
  CLI::App app{"slim: run small language models on this machine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "slim 0.1.0");
  std::map<CLI::App*, CommandRun> runs;
  for (CommandRegister reg : {register_run, register_logits, register_info, register_tokenize, register_detokenize,
                              register_template, register_bench, register_synth, register_quantize, register_prune,
                              register_train, register_distill,
                              register_pull, register_import, register_list, register_show, register_rm,
                              register_cp, register_fit, register_serve, register_audit, register_perplexity, register_imatrix, register_config,
                              register_route}) {
    size_t before = app.get_subcommands({}).size();
    CommandRun r = reg(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) runs[subs.back()] = r;
  }
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (auto& [sub, run] : runs) known = known || sub->check_name(argv[1]);
    if (!known) return fail(std::string("unknown command '") + argv[1] + "' (try slim --help)");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }
  for (auto& [sub, run] : runs)
    if (sub->parsed()) return run();
  return fail("no command given (try slim --help)");
}

}  // namespace slim
