// Interactive chat on a terminal: the conversation goes through the model's
// chat template (ChatML when the GGUF has none), history is kept within the
// context, /clear and /exit are commands.
#pragma once

#include <string>

#include "engine/engine.h"

namespace slim {

class ChatTemplate;

// The model's template, or ChatML with a one-line warning on stderr.
Result<ChatTemplate> model_chat_template(const Engine& e, bool warn);

struct TerminalRouter;
// With `router`, each turn is routed (route_turn.h); a remote answer joins
// the history like a local one.
int chat_loop(Engine& e, const SamplerParams& sampling, const std::string& system, int n_predict,
              TerminalRouter* router = nullptr);

}  // namespace slim
