// `slim serve`: the HTTP server. OpenAI-compatible routes under /v1, Ollama's
// under /api, /health, /metrics, and the embedded chat page at /. With a
// router, the model `auto` is routed per request between the local model and
// a remote endpoint, and remote endpoints can be named directly (hybrid.cpp).
//
// Models (paths or store names) load on first use, each into a Scheduler with
// `parallel` slots, and unload after `keep_alive` seconds idle. Every JSON
// response of a generation carries "x_slim": {"backend": "local", "model": NAME}
// and every response the header `X-Slim-Backend: local`.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace slim {

struct Router;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (see Server::port)
  std::vector<std::string> models;  // paths or store names; the first is the default
  int parallel = 4;                 // slots a model
  int n_ctx = 0;                    // per slot; 0: the model's, at most 4096
  int n_threads = 0;
  int n_batch = 512;
  std::string cache_type = "f16";
  std::string api_key;              // non-empty: Authorization: Bearer KEY on API routes
  double keep_alive_s = 300;        // idle seconds before a model unloads (< 0: never)
  std::string cors;                 // Access-Control-Allow-Origin value ("" : no CORS headers)
  int max_queue = 64;               // waiting requests a model; more → 503
  size_t max_body = 8u << 20;       // request bytes; more → 413
  int http_threads = 128;           // connection handlers
  std::string store_root;           // "" : the default store
  // Hybrid routing: the model `auto` and the remote endpoints of the router's
  // config (null: local models only). Escalations are logged to audit_log.
  std::shared_ptr<const Router> router;
  std::string audit_log;            // "" : the config's, else $SLIM_HOME/audit.jsonl
};

// Parses "5m", "300", "1h30m", "0", "-1" (Ollama's keep_alive) into seconds.
Result<double> parse_duration_s(const std::string& s);

class Server {
 public:
  explicit Server(ServerOptions o);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket (the port is known afterwards).
  Status bind();
  int port() const;
  // Serves until stop() (from another thread or a signal handler's thread).
  Status run();
  void stop();

  struct Impl;  // opaque; named here so the server's own files can pass it around

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace slim
