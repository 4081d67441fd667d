// The terminal chat loop.
#include "cli/chat_loop.h"

#include <cstdio>
#include <iostream>

#include "chat/template.h"
#include "cli/cli.h"
#include "cli/route_turn.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace slim {

Result<ChatTemplate> model_chat_template(const Engine& e, bool warn) {
  auto src = e.model().file->get_string("tokenizer.chat_template");
  if (!src) {
    if (warn) std::fprintf(stderr, "slim: warning: the model has no chat template; using ChatML\n");
    return ChatTemplate::parse(kChatmlTemplate);
  }
  auto t = ChatTemplate::parse(*src);
  if (!t) return Status::error("the model's chat template does not parse: " + t.error());
  return t;
}

namespace {

// Renders the conversation and tokenizes it; BOS is added only when the
// template did not already write it.
Result<std::vector<int32_t>> render_tokens(const Engine& e, const ChatTemplate& tmpl, const nlohmann::ordered_json& messages) {
  const Tokenizer& tok = e.tokenizer();
  ChatContext c;
  c.messages = messages;
  c.add_generation_prompt = true;
  c.bos_token = tok.bos() >= 0 ? tok.token_text(tok.bos()) : "";
  c.eos_token = tok.eos() >= 0 ? tok.token_text(tok.eos()) : "";
  auto text = tmpl.render(make_chat_context(c));
  if (!text) return Status::error("chat template: " + text.error());
  bool has_bos = !c.bos_token.empty() && text->rfind(c.bos_token, 0) == 0;
  return tok.tokenize(*text, /*add_special=*/!has_bos, /*parse_special=*/true);
}

}  // namespace

int chat_loop(Engine& e, const SamplerParams& sampling, const std::string& system, int n_predict,
              TerminalRouter* router) {
  auto tmpl = model_chat_template(e, true);
  if (!tmpl) return fail(tmpl.error());
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  auto reset = [&]() {
    messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    e.clear(0);
  };
  reset();
  std::fprintf(stderr, "chatting with %s (/clear resets, /exit quits)\n", e.model().file->path().c_str());
  std::string line;
  while (true) {
    std::fprintf(stdout, "> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/clear") {
      reset();
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    // Keep the history within the context: drop the oldest turns (never the
    // system prompt or the new message) until the prompt leaves room to answer.
    const int room = std::max(64, std::min(n_predict > 0 ? n_predict : 256, e.n_ctx() / 4));
    Result<std::vector<int32_t>> prompt = render_tokens(e, *tmpl, messages);
    while (prompt && (int)prompt->size() + room > e.n_ctx()) {
      size_t first = (!messages.empty() && messages[0]["role"] == "system") ? 1 : 0;
      if (messages.size() <= first + 1) break;
      messages.erase(messages.begin() + first);
      prompt = render_tokens(e, *tmpl, messages);
    }
    if (!prompt) return fail(prompt.error());
    if ((int)prompt->size() >= e.n_ctx()) {
      std::fprintf(stderr, "slim: that message does not fit the context (%d tokens); /clear or use a larger -c\n", e.n_ctx());
      messages.erase(messages.end() - 1);
      continue;
    }
    if (router) {
      auto remote = route_turn(*router, e, nlohmann::json::parse(messages.dump()), line, sampling, n_predict, true);
      if (remote) {
        std::printf("\n");
        messages.push_back({{"role", "assistant"}, {"content", *remote}});
        continue;
      }
    }
    GenerateParams gp;
    gp.sampling = sampling;
    gp.n_predict = n_predict > 0 ? n_predict : e.n_ctx() - (int)prompt->size() - 1;
    auto r = generate(e, 0, *prompt, gp, [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::printf("\n");
    if (!r) return fail(r.error());
    messages.push_back({{"role", "assistant"}, {"content", r->text}});
  }
  return 0;
}

}  // namespace slim
