#include "learning/grammar/tool_call.h"

#include <set>

namespace kaizen::grammar {

std::shared_ptr<const Grammar> tool_call_grammar(const std::vector<ToolSpec>& tools, bool parallel,
                                                 ToolCallFormat format) {
  if (tools.empty()) throw SchemaError("tools: at least one tool is required");
  const bool hermes = format == ToolCallFormat::kHermes;
  GrammarBuilder b;
  JsonRules json(b);
  const int32_t root = b.add_rule("tool_calls");
  const int32_t start = b.start(root);
  const int32_t name = b.add_literal(start, hermes ? "<tool_call>\n{\"name\": " : "{\"name\": ");
  const char* const args_key = hermes ? ", \"arguments\": " : ", \"parameters\": ";
  const int32_t after_args = b.add_state(root);
  std::set<std::string> seen;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "].function";
    const ToolSpec& tool = tools[i];
    if (tool.name.empty() || !seen.insert(tool.name).second) {
      throw SchemaError(path + ".name: " +
                        (tool.name.empty() ? "empty" : "repeated tool name '" + tool.name + "'"));
    }
    nlohmann::ordered_json params;
    std::string quoted_name;
    try {
      params = tool.ordered_parameters ? *tool.ordered_parameters
                                       : nlohmann::ordered_json::parse(tool.parameters.dump());
      quoted_name = nlohmann::json(tool.name).dump();
    } catch (const nlohmann::json::exception&) {
      throw SchemaError(path + ": a string is not valid UTF-8");
    }
    int32_t args;
    if (params.is_null() || (params.is_object() && params.empty())) {
      args = json.any_object();
    } else {
      if (params.is_object() && params.contains("type") && params["type"] != "object") {
        throw SchemaError(path + ".parameters: 'type' must be \"object\"");
      }
      args = add_schema_rule(json, params, path + ".parameters");
    }
    b.add_call(b.add_literal(name, quoted_name + args_key), args, after_args);
  }
  const int32_t end = b.add_literal(after_args, hermes ? "}\n</tool_call>" : "}");
  b.set_final(end);
  if (parallel && hermes) b.add_byte(end, '\n', start);
  return b.build(root);
}

}  // namespace kaizen::grammar
