// `slim run`: generate text from a prompt (streamed, or one JSON object with
// --json), or chat interactively on a terminal; `slim logits`: write the
// prompt's logits in the layout of ../shared/golden.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli/chat_loop.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "cli/route_options.h"
#include "cli/route_turn.h"
#include "tokenizer/tokenizer.h"

namespace slim {

namespace {

struct RunOptions {
  ModelOptions model;
  std::string prompt;
  bool has_prompt = false;
  int n_predict = -1;
  SamplerParams sampling;
  bool json = false;
  bool ignore_eos = false;
  std::string system;
  std::string route;  // "auto": the hybrid router decides each prompt
  RouteFlags route_flags;
};

nlohmann::json result_json(const GenerateResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"tokens", r.tokens},
          {"text", r.text},
          {"stop_reason", r.stop_reason},
          {"timings",
           {{"load_ms", r.timings.load_ms},
            {"prefill_ms", r.timings.prefill_ms},
            {"decode_ms", r.timings.decode_ms},
            {"prefill_tps", r.timings.prefill_tps()},
            {"decode_tps", r.timings.decode_tps()}}}};
}

int run_prompt(Engine& e, const RunOptions& o, TerminalRouter* tr) {
  if (tr) {
    nlohmann::json messages = nlohmann::json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", o.prompt}});
    auto remote = route_turn(*tr, e, messages, o.prompt, o.sampling, o.n_predict, !o.json);
    if (remote) {
      if (o.json) std::printf("%s\n", nlohmann::json({{"text", *remote}, {"backend", "remote"}, {"route", tr->last_route}}).dump().c_str());
      else std::printf("\n");
      return 0;
    }
  }
  const Tokenizer& tok = e.tokenizer();
  std::vector<int32_t> prompt = tok.tokenize(o.prompt, /*add_special=*/true, /*parse_special=*/true);
  if (prompt.empty()) {
    // `-p ""` on a vocabulary without BOS: start from EOS as the separator, as llama.cpp does
    prompt.push_back(tok.bos() >= 0 ? tok.bos() : tok.eos());
  }
  GenerateParams gp;
  gp.n_predict = o.n_predict;
  gp.sampling = o.sampling;
  gp.ignore_eos = o.ignore_eos;
  TextCallback stream = nullptr;
  if (!o.json) {
    stream = [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  auto r = generate(e, 0, prompt, gp, stream);
  if (!r) return fail(r.error());
  if (o.json) {
    nlohmann::json j = result_json(*r);
    if (tr) {
      j["backend"] = "local";
      j["route"] = tr->last_route;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("\n");
    std::fflush(stdout);  // the stats line must follow the text when both go to one terminal or pipe
    std::fprintf(stderr, "[prefill %d tokens %.1f tok/s, decode %d tokens %.1f tok/s]\n", r->timings.n_prefill,
                 r->timings.prefill_tps(), (int)r->tokens.size(), r->timings.decode_tps());
  }
  return 0;
}

}  // namespace

CommandRun register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "generate text from a prompt, or chat on a terminal");
  add_model_options(*cmd, o->model);
  cmd->add_option("-p,--prompt", o->prompt, "prompt (\"\" generates from BOS alone)");
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until end of text or full context)");
  cmd->add_option("--temp", o->sampling.temperature, "temperature (0: greedy)");
  cmd->add_option("--top-k", o->sampling.top_k, "top-k (0: off)");
  cmd->add_option("--top-p", o->sampling.top_p, "top-p (1: off)");
  cmd->add_option("--min-p", o->sampling.min_p, "min-p (0: off)");
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "repetition penalty (1: off)");
  cmd->add_option("--repeat-last-n", o->sampling.penalty_last_n, "tokens the penalties look back on");
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "presence penalty");
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "frequency penalty");
  cmd->add_option("--seed", o->sampling.seed, "random seed (same seed and settings, same output)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "keep generating after end-of-text");
  cmd->add_flag("--json", o->json, "print one JSON object with tokens, text and timings");
  cmd->add_option("--system", o->system, "system prompt for chat");
  cmd->add_option("--route", o->route, "auto: the hybrid router sends what the local model cannot do to the remote endpoint")
      ->check(CLI::IsMember({"auto", "local"}));
  add_route_flags(*cmd, o->route_flags);
  return [o, cmd]() {
    o->has_prompt = cmd->count("-p") > 0;
    if (o->n_predict < -1) return fail(format("bad token count %d", o->n_predict));
    std::unique_ptr<TerminalRouter> tr;
    if (o->route == "auto") {
      auto cfg = resolve_route_config(o->route_flags);
      if (!cfg) return fail(cfg.error());
      if (o->model.model.empty() && !cfg->local_models.empty()) o->model.model = cfg->local_models.front();
      auto t = make_terminal_router(*cfg);
      if (!t) return fail(t.error());
      tr = std::move(*t);
    }
    auto e = load_engine(o->model);
    if (!e) return fail(e.error());
    if (!o->has_prompt && isatty(0)) return chat_loop(**e, o->sampling, o->system, o->n_predict, tr.get());
    RunOptions ro = *o;
    if (!o->has_prompt) {  // prompt from a pipe
      std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
      ro.prompt = all;
    }
    return run_prompt(**e, ro, tr.get());
  };
}

CommandRun register_logits(CLI::App& app) {
  struct LogitsOptions {
    ModelOptions model;
    std::string prompt, tokens, out, positions = "all";
  };
  auto o = std::make_shared<LogitsOptions>();
  o->model.cache_type = "f32";  // a measurement tool: keep the cache exact by default
  CLI::App* cmd = app.add_subcommand("logits", "write float32 logits [n_positions][n_vocab] of a prompt");
  add_model_options(*cmd, o->model);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text (BOS added, special tokens parsed)");
  cmd->add_option("--tokens", o->tokens, "token ids, comma-separated, instead of -p");
  cmd->add_option("--out", o->out, "output file")->required();
  cmd->add_option("--positions", o->positions, "all or last")->check(CLI::IsMember({"all", "last"}));
  return [o, cmd]() {
    bool has_p = cmd->count("-p") > 0, has_t = cmd->count("--tokens") > 0;
    if (has_p == has_t) return fail("give exactly one of -p PROMPT or --tokens IDS");
    auto eng = load_engine(o->model);
    if (!eng) return fail(eng.error());
    Engine& e = **eng;
    std::vector<int32_t> ids;
    if (has_t) {
      std::string err;
      ids = parse_id_list(o->tokens, &err);
      if (ids.empty()) return fail(err);
    } else {
      ids = e.tokenizer().tokenize(o->prompt, true, true);
    }
    const int n_vocab = e.model().hp.n_vocab;
    if (ids.empty()) return fail("the prompt has no tokens");
    if ((int)ids.size() > e.n_ctx())
      return fail(format("the prompt is %d tokens but the context holds %d (use -c to enlarge it)", (int)ids.size(), e.n_ctx()));
    for (int32_t id : ids)
      if (id >= n_vocab) return fail(format("token id %d out of range (vocabulary %d)", id, n_vocab));
    const bool all = o->positions == "all";
    Batch b;
    std::vector<float> logits;
    const int n_batch = e.params().n_batch;
    for (size_t i = 0; i < ids.size(); i += n_batch) {
      b.clear();
      size_t end = std::min(ids.size(), i + n_batch);
      for (size_t j = i; j < end; ++j) b.add(ids[j], (int)j, 0, all || j + 1 == ids.size());
      if (auto st = e.decode(b, logits); !st) return fail(st.message());
    }
    std::ofstream f(o->out + ".tmp", std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), (std::streamsize)(logits.size() * sizeof(float)));
    f.close();
    if (!f || std::rename((o->out + ".tmp").c_str(), o->out.c_str()) != 0)
      return fail("cannot write " + o->out);
    std::fprintf(stderr, "wrote %zu positions x %d logits to %s\n", logits.size() / n_vocab, n_vocab, o->out.c_str());
    return 0;
  };
}

}  // namespace slim
