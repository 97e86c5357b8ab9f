// The grammar of forced tool calls, exactly as the model's chat template shows tool calls
// to it:
//   Hermes (Qwen3):   <tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>
//   Llama-3.1 JSON:   {"name": "NAME", "parameters": ARGS}
// with NAME one of the tools' names and ARGS valid for that tool's parameters (JSON as in
// learning/grammar/json_schema.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/grammar/grammar.h"
#include "learning/grammar/json_schema.h"

namespace kaizen::grammar {

struct ToolSpec {
  std::string name;
  nlohmann::json parameters;  // JSON schema of the arguments (an object schema); null/empty object
                              // = any JSON object
  // The same schema with the request's key order; when set it is used instead of
  // `parameters`, so that properties are generated in the order the schema lists them
  // (nlohmann::json sorts keys).
  std::optional<nlohmann::ordered_json> ordered_parameters = std::nullopt;
};

enum class ToolCallFormat { kHermes, kLlamaJson };

// One tool call, or with `parallel` (Hermes only: Llama-3.1's template renders one call
// per message) one or more joined by "\n". Throws SchemaError (path
// "tools[i].function.parameters...") for an unsupported schema or a parameters schema whose
// type is not "object", "tools" for an empty list, "tools[i].function.name" for an empty or
// repeated name.
std::shared_ptr<const Grammar> tool_call_grammar(const std::vector<ToolSpec>& tools, bool parallel,
                                                 ToolCallFormat format = ToolCallFormat::kHermes);

}  // namespace kaizen::grammar
