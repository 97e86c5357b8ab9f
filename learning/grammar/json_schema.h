// Grammars for OpenAI-style structured outputs: response_format {"type": "json_object"} and
// {"type": "json_schema", "json_schema": {"schema": ...}}. Whitespace, number and nesting
// bounds of the generated JSON: learning/grammar/json_rules.h.
//
// Supported JSON Schema subset (anything else is a SchemaError naming path and keyword):
//   type        "object" | "string" | "number" | "integer" | "boolean" | "null" | "array",
//               or a list of these; absent: inferred from the keywords present (properties,
//               required, additionalProperties -> object; items, minItems, maxItems -> array;
//               minLength, maxLength -> string), else any value.
//   object      properties, required, additionalProperties (true/false/absent). Only declared
//               properties are generated, in the schema's order (use the ordered_json
//               overload to keep it: nlohmann::json sorts keys), required ones always,
//               optional ones optionally. Without "properties": any JSON object (or only {}
//               with additionalProperties false).
//   string      minLength, maxLength (code points, as JSON Schema counts them).
//   array       items (one schema; absent = any value), minItems, maxItems.
//   enum, const any JSON values, generated exactly as nlohmann's compact dump() writes them;
//               beside them only type and minLength/maxLength, which filter the values.
//   anyOf       a list of schemas, with no other keywords beside it.
//   allOf       a list of exactly one schema (pydantic's wrapper of a described $ref).
//   $ref        a JSON pointer into the same schema ("#/$defs/Address", "#/definitions/X":
//               pydantic's and zod's nested models), nothing else beside it; each target is
//               compiled once; recursive references and other documents are refused.
//   true, {}    any JSON value.
//   ignored     title, description, $schema, default, examples, $comment, strict, and the
//               $defs / definitions containers (compiled where referenced).
// minLength and minItems above kMaxMinCount are refused (they size per-state tables).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "learning/grammar/grammar.h"
#include "learning/grammar/json_rules.h"

namespace kaizen::grammar {

// Thrown for a schema outside the supported subset or malformed; what() names the JSON path
// and keyword, e.g. "response_format.json_schema.schema.properties.age: unsupported keyword
// 'pattern'" (the caller passes the path prefix).
struct SchemaError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

constexpr int32_t kMaxMinCount = 10000;

// Any JSON object (response_format {"type":"json_object"}). Built once, then shared.
std::shared_ptr<const Grammar> json_object_grammar();

// A JSON-schema subset; throws SchemaError. path_prefix is used in error messages.
std::shared_ptr<const Grammar> json_schema_grammar(const nlohmann::json& schema,
                                                   const std::string& path_prefix = "schema");
// The same with the schema's key order kept (properties are generated in that order).
std::shared_ptr<const Grammar> json_schema_grammar(const nlohmann::ordered_json& schema,
                                                   const std::string& path_prefix = "schema");

// Building block for grammars that embed schemas (tool calls): adds the rules for `schema`
// to json's builder and returns the rule that matches the values it admits.
int32_t add_schema_rule(JsonRules& json, const nlohmann::ordered_json& schema,
                        const std::string& path);

}  // namespace kaizen::grammar
