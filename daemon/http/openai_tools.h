// The function-calling and structured-output parts of a chat request: `tools`,
// `tool_choice`, `parallel_tool_calls`, `response_format`, and the tool fields of
// messages (assistant `tool_calls`, tool `tool_call_id`). Used by parse_chat_request
// (openai_json.h); errors name the parameter.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/service.h"

namespace kaizen::daemon {

// tools, tool_choice, parallel_tool_calls of `body` into r. A forced call (tool_choice
// required or a named function) compiles every schema it may use (grammar::SchemaError
// -> 400 naming tools[i].function.parameters and the keyword); with auto/none a schema
// only has to be an object schema.
// `ordered` is the same body with its key order kept (nlohmann::json sorts keys): the
// chat template's `tojson` shows the model the tools in the client's order, and schema
// properties are generated in the order the schema declares them.
std::optional<Error> parse_tools(const nlohmann::json& body, const nlohmann::ordered_json& ordered,
                                 const Limits& limits, ChatRequest* r);

// response_format {"type": text | json_object | json_schema, json_schema: {name, schema,
// strict?, description?}} into r->response_format and r->grammar.
std::optional<Error> parse_response_format(const nlohmann::json& body, const nlohmann::ordered_json& ordered,
                                          ChatRequest* r);

// An assistant message's tool_calls [{id, type: "function", function: {name, arguments}}]
// (arguments a JSON string, or an object which is serialised), or a tool message's
// tool_call_id, which must answer a call of an earlier assistant message (`calls`).
std::optional<Error> parse_message_tools(const nlohmann::json& msg, const std::string& param,
                                         const std::vector<Message>& earlier, Message* out);

}  // namespace kaizen::daemon
