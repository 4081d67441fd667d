// Public chat-template API (see template.h): turns internal errors into
// TemplateError/Status, builds the standard context, and holds the ChatML
// fallback template.
#include "chat/template.h"

#include <exception>

#include "chat/interp.h"
#include "chat/lexer.h"
#include "chat/parser.h"
#include "chat/py_string.h"

namespace slim {
namespace {

TemplateError to_template_error(const jinja::Error& e, const std::string& source) {
  TemplateError out;
  out.message = e.message;
  switch (e.kind) {
    case jinja::ErrorKind::syntax: out.kind = TemplateError::Kind::syntax; break;
    case jinja::ErrorKind::runtime: out.kind = TemplateError::Kind::runtime; break;
    case jinja::ErrorKind::raised: out.kind = TemplateError::Kind::raised; return out;
  }
  if (e.offset <= source.size()) {
    size_t line_start = 0;
    out.line = 1;
    for (size_t i = 0; i < e.offset; ++i) {
      if (source[i] == '\n') {
        ++out.line;
        line_start = i + 1;
      }
    }
    out.column = static_cast<int>(jinja::code_point_count(std::string_view(source).substr(line_start, e.offset - line_start))) + 1;
  }
  return out;
}

Status fail_with(TemplateError err, TemplateError* out) {
  Status st = Status::error(err.describe());
  if (out) *out = std::move(err);
  return st;
}

TemplateError internal_error(const char* what) {
  TemplateError err;
  err.kind = TemplateError::Kind::runtime;
  err.message = std::string("internal error: ") + what;
  return err;
}

}  // namespace

std::string TemplateError::describe() const {
  if (kind == Kind::raised || line == 0) return message;
  return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + message;
}

Result<ChatTemplate> ChatTemplate::parse(const std::string& source, TemplateError* error) {
  std::string normalized = jinja::normalize_source(source);
  try {
    ChatTemplate t;
    t.program_ = jinja::parse_program(normalized);
    t.source_ = source;
    return t;
  } catch (const jinja::Error& e) {
    return fail_with(to_template_error(e, normalized), error);
  } catch (const std::exception& e) {
    return fail_with(internal_error(e.what()), error);
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context, TemplateError* error) const {
  if (!context.is_object()) {
    TemplateError err;
    err.message = "the template context must be a JSON object";
    return fail_with(std::move(err), error);
  }
  try {
    jinja::Interp interp(*program_, jinja::from_json(context));
    return interp.render();
  } catch (const jinja::Error& e) {
    return fail_with(to_template_error(e, program_->source), error);
  } catch (const std::exception& e) {
    return fail_with(internal_error(e.what()), error);
  }
}

Result<std::string> render_template(const std::string& source, const nlohmann::ordered_json& context,
                                    TemplateError* error) {
  auto t = ChatTemplate::parse(source, error);
  if (!t.ok()) return t.status();
  return t->render(context, error);
}

Result<std::string> render_template_json(const std::string& source, const std::string& context_json,
                                         TemplateError* error) {
  auto context = nlohmann::ordered_json::parse(context_json, nullptr, false);
  if (context.is_discarded()) {
    TemplateError err;
    err.message = "the template context is not valid JSON";
    return fail_with(std::move(err), error);
  }
  return render_template(source, context, error);
}

nlohmann::ordered_json make_chat_context(const ChatContext& c) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = c.messages;
  if (!c.tools.is_null()) ctx["tools"] = c.tools;
  ctx["add_generation_prompt"] = c.add_generation_prompt;
  ctx["bos_token"] = c.bos_token;
  ctx["eos_token"] = c.eos_token;
  if (c.extra.is_object())
    for (auto it = c.extra.begin(); it != c.extra.end(); ++it) ctx[it.key()] = it.value();
  return ctx;
}

// Content that is not a string (null for tool calls, a list of parts)
// contributes its text parts only, so the fallback never fails.
const char* const kChatmlTemplate =
    "{%- for message in messages -%}\n"
    "{%- set content = message['content'] -%}\n"
    "{%- if content is not string -%}\n"
    "{%- set content = content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('')"
    " if content is iterable and content is not mapping else '' -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_start|>' ~ message['role'] ~ '\\n' ~ content ~ '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

}  // namespace slim
