// JSON schema (the subset constrained decoding enforces) from its JSON form,
// and the response_format / format request fields that carry it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "base/status.h"
#include "sample/json_constraint.h"

namespace slim {

// Compiles a schema object. Unsupported keywords that would change validity
// ($ref, anyOf, oneOf, allOf, pattern, ...) are an error naming them, so a
// request never silently gets less than it asked for.
Result<std::shared_ptr<const JsonSchema>> compile_json_schema(const nlohmann::json& schema);

// OpenAI `response_format`: {"type":"text"} → null, {"type":"json_object"},
// {"type":"json_schema","json_schema":{"schema":{...}}}.
Result<std::shared_ptr<const JsonSchema>> schema_from_response_format(const nlohmann::json& rf);
// Ollama `format`: "json" or a schema object ("" / null: none).
Result<std::shared_ptr<const JsonSchema>> schema_from_ollama_format(const nlohmann::json& f);

}  // namespace slim
