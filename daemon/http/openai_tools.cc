#include "daemon/http/openai_tools.h"

#include <algorithm>

#include "daemon/http/json_fields.h"
#include "learning/grammar/json_schema.h"

namespace kaizen::daemon {
namespace {

using json = nlohmann::json;

// OpenAI's rule for function names: a-z, A-Z, 0-9, underscores and dashes, at most 64.
bool valid_function_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::optional<Error> parse_tool(const json& t, const nlohmann::ordered_json& ordered, const std::string& p, Tool* out) {
  if (!t.is_object()) return wrong_type(p, "an object", t);
  auto type = t.find("type");
  if (type == t.end() || !type->is_string() || *type != "function")
    return Error::InvalidRequest("'" + p + ".type' must be \"function\"", p + ".type");
  auto fn = t.find("function");
  if (fn == t.end() || !fn->is_object())
    return Error::InvalidRequest("'" + p + ".function' must be an object", p + ".function");
  const std::string fp = p + ".function";
  std::optional<std::string> name, description;
  if (auto e = get_string(*fn, fp + ".name", "name", &name)) return e;
  if (!name) return Error::InvalidRequest("'" + fp + ".name' is required", fp + ".name");
  if (!valid_function_name(*name)) {
    return Error::InvalidRequest("'" + fp + ".name' is \"" + *name +
                                     "\": use a-z, A-Z, 0-9, '_' and '-', at most 64 characters",
                                 fp + ".name");
  }
  if (auto e = get_string(*fn, fp + ".description", "description", &description)) return e;
  out->name = *name;
  auto params = fn->find("parameters");
  if (params != fn->end() && !params->is_null()) {
    if (!params->is_object()) return wrong_type(fp + ".parameters", "a JSON schema object", *params);
    auto ptype = params->find("type");
    if (ptype != params->end() && !(ptype->is_string() && *ptype == "object")) {
      return Error::InvalidRequest("'" + fp + ".parameters.type' must be \"object\" (arguments are a JSON object)",
                                   fp + ".parameters.type");
    }
    out->parameters = ordered.at("function").at("parameters");
  }
  out->raw = ordered;
  return std::nullopt;
}

}  // namespace

std::optional<Error> parse_tools(const json& body, const nlohmann::ordered_json& ordered, const Limits& limits,
                                 ChatRequest* r) {
  // The tools are read from the ordered body only (the same JSON unless it repeats keys).
  auto tools = ordered.is_object() ? ordered.find("tools") : ordered.end();
  if (tools != ordered.end() && !tools->is_null()) {
    if (!tools->is_array()) return wrong_type("tools", "an array", json(*tools));
    if (static_cast<int64_t>(tools->size()) > limits.max_tools) {
      return Error::InvalidRequest("'tools' has " + std::to_string(tools->size()) + " entries, the limit is " +
                                       std::to_string(limits.max_tools),
                                   "tools");
    }
    for (size_t i = 0; i < tools->size(); ++i) {
      Tool t;
      const nlohmann::ordered_json& ot = (*tools)[i];
      if (auto e = parse_tool(json(ot), ot, "tools[" + std::to_string(i) + "]", &t)) return e;
      for (const Tool& other : r->tools) {
        if (other.name == t.name) {
          return Error::InvalidRequest("'tools' declares the function \"" + t.name + "\" twice",
                                       "tools[" + std::to_string(i) + "].function.name");
        }
      }
      r->tools.push_back(std::move(t));
    }
  }
  std::optional<bool> parallel;
  if (auto e = get_bool(body, "parallel_tool_calls", "parallel_tool_calls", &parallel)) return e;
  r->parallel_tool_calls = parallel.value_or(true);

  auto choice = body.find("tool_choice");
  if (choice != body.end() && !choice->is_null()) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c == "auto") {
        r->tool_choice = ToolChoice::kAuto;
      } else if (c == "none") {
        r->tool_choice = ToolChoice::kNone;
      } else if (c == "required") {
        r->tool_choice = ToolChoice::kRequired;
      } else {
        return Error::InvalidRequest("'tool_choice' is \"" + c + "\", expected auto, none, required or "
                                     "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                                     "tool_choice");
      }
    } else if (choice->is_object()) {
      auto fn = choice->find("function");
      if (choice->value("type", json()) != "function" || fn == choice->end() || !fn->is_object() ||
          !fn->contains("name") || !(*fn)["name"].is_string()) {
        return Error::InvalidRequest("'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
                                     "tool_choice");
      }
      r->tool_choice = ToolChoice::kNamed;
      r->tool_choice_name = (*fn)["name"].get<std::string>();
    } else {
      return wrong_type("tool_choice", "a string or an object", *choice);
    }
    if (r->tool_choice != ToolChoice::kNone && r->tools.empty()) {
      return Error::InvalidRequest("'tool_choice' needs 'tools'", "tool_choice");
    }
  }
  if (r->tool_choice == ToolChoice::kNamed) {
    const bool declared = std::any_of(r->tools.begin(), r->tools.end(),
                                      [&](const Tool& t) { return t.name == r->tool_choice_name; });
    if (!declared) {
      return Error::InvalidRequest("'tool_choice' names the function \"" + r->tool_choice_name +
                                       "\", which 'tools' does not declare",
                                   "tool_choice");
    }
  }
  if (r->tool_choice == ToolChoice::kRequired || r->tool_choice == ToolChoice::kNamed) {
    // The call is constrained: every schema it may use must compile now, as a 400.
    for (size_t i = 0; i < r->tools.size(); ++i) {
      const Tool& t = r->tools[i];
      if (r->tool_choice == ToolChoice::kNamed && t.name != r->tool_choice_name) continue;
      const std::string p = "tools[" + std::to_string(i) + "].function.parameters";
      try {
        if (!t.parameters.is_null()) grammar::json_schema_grammar(t.parameters, p);
      } catch (const grammar::SchemaError& e) {
        return Error::InvalidRequest(e.what(), p);
      }
    }
  }
  return std::nullopt;
}

std::optional<Error> parse_response_format(const json& body, const nlohmann::ordered_json& ordered, ChatRequest* r) {
  auto rf = body.find("response_format");
  if (rf == body.end() || rf->is_null()) return std::nullopt;
  if (!rf->is_object()) return wrong_type("response_format", "an object", *rf);
  std::optional<std::string> type;
  if (auto e = get_string(*rf, "response_format.type", "type", &type)) return e;
  if (!type) return Error::InvalidRequest("'response_format.type' is required", "response_format.type");
  if (*type == "text") {
    r->response_format = ResponseFormat::kText;
  } else if (*type == "json_object") {
    r->response_format = ResponseFormat::kJsonObject;
    r->grammar = grammar::json_object_grammar();
  } else if (*type == "json_schema") {
    auto js = rf->find("json_schema");
    if (js == rf->end() || !js->is_object())
      return Error::InvalidRequest("'response_format.json_schema' must be an object", "response_format.json_schema");
    std::optional<std::string> name;
    if (auto e = get_string(*js, "response_format.json_schema.name", "name", &name)) return e;
    if (!name || !valid_function_name(*name)) {
      return Error::InvalidRequest("'response_format.json_schema.name' is required: a-z, A-Z, 0-9, '_' and '-', "
                                   "at most 64 characters",
                                   "response_format.json_schema.name");
    }
    std::optional<bool> strict;
    if (auto e = get_bool(*js, "response_format.json_schema.strict", "strict", &strict)) return e;
    auto schema = js->find("schema");
    const std::string p = "response_format.json_schema.schema";
    if (schema == js->end() || schema->is_null()) {
      r->grammar = grammar::json_object_grammar();  // OpenAI: no schema = any JSON object
    } else {
      if (!schema->is_object()) return wrong_type(p, "a JSON schema object", *schema);
      try {  // compiled from the ordered body: properties in the schema's order
        r->grammar = grammar::json_schema_grammar(ordered.at("response_format").at("json_schema").at("schema"), p);
      } catch (const grammar::SchemaError& e) {
        return Error::InvalidRequest(e.what(), p);
      } catch (const std::exception&) {  // the body repeats keys and the copies disagree
        return Error::InvalidRequest("'response_format' could not be read (repeated keys?)", "response_format");
      }
    }
    r->response_format = ResponseFormat::kJsonSchema;
  } else {
    return Error::InvalidRequest("'response_format.type' is \"" + *type + "\", expected text, json_object or json_schema",
                                 "response_format.type");
  }
  if (r->grammar && (r->tool_choice == ToolChoice::kRequired || r->tool_choice == ToolChoice::kNamed)) {
    return Error::InvalidRequest("'response_format' cannot be combined with a forced tool call (tool_choice)",
                                 "response_format");
  }
  return std::nullopt;
}

std::optional<Error> parse_message_tools(const json& m, const std::string& p, const std::vector<Message>& earlier,
                                         Message* out) {
  auto calls = m.find("tool_calls");
  if (calls != m.end() && !calls->is_null()) {
    if (out->role != "assistant")
      return Error::InvalidRequest("'" + p + ".tool_calls' is only allowed in assistant messages", p + ".tool_calls");
    if (!calls->is_array()) return wrong_type(p + ".tool_calls", "an array", *calls);
    for (size_t k = 0; k < calls->size(); ++k) {
      const json& c = (*calls)[k];
      const std::string cp = p + ".tool_calls[" + std::to_string(k) + "]";
      if (!c.is_object()) return wrong_type(cp, "an object", c);
      ToolCall call;
      std::optional<std::string> id;
      if (auto e = get_string(c, cp + ".id", "id", &id)) return e;
      if (!id || id->empty()) return Error::InvalidRequest("'" + cp + ".id' is required", cp + ".id");
      call.id = *id;
      auto fn = c.find("function");
      if (fn == c.end() || !fn->is_object())
        return Error::InvalidRequest("'" + cp + ".function' must be an object", cp + ".function");
      std::optional<std::string> name;
      if (auto e = get_string(*fn, cp + ".function.name", "name", &name)) return e;
      if (!name || name->empty())
        return Error::InvalidRequest("'" + cp + ".function.name' is required", cp + ".function.name");
      call.name = *name;
      auto args = fn->find("arguments");
      if (args == fn->end() || args->is_null()) {
        call.arguments = "{}";
      } else if (args->is_string()) {
        call.arguments = args->get<std::string>();
      } else if (args->is_object()) {
        call.arguments = dump(*args);
        call.arguments_is_object = true;
      } else {
        return wrong_type(cp + ".function.arguments", "a JSON string", *args);
      }
      out->tool_calls.push_back(std::move(call));
    }
  }
  if (out->role == "tool") {
    std::optional<std::string> id;
    if (auto e = get_string(m, p + ".tool_call_id", "tool_call_id", &id)) return e;
    if (!id || id->empty())
      return Error::InvalidRequest("'" + p + ".tool_call_id' is required in tool messages", p + ".tool_call_id");
    bool answered = false;
    for (const Message& e : earlier) {
      for (const ToolCall& c : e.tool_calls) answered = answered || c.id == *id;
    }
    if (!answered) {
      return Error::InvalidRequest("'" + p + ".tool_call_id' is \"" + *id +
                                       "\", which no earlier assistant message's tool_calls has",
                                   p + ".tool_call_id");
    }
    out->tool_call_id = *id;
  }
  return std::nullopt;
}

}  // namespace kaizen::daemon
