// `slim serve`: the HTTP server (OpenAI and Ollama APIs, the chat page).
#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <pthread.h>
#include <thread>

#include "cli/cli.h"
#include "cli/route_options.h"
#include "model/model.h"
#include "route/router.h"
#include "server/server.h"

namespace slim {

CommandRun register_serve(CLI::App& app) {
  struct Opts {
    ServerOptions s;
    std::string keep_alive = "5m";
    RouteFlags route;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("serve", "serve models over HTTP: OpenAI and Ollama APIs, and a chat page at /");
  cmd->add_option("--host", o->s.host, "address to listen on (default: loopback only)");
  cmd->add_option("--port", o->s.port, "port (0: any free port, printed at start)");
  cmd->add_option("-m,--model", o->s.models, "model file or store name (repeat for several; the first is the default)");
  cmd->add_option("MODEL", o->s.models, "models, instead of --model");
  cmd->add_option("--parallel", o->s.parallel, "requests a model runs at once (slots)");
  cmd->add_option("-c,--ctx-size", o->s.n_ctx, "context per slot in tokens (default: the model's, at most 4096)");
  cmd->add_option("-t,--threads", o->s.n_threads, "threads (default: physical cores)");
  cmd->add_option("-b,--batch-size", o->s.n_batch, "tokens per forward pass");
  cmd->add_option("--cache-type", o->s.cache_type, "KV cache type: f16, f32 or q8_0");
  cmd->add_option("--api-key", o->s.api_key, "require Authorization: Bearer KEY on API routes");
  cmd->add_option("--keep-alive", o->keep_alive, "idle time before a model unloads (5m, 1h, 0, -1: never)");
  cmd->add_option("--cors", o->s.cors, "Access-Control-Allow-Origin value (e.g. * or http://localhost:3000)");
  cmd->add_option("--max-queue", o->s.max_queue, "waiting requests a model before 503");
  add_route_flags(*cmd, o->route);
  return [o]() {
    auto ka = parse_duration_s(o->keep_alive);
    if (!ka) return fail("--keep-alive: " + ka.error());
    o->s.keep_alive_s = *ka;
    if (o->s.parallel < 1) return fail(format("bad --parallel %d", o->s.parallel));
    if (o->s.n_ctx < 0) return fail(format("bad context size %d", o->s.n_ctx));
    if (o->s.port < 0 || o->s.port > 65535) return fail(format("bad port %d", o->s.port));
    if (o->s.max_queue < 0) return fail(format("bad --max-queue %d", o->s.max_queue));
    if (auto ct = parse_cache_type(o->s.cache_type); !ct) return fail(ct.error());  // now, not at the first request
    auto cfg = resolve_route_config(o->route);
    if (!cfg) return fail(cfg.error());
    if (o->s.models.empty()) o->s.models = cfg->local_models;
    for (const auto& r : cfg->remotes)
      for (const auto& m : o->s.models)
        if (m == r.name || std::filesystem::path(m).stem().string() == r.name)
          return fail("the remote endpoint '" + r.name + "' has the name of a local model (" + m + ")");
    auto router = Router::create(*cfg);
    if (!router) return fail(router.error());
    o->s.router = *router;
    // SIGINT/SIGTERM are taken by a waiting thread (blocked everywhere else,
    // so the server's threads inherit the mask); a vanished client must not
    // kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    Server server(o->s);
    if (auto st = server.bind(); !st) return fail(st.message());
    std::fprintf(stderr, "slim: serving on http://%s:%d (%zu model%s, %d slot%s each)\n", o->s.host.c_str(), server.port(),
                 o->s.models.size(), o->s.models.size() == 1 ? "" : "s", o->s.parallel, o->s.parallel == 1 ? "" : "s");
    for (const auto& r : (*router)->config.remotes)
      std::fprintf(stderr, "slim: remote endpoint '%s' (%s, model %s), policy %s\n", r.name.c_str(), r.base_url.c_str(),
                   r.model.c_str(), policy_name((*router)->config.policy));
    std::fflush(stderr);
    std::thread waiter([&server, set]() {
      int sig = 0;
      sigwait(&set, &sig);
      server.stop();
    });
    auto st = server.run();
    pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter when the server stopped on its own
    waiter.join();
    if (!st) return fail(st.message());
    return 0;
  };
}

}  // namespace slim
