// Chat templates: the Jinja2 language of Hugging Face chat templates,
// rendered byte for byte like Python jinja2 3.1 in transformers'
// apply_chat_template environment (ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and loopcontrols; json.dumps `tojson`;
// raise_exception; strftime_now pinned to 26 July 2024).
//
// Parse once, render many times; a parsed template is immutable and may be
// rendered from several threads at once.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"

namespace slim {

namespace jinja {
struct Program;
}

// Why parsing or rendering failed. A template's own raise_exception(msg)
// is `raised` and carries exactly msg (no position); syntax and runtime
// errors carry the 1-based line and column of the offending construct.
struct TemplateError {
  enum class Kind { syntax, runtime, raised };
  Kind kind = Kind::runtime;
  std::string message;
  int line = 0;    // 0 when unknown (always for raised errors)
  int column = 0;  // in code points
  // "line 3, column 12: unexpected '}'" or, for raised errors, the message alone.
  std::string describe() const;
};

class ChatTemplate {
 public:
  // On failure the Status message is TemplateError::describe(); pass
  // `error` to also get the structured error.
  static Result<ChatTemplate> parse(const std::string& source, TemplateError* error = nullptr);

  // Every key of `context` (an object) becomes a top-level variable; a
  // variable not in it is undefined. JSON key order is kept.
  Result<std::string> render(const nlohmann::ordered_json& context, TemplateError* error = nullptr) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate() = default;
  std::shared_ptr<const jinja::Program> program_;
  std::string source_;
};

// Parse and render in one step.
Result<std::string> render_template(const std::string& source, const nlohmann::ordered_json& context,
                                    TemplateError* error = nullptr);

// For `slim template`: `context_json` is JSON text holding an object; the
// result is the exact rendering (write it to stdout unchanged).
Result<std::string> render_template_json(const std::string& source, const std::string& context_json,
                                         TemplateError* error = nullptr);

// The variables transformers passes to a chat template.
struct ChatContext {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  nlohmann::ordered_json tools;                                       // null: `tools` stays undefined
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // more variables; override the above
};
nlohmann::ordered_json make_chat_context(const ChatContext& context);

// For models whose GGUF has no chat template: ChatML,
// `<|im_start|>{role}\n{content}<|im_end|>\n` per message and
// `<|im_start|>assistant\n` as the generation prompt.
extern const char* const kChatmlTemplate;

}  // namespace slim
