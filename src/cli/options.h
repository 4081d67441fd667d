// Options shared by the commands that load a model (run, logits, bench, serve).
#pragma once

#include <string>

#include "engine/engine.h"

namespace CLI { class App; }

namespace slim {

struct ModelOptions {
  std::string model;          // -m FILE or the positional MODEL
  int n_ctx = 0;              // 0: min(trained context, kDefaultCtx)
  int n_threads = 0;
  int n_batch = 512;
  std::string cache_type = "f16";
};

inline constexpr int kDefaultCtx = 4096;

void add_model_options(CLI::App& cmd, ModelOptions& o, bool with_ctx = true);
// Resolves the model path and loads an engine; the error is one line.
Result<std::unique_ptr<Engine>> load_engine(const ModelOptions& o);

}  // namespace slim
