#include "storage/chat_line.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace kaizen::storage {

using nlohmann::json;

namespace {

// The non-empty function name of a tool or tool call ({..., "function": {"name": ...}});
// `where` names it in the error.
Status function_name(const json& holder, const std::string& where, std::string* name) {
  auto fn = holder.find("function");
  if (fn == holder.end() || !fn->is_object())
    return Status::InvalidArgument(where + ": no \"function\" object");
  auto n = fn->find("name");
  if (n == fn->end() || !n->is_string() || n->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(where + ": no function \"name\"");
  }
  *name = n->get<std::string>();
  return Status::OK();
}

// An assistant message's "tool_calls" (OpenAI's fine-tuning format); `at` names the message.
Status parse_tool_calls(const json& calls, const std::string& at, std::vector<ToolCall>* out) {
  if (!calls.is_array()) return Status::InvalidArgument(at + ": \"tool_calls\" is not an array");
  for (size_t k = 0; k < calls.size(); ++k) {
    const json& c = calls[k];
    const std::string where = at + ": tool call " + std::to_string(k);
    if (!c.is_object()) return Status::InvalidArgument(where + " is not an object");
    if (auto t = c.find("type"); t != c.end() && *t != "function") {
      return Status::InvalidArgument(where + ": \"type\" must be \"function\"");
    }
    ToolCall call;
    KAIZEN_RETURN_IF_ERROR(function_name(c, where, &call.name));
    const json& fn = c["function"];
    if (auto id = c.find("id"); id != c.end() && !id->is_null()) {
      if (!id->is_string()) return Status::InvalidArgument(where + ": \"id\" is not a string");
      call.id = id->get<std::string>();
    }
    auto args = fn.find("arguments");
    if (args == fn.end() || args->is_null()) {
      call.arguments = "{}";
    } else if (args->is_object()) {
      call.arguments = args->dump();
      call.arguments_is_object = true;
    } else if (args->is_string()) {
      call.arguments = args->get<std::string>();
      if (!json::accept(call.arguments)) {
        return Status::InvalidArgument(where + ": \"arguments\" is not JSON text");
      }
    } else {
      return Status::InvalidArgument(where + ": \"arguments\" must be a JSON string or object");
    }
    out->push_back(std::move(call));
  }
  return Status::OK();
}

// The top-level "tools" list: function definitions, kept as JSON text with their key order.
Status parse_tools(const std::string& line, const json& tools, std::string* tools_json) {
  if (!tools.is_array()) return Status::InvalidArgument("\"tools\" is not an array");
  for (size_t k = 0; k < tools.size(); ++k) {
    const json& t = tools[k];
    const std::string where = "tool " + std::to_string(k);
    // find, not value(): value("type", "") throws for a "type" that is not a string.
    if (!t.is_object() || !t.contains("type") || t["type"] != "function") {
      return Status::InvalidArgument(where +
                                     ": want {\"type\": \"function\", \"function\": {...}}");
    }
    std::string name;
    KAIZEN_RETURN_IF_ERROR(function_name(t, where, &name));
    const json& fn = t["function"];
    if (auto params = fn.find("parameters"); params != fn.end() && !params->is_object()) {
      return Status::InvalidArgument(where + ": \"parameters\" is not a JSON schema object");
    }
  }
  if (!tools.empty()) {
    const auto ordered = nlohmann::ordered_json::parse(line);  // parsed once already: cannot fail
    *tools_json = ordered.at("tools").dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return Status::OK();
}

}  // namespace

Status parse_chat_line(const std::string& line, Example* out) {
  out->messages.clear();
  out->paraphrases.clear();
  out->tools_json.clear();
  std::vector<ChatMessage>* messages = &out->messages;
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");
  auto it = j.find("messages");
  if (it == j.end()) return Status::InvalidArgument("no \"messages\" field");
  if (!it->is_array()) return Status::InvalidArgument("\"messages\" is not an array");
  if (it->empty()) return Status::InvalidArgument("\"messages\" is empty");
  bool has_user = false;
  std::vector<std::string> call_ids;  // of the calls made so far: what a tool message may answer
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string at = "message " + std::to_string(i);
    if (!m.is_object()) return Status::InvalidArgument(at + " is not an object");
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string()) {
      return Status::InvalidArgument(at + ": \"role\" missing or not a string");
    }
    const auto& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
      return Status::InvalidArgument(at + ": unknown role '" + r +
                                     "' (want system, user, assistant or tool)");
    }
    ChatMessage msg{r, ""};
    if (auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null()) {
      if (r != "assistant")
        return Status::InvalidArgument(at + ": only assistant messages have \"tool_calls\"");
      KAIZEN_RETURN_IF_ERROR(parse_tool_calls(*calls, at, &msg.tool_calls));
      for (const auto& c : msg.tool_calls) call_ids.push_back(c.id);
    }
    const bool content_optional = !msg.tool_calls.empty();
    if (content != m.end() && content->is_string()) {
      msg.content = content->get<std::string>();
    } else if (!(content_optional && (content == m.end() || content->is_null()))) {
      return Status::InvalidArgument(at + ": \"content\" missing or not a string");
    }
    if (r == "tool") {
      const bool after_call = !messages->empty() && (!messages->back().tool_calls.empty() ||
                                                     messages->back().role == "tool");
      if (!after_call)
        return Status::InvalidArgument(at + ": a tool result must follow an assistant tool call");
      if (auto id = m.find("tool_call_id"); id != m.end() && !id->is_null()) {
        if (!id->is_string())
          return Status::InvalidArgument(at + ": \"tool_call_id\" is not a string");
        msg.tool_call_id = id->get<std::string>();
        if (std::find(call_ids.begin(), call_ids.end(), msg.tool_call_id) == call_ids.end()) {
          return Status::InvalidArgument(at + ": \"tool_call_id\" '" + msg.tool_call_id +
                                         "' answers no earlier tool call");
        }
      }
    }
    has_user = has_user || r == "user";
    messages->push_back(std::move(msg));
  }
  if (!has_user) return Status::InvalidArgument("no user message");
  if (auto t = j.find("tools"); t != j.end() && !t->is_null()) {
    KAIZEN_RETURN_IF_ERROR(parse_tools(line, *t, &out->tools_json));
  }
  if (auto p = j.find("paraphrases"); p != j.end()) {
    if (!p->is_array()) return Status::InvalidArgument("\"paraphrases\" is not an array");
    for (size_t i = 0; i < p->size(); ++i) {
      const json& q = (*p)[i];
      if (!q.is_string() || q.get_ref<const std::string&>().empty()) {
        return Status::InvalidArgument("paraphrase " + std::to_string(i) +
                                       " is not a non-empty string");
      }
      out->paraphrases.push_back(q.get<std::string>());
    }
  }
  if (messages->back().role != "assistant") {
    return Status::InvalidArgument("last message must be from the assistant (got " +
                                   messages->back().role + ")");
  }
  return Status::OK();
}

}  // namespace kaizen::storage
