// JSON schema compilation for constrained decoding.
#include "server/json_schema.h"

namespace slim {

namespace {

using nlohmann::json;

Status add_node(const json& s, JsonSchema& out, int index, int depth) {
  if (depth > 32) return Status::error("the schema nests too deeply");
  if (s.is_boolean()) {  // true: anything; false is not satisfiable
    if (!s.get<bool>()) return Status::error("a false schema cannot be satisfied");
    return Status();
  }
  if (!s.is_object()) return Status::error("a schema must be an object");
  for (const char* k : {"$ref", "anyOf", "oneOf", "allOf", "not", "pattern", "patternProperties", "if", "const",
                        "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "format", "prefixItems"})
    if (s.contains(k)) return Status::error(std::string("the schema keyword '") + k + "' is not supported");
  JsonSchemaNode n;
  if (s.contains("type")) {
    auto type_bit = [](const json& t) -> int {
      if (!t.is_string()) return -1;
      const std::string v = t.get<std::string>();
      if (v == "object") return JsonSchemaNode::Object;
      if (v == "array") return JsonSchemaNode::Array;
      if (v == "string") return JsonSchemaNode::String;
      if (v == "number") return JsonSchemaNode::Number;
      if (v == "integer") return JsonSchemaNode::Integer;
      if (v == "boolean") return JsonSchemaNode::Boolean;
      if (v == "null") return JsonSchemaNode::Null;
      return -1;
    };
    n.types = 0;
    const json& t = s["type"];
    for (const json& one : t.is_array() ? t : json::array({t})) {
      int bit = type_bit(one);
      if (bit < 0) return Status::error("unknown schema type " + one.dump());
      n.types |= (uint8_t)bit;
    }
    if (n.types == 0) return Status::error("an empty schema type list");
  }
  if (s.contains("enum")) {
    if (!s["enum"].is_array() || s["enum"].empty()) return Status::error("'enum' must be a non-empty array");
    for (const auto& v : s["enum"]) n.enum_values.push_back(v.dump());
  }
  out.nodes[index] = n;
  if (s.contains("properties")) {
    if (!s["properties"].is_object()) return Status::error("'properties' must be an object");
    if (s["properties"].size() > 64) return Status::error("at most 64 properties are supported");
    out.nodes[index].additional_properties = false;
    for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
      int child = (int)out.nodes.size();
      out.nodes.emplace_back();
      out.nodes[index].properties.emplace_back(it.key(), child);
      if (auto st = add_node(it.value(), out, child, depth + 1); !st) return st;
    }
  }
  if (s.contains("additionalProperties")) {
    const json& a = s["additionalProperties"];
    if (!a.is_boolean()) return Status::error("'additionalProperties' must be a boolean here");
    out.nodes[index].additional_properties = a.get<bool>();
  }
  if (s.contains("required")) {
    if (!s["required"].is_array()) return Status::error("'required' must be an array");
    for (const auto& r : s["required"]) {
      if (!r.is_string()) return Status::error("'required' must list strings");
      bool known = false;
      for (auto& p : out.nodes[index].properties) known = known || p.first == r.get<std::string>();
      if (!known) return Status::error("required property '" + r.get<std::string>() + "' is not in 'properties'");
      out.nodes[index].required.push_back(r.get<std::string>());
    }
  }
  if (s.contains("items")) {
    int child = (int)out.nodes.size();
    out.nodes.emplace_back();
    out.nodes[index].items = child;
    if (auto st = add_node(s["items"], out, child, depth + 1); !st) return st;
  }
  return Status();
}

}  // namespace

Result<std::shared_ptr<const JsonSchema>> compile_json_schema(const nlohmann::json& schema) {
  JsonSchema s;
  s.nodes.emplace_back();
  if (auto st = add_node(schema, s, 0, 0); !st) return Status::error("json schema: " + st.message());
  return std::shared_ptr<const JsonSchema>(std::make_shared<JsonSchema>(std::move(s)));
}

Result<std::shared_ptr<const JsonSchema>> schema_from_response_format(const nlohmann::json& rf) {
  if (rf.is_null()) return std::shared_ptr<const JsonSchema>();
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    return Status::error("'response_format' must be an object with a string 'type'");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return std::shared_ptr<const JsonSchema>();
  if (type == "json_object") return std::shared_ptr<const JsonSchema>(std::make_shared<JsonSchema>(JsonSchema::any_object()));
  if (type == "json_schema") {
    if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
      return Status::error("'response_format.json_schema' must be an object");
    const auto& js = rf["json_schema"];
    if (!js.contains("schema")) return std::shared_ptr<const JsonSchema>(std::make_shared<JsonSchema>(JsonSchema::any_value()));
    return compile_json_schema(js["schema"]);
  }
  return Status::error("unknown response_format type '" + type + "'");
}

Result<std::shared_ptr<const JsonSchema>> schema_from_ollama_format(const nlohmann::json& f) {
  if (f.is_null() || (f.is_string() && f.get<std::string>().empty())) return std::shared_ptr<const JsonSchema>();
  if (f.is_string()) {
    if (f.get<std::string>() != "json") return Status::error("'format' must be \"json\" or a JSON schema object");
    return std::shared_ptr<const JsonSchema>(std::make_shared<JsonSchema>(JsonSchema::any_object()));
  }
  if (f.is_object()) return compile_json_schema(f);
  return Status::error("'format' must be \"json\" or a JSON schema object");
}

}  // namespace slim
