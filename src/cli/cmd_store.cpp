// The model store commands: `slim pull`, `import`, `list`, `show`, `rm`, `cp`.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "cli/cli.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "store/planner.h"
#include "store/pull.h"
#include "store/store.h"

namespace slim {

namespace {

std::string params_label(uint64_t n) {
  if (n >= 1000000000ull) return format("%.1fB", n / 1e9);
  if (n >= 1000000ull) return format("%.0fM", n / 1e6);
  if (n >= 1000ull) return format("%.0fK", n / 1e3);
  return std::to_string(n);
}

std::string age_label(std::time_t t) {
  if (t <= 0) return "-";
  long d = (long)(std::time(nullptr) - t);
  if (d < 60) return "just now";
  if (d < 3600) return format("%ld minute%s ago", d / 60, d / 60 == 1 ? "" : "s");
  if (d < 86400) return format("%ld hour%s ago", d / 3600, d / 3600 == 1 ? "" : "s");
  if (d < 86400 * 60) return format("%ld day%s ago", d / 86400, d / 86400 == 1 ? "" : "s");
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::localtime(&t));
  return buf;
}

}  // namespace

CommandRun register_pull(CLI::App& app) {
  struct Opts { std::string ref, name, sha256; bool quiet = false; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("pull", "download a model into the store (hf.co/OWNER/REPO[:QUANT], hf.co/OWNER/REPO/FILE.gguf, or a URL)");
  cmd->add_option("REF", o->ref, "what to pull")->required();
  cmd->add_option("--name", o->name, "store it as NAME[:TAG] (default: from the reference)");
  cmd->add_option("--sha256", o->sha256, "expected sha256 of the file (default: the server's X-Linked-Etag/ETag)");
  cmd->add_flag("-q,--quiet", o->quiet, "no progress or status lines");
  return [o]() {
    auto store = Store::open();
    if (!store) return fail(store.error());
    PullOptions po;
    po.name = o->name;
    po.sha256 = o->sha256;
    po.quiet = o->quiet;
    po.progress = !o->quiet && ::isatty(2);
    if (const char* r = std::getenv("SLIM_PULL_RETRIES"); r && *r) po.retries = std::max(0, std::atoi(r));
    if (const char* b = std::getenv("SLIM_PULL_BACKOFF_MS"); b && *b) po.backoff_ms = std::max(0, std::atoi(b));
    auto m = pull_model(*store, o->ref, po);
    if (!m) return fail(m.error());
    std::printf("%s  %s  %s  sha256:%s\n", m->full_name().c_str(), human_size((double)m->size).c_str(),
                m->info.quant.c_str(), m->digest.c_str());
    return 0;
  };
}

CommandRun register_import(CLI::App& app) {
  struct Opts { std::string file, name; bool link = false; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("import", "add a local GGUF file to the store");
  cmd->add_option("FILE", o->file, "GGUF file")->required();
  cmd->add_option("NAME", o->name, "NAME[:TAG] (default: the file name)");
  cmd->add_flag("--link", o->link, "hard-link instead of copying when on the same file system");
  return [o]() {
    auto store = Store::open();
    if (!store) return fail(store.error());
    auto m = store->import_file(o->file, o->name, o->link);
    if (!m) return fail(m.error());
    std::printf("%s  %s  %s  sha256:%s\n", m->full_name().c_str(), human_size((double)m->size).c_str(),
                m->info.quant.c_str(), m->digest.c_str());
    return 0;
  };
}

CommandRun register_list(CLI::App& app) {
  app.add_subcommand("list", "list the models in the store")->alias("ls");
  return []() {
    auto store = Store::open();
    if (!store) return fail(store.error());
    auto all = store->list();
    if (!all) return fail(all.error());
    size_t w = 4;
    for (const auto& m : *all) w = std::max(w, m.full_name().size());
    std::printf("%-*s  %9s  %7s  %-8s  %s\n", (int)w, "NAME", "SIZE", "PARAMS", "QUANT", "MODIFIED");
    for (const auto& m : *all)
      std::printf("%-*s  %9s  %7s  %-8s  %s\n", (int)w, m.full_name().c_str(), human_size((double)m.size).c_str(),
                  params_label(m.info.parameters).c_str(), m.info.quant.c_str(), age_label(m.modified).c_str());
    return 0;
  };
}

CommandRun register_show(CLI::App& app) {
  struct Opts { std::string name; bool full_template = false; };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("show", "show a model: metadata, hyperparameters, template, license, memory needs");
  cmd->add_option("MODEL", o->name, "store name or GGUF file")->required();
  cmd->add_flag("--template", o->full_template, "print the whole chat template");
  return [o]() {
    auto path = resolve_model(o->name);
    if (!path) return fail(path.error());
    Manifest man;
    bool in_store = false;
    if (*path != o->name) {
      auto store = Store::open();
      if (!store) return fail(store.error());
      auto m = store->get(o->name);
      if (!m) return fail(m.error());
      man = *m;
      in_store = true;
    }
    auto info = describe_gguf(*path);
    if (!info) return fail(info.error());
    auto fr = GgufFile::open(*path);
    if (!fr) return fail(fr.error());
    if (in_store) {
      std::printf("name:          %s\n", man.full_name().c_str());
      std::printf("source:        %s\n", man.source.c_str());
      std::printf("digest:        sha256:%s\n", man.digest.c_str());
    }
    std::printf("file:          %s (%s)\n", path->c_str(), human_size((double)(*fr)->file_size()).c_str());
    if (!info->general_name.empty()) std::printf("model name:    %s\n", info->general_name.c_str());
    std::printf("architecture:  %s\n", info->architecture.c_str());
    std::printf("parameters:    %s (%llu)\n", params_label(info->parameters).c_str(), (unsigned long long)info->parameters);
    std::printf("quant:         %s\n", info->quant.c_str());
    std::printf("context:       %lld (trained)\n", (long long)info->context_length);
    std::printf("license:       %s\n", info->license.empty() ? "(not in the metadata)" : info->license.c_str());
    auto m = load_model(*fr);
    if (!m) {
      std::printf("runs:          no: %s\n", m.error().c_str());
    } else {
      const HParams& hp = (*m)->hp;
      std::printf("hyperparameters: %d layers, embedding %d, %d heads (kv %d, dim %d), feed forward %d, vocabulary %d\n",
                  hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff, hp.n_vocab);
      PlanParams pp;
      pp.n_ctx = std::min(hp.n_ctx_train > 0 ? hp.n_ctx_train : 4096, 4096);
      MemoryPlan plan = plan_memory(**m, pp);
      std::printf("memory:        %s at -c %d (weights %s, KV cache %s, compute %s, overhead %s); slim fit for more\n",
                  human_size((double)plan.total()).c_str(), pp.n_ctx, human_size((double)plan.weights).c_str(),
                  human_size((double)plan.kv_cache).c_str(), human_size((double)plan.compute).c_str(),
                  human_size((double)plan.overhead).c_str());
    }
    auto tmpl = (*fr)->get_string("tokenizer.chat_template");
    if (!tmpl) {
      std::printf("chat template: none\n");
    } else {
      std::string t = *tmpl;
      bool cut = false;
      if (!o->full_template && t.size() > 600) { t = t.substr(0, 600); cut = true; }
      std::printf("chat template:\n%s%s\n", t.c_str(), cut ? "\n(cut at 600 characters; --template prints it all)" : "");
    }
    return 0;
  };
}

CommandRun register_rm(CLI::App& app) {
  auto names = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("rm", "remove models from the store (a file goes when no name uses it)");
  cmd->add_option("NAME", *names, "NAME[:TAG]")->required();
  return [names]() {
    auto store = Store::open();
    if (!store) return fail(store.error());
    for (const auto& n : *names) {
      if (auto st = store->remove(n); !st) return fail(st.message());
      std::printf("removed %s\n", n.c_str());
    }
    return 0;
  };
}

CommandRun register_cp(CLI::App& app) {
  auto src = std::make_shared<std::string>(), dst = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("cp", "give a stored model another name (the file is shared)");
  cmd->add_option("SRC", *src, "NAME[:TAG]")->required();
  cmd->add_option("DST", *dst, "NAME[:TAG]")->required();
  return [src, dst]() {
    auto store = Store::open();
    if (!store) return fail(store.error());
    if (auto st = store->copy(*src, *dst); !st) return fail(st.message());
    std::printf("copied %s to %s\n", src->c_str(), dst->c_str());
    return 0;
  };
}

}  // namespace slim
