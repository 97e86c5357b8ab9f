// The Llama-3 family: Llama-3.0-Instruct's template and Llama-3.1's (also 3.2/3.3: the same
// output without builtin_tools), whose text is quoted in tests/learning/text.
#include <stdexcept>
#include <string>
#include <vector>

#include "learning/text/chat_template_impl.h"

namespace kaizen::text::chat_impl {

namespace {

std::string header(const std::string& role) {
  return "<|start_header_id|>" + role + "<|end_header_id|>\n\n";
}

// {{- tool_call.arguments | tojson }} of the parsed arguments (see ToolCall).
std::string llama31_arguments(const ToolCall& call) {
  const auto parsed = nlohmann::ordered_json::parse(call.arguments, nullptr, false);
  return py_json_dumps(parsed.is_discarded() ? nlohmann::ordered_json(call.arguments) : parsed);
}

// The instructions and `t | tojson(indent=4)` blocks that precede the tools' user (or
// system) turn text.
std::string llama31_tool_list(const std::vector<nlohmann::ordered_json>& tools) {
  std::string s =
      "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument "
      "name and its value}.Do not use variables.\n\n";
  for (const auto& t : tools) s += py_json_dumps(t, 4) + "\n\n";
  return s;
}

}  // namespace

void render_llama3(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                   Pieces& p) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    p.add(std::string(i == 0 ? "<|begin_of_text|>" : "") + header(m.role), false);
    p.add_answer(trim(m.content), "<|eot_id|>", mark && i + 1 == msgs.size());
  }
  if (opts.add_generation_prompt) p.add(header("assistant"), false);
}

void render_llama31(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                    Pieces& p) {
  const bool tools = !opts.tools.empty();
  // {#- This block extracts the system message, so we can slot it into the right place. #}
  size_t i = 0;
  std::string system_message;
  if (!msgs.empty() && msgs[0].role == "system") {
    system_message = trim(msgs[0].content);
    i = 1;
  }
  std::string s = "<|begin_of_text|>" + header("system");
  if (tools) s += "Environment: ipython\n";
  s += "Cutting Knowledge Date: December 2023\nToday Date: " + opts.date_string + "\n\n";
  if (tools && !opts.tools_in_user_message) {
    s += "You have access to the following functions. To call a function, please respond with "
         "JSON for a function call." +
         llama31_tool_list(opts.tools);
  }
  s += system_message + "<|eot_id|>";
  // {#- Custom tools are passed in a user message with some extra guidance #}: whatever
  // message comes first (its role is not checked) becomes that user turn.
  if (tools && opts.tools_in_user_message) {
    if (i == msgs.size()) {
      throw std::invalid_argument(
          "Cannot put tools in the first user message when there's no first user message!");
    }
    s += header("user") +
         "Given the following functions, please respond with a JSON for a function call with "
         "its proper arguments that best answers the given prompt.\n\n" +
         llama31_tool_list(opts.tools) + trim(msgs[i].content) + "<|eot_id|>";
    ++i;
  }
  p.add(s, false);
  for (; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    const bool answer = mark && i + 1 == msgs.size();
    if (m.role != "ipython" && m.role != "tool" && m.tool_calls.empty()) {
      p.add(header(m.role), false);
      p.add_answer(trim(m.content), "<|eot_id|>", answer);
    } else if (!m.tool_calls.empty()) {
      if (m.tool_calls.size() != 1) {
        throw std::invalid_argument("This model only supports single tool-calls at once!");
      }
      const ToolCall& call = m.tool_calls[0];
      p.add(header("assistant"), false);
      p.add_answer(
          "{\"name\": \"" + call.name + "\", \"parameters\": " + llama31_arguments(call) + "}",
          "<|eot_id|>", answer);
    } else {
      // `message.content is iterable` holds for a string too, so it is always tojson'd.
      p.add(header("ipython") + py_json_dumps(m.content) + "<|eot_id|>", false);
    }
  }
  if (opts.add_generation_prompt) p.add(header("assistant"), false);
}

}  // namespace kaizen::text::chat_impl
