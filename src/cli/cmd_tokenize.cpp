// `slim tokenize` and `slim detokenize`: the model's tokenizer on the command
// line, including a JSON-lines batch mode. Vocab-only GGUF files work.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"

namespace slim {

CommandRun register_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, prompt, file;
    bool ids = false, pieces = false, json = false, jsonl = false, no_bos = false, parse_special = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "text to token ids with a model's tokenizer");
  cmd->add_option("-m,--model", o->model, "model or vocab-only GGUF")->required();
  cmd->add_option("-p,--prompt", o->prompt, "text");
  cmd->add_option("-f,--file", o->file, "read the text from a file");
  cmd->add_flag("--ids", o->ids, "print only the ids, as [1, 2, 3] (default)");
  cmd->add_flag("--pieces", o->pieces, "print one id and its piece per line");
  cmd->add_flag("--json", o->json, "print a JSON object with ids and pieces");
  cmd->add_flag("--jsonl", o->jsonl, "batch: read one JSON string per line on stdin, write one JSON array of ids per line");
  cmd->add_flag("--no-bos", o->no_bos, "do not add BOS/EOS");
  cmd->add_flag("--parse-special", o->parse_special, "match the text of control tokens");
  return [o, cmd]() {
    auto resolved = resolve_model(o->model);
    if (!resolved) return fail(resolved.error());
    auto tr = Tokenizer::from_file(*resolved);
    if (!tr) return fail(tr.error());
    const Tokenizer& tok = **tr;
    const bool add_special = !o->no_bos;
    if (o->jsonl) {
      std::string line;
      int lineno = 0;
      while (std::getline(std::cin, line)) {
        ++lineno;
        if (line.empty()) continue;
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_string()) return fail(format("line %d of stdin is not a JSON string", lineno));
        nlohmann::json out = tok.tokenize(j.get<std::string>(), add_special, o->parse_special);
        std::printf("%s\n", out.dump().c_str());
      }
      return 0;
    }
    bool has_p = cmd->count("-p") > 0, has_f = cmd->count("-f") > 0;
    if (has_p == has_f) return fail("give exactly one of -p TEXT or -f FILE");
    std::string text = o->prompt;
    if (has_f) {
      FILE* fp = std::fopen(o->file.c_str(), "rb");
      if (!fp) return fail(o->file + ": cannot open");
      text.clear();
      char buf[65536];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) text.append(buf, n);
      std::fclose(fp);
    }
    std::vector<int32_t> ids = tok.tokenize(text, add_special, o->parse_special);
    if (o->json) {
      nlohmann::json pieces = nlohmann::json::array();
      for (int32_t id : ids) pieces.push_back(tok.token_text(id));
      nlohmann::json out = {{"ids", ids}, {"pieces", pieces}, {"n_tokens", ids.size()}};
      std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else if (o->pieces) {
      for (int32_t id : ids) {
        nlohmann::json piece = tok.token_text(id);
        std::printf("%6d -> %s\n", id, piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
    } else {
      std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    }
    return 0;
  };
}

CommandRun register_detokenize(CLI::App& app) {
  struct Opts { std::string model, ids; bool remove_special = false; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("detokenize", "token ids to text");
  cmd->add_option("-m,--model", o->model, "model or vocab-only GGUF")->required();
  cmd->add_option("--ids", o->ids, "comma-separated token ids")->required();
  cmd->add_flag("--remove-special", o->remove_special, "drop control tokens");
  return [o]() {
    auto resolved = resolve_model(o->model);
    if (!resolved) return fail(resolved.error());
    auto tr = Tokenizer::from_file(*resolved);
    if (!tr) return fail(tr.error());
    std::string err;
    std::vector<int32_t> ids = parse_id_list(o->ids, &err);
    if (ids.empty()) return fail(err);
    for (int32_t id : ids)
      if (id >= (*tr)->n_vocab()) return fail(format("token id %d out of range (vocabulary %d)", id, (*tr)->n_vocab()));
    std::string text = (*tr)->detokenize(ids, o->remove_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  };
}

}  // namespace slim
