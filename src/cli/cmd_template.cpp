// `slim template`: render a chat template with a JSON context, byte-exact.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "chat/template.h"
#include "cli/cli.h"
#include "store/store.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace slim {

namespace {
Result<std::string> read_text(const std::string& path) {
  FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) return Status::error(path + ": cannot open");
  std::string s;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) s.append(buf, n);
  std::fclose(fp);
  return s;
}
}  // namespace

CommandRun register_template(CLI::App& app) {
  struct Opts { std::string model, tmpl, context; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("template", "render a chat template with a JSON context");
  cmd->add_option("-m,--model", o->model, "GGUF whose tokenizer.chat_template to render");
  cmd->add_option("--template", o->tmpl, "a .jinja template file instead of -m");
  cmd->add_option("--context", o->context, "JSON file: messages, add_generation_prompt, bos_token, tools, ...")->required();
  return [o]() {
    if (o->model.empty() == o->tmpl.empty()) return fail("give exactly one of -m FILE or --template FILE.jinja");
    auto ctx_text = read_text(o->context);
    if (!ctx_text) return fail(ctx_text.error());
    auto ctx = nlohmann::ordered_json::parse(*ctx_text, nullptr, false);
    if (ctx.is_discarded() || !ctx.is_object()) return fail(o->context + ": not a JSON object");
    std::string source;
    if (!o->tmpl.empty()) {
      auto t = read_text(o->tmpl);
      if (!t) return fail(t.error());
      source = *t;
    } else {
      auto resolved = resolve_model(o->model);
      if (!resolved) return fail(resolved.error());
      auto f = GgufFile::open(*resolved);
      if (!f) return fail(f.error());
      auto t = (*f)->get_string("tokenizer.chat_template");
      if (!t) return fail(o->model + ": no tokenizer.chat_template in this file");
      source = *t;
      // The model's own special tokens, unless the context gives them.
      if (auto tok = Tokenizer::from_gguf(**f); tok) {
        if (!ctx.contains("bos_token") && (*tok)->bos() >= 0) ctx["bos_token"] = (*tok)->token_text((*tok)->bos());
        if (!ctx.contains("eos_token") && (*tok)->eos() >= 0) ctx["eos_token"] = (*tok)->token_text((*tok)->eos());
      }
    }
    TemplateError err;
    auto out = render_template(source, ctx, &err);
    if (!out) {
      std::fprintf(stderr, "%s\n", err.describe().c_str());
      return 1;
    }
    std::fwrite(out->data(), 1, out->size(), stdout);
    return 0;
  };
}

}  // namespace slim
