// The ChatML family: plain ChatML and Qwen3 (its tokenizer_config.json template, tools
// included). Each branch below names the template lines it stands for.
#include <string>
#include <vector>

#include "learning/text/chat_template_impl.h"

namespace kaizen::text::chat_impl {

namespace {

bool is_tool_response(const std::string& s) {
  const std::string open = "<tool_response>", close = "</tool_response>";
  return s.size() >= open.size() + close.size() && s.compare(0, open.size(), open) == 0 &&
         s.compare(s.size() - close.size(), close.size(), close) == 0;
}

// {%- if tools %} ... {{- tool | tojson }} ... : the system turn that lists the tools.
std::string qwen3_tools_system(const std::vector<ChatMessage>& msgs, const ChatOptions& opts) {
  std::string s = "<|im_start|>system\n";
  if (!msgs.empty() && msgs[0].role == "system") s += msgs[0].content + "\n\n";
  s += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
       "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
  for (const auto& tool : opts.tools) s += "\n" + py_json_dumps(tool);
  s += "\n</tools>\n\nFor each function call, return a json object with function name and "
       "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
       "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
  return s;
}

// {%- if tool_call.arguments is string %} verbatim {%- else %} tojson.
std::string qwen3_arguments(const ToolCall& call) {
  if (!call.arguments_is_object) return call.arguments;
  const auto parsed = nlohmann::ordered_json::parse(call.arguments, nullptr, false);
  return parsed.is_discarded() ? call.arguments : py_json_dumps(parsed);
}

// The "<tool_call>" blocks after an assistant message's content.
std::string qwen3_tool_calls(const ChatMessage& m, const std::string& content) {
  std::string s;
  for (size_t k = 0; k < m.tool_calls.size(); ++k) {
    // {%- if (loop.first and content) or (not loop.first) %}
    if (k > 0 || !content.empty()) s += "\n";
    s += "<tool_call>\n{\"name\": \"" + m.tool_calls[k].name +
         "\", \"arguments\": " + qwen3_arguments(m.tool_calls[k]) + "}\n</tool_call>";
  }
  return s;
}

}  // namespace

void render_qwen3(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                  Pieces& p) {
  const size_t n = msgs.size();
  if (!opts.tools.empty()) {
    p.add(qwen3_tools_system(msgs, opts), false);
  } else if (n > 0 && msgs[0].role == "system") {
    p.add("<|im_start|>system\n" + msgs[0].content + "<|im_end|>\n", false);
  }
  // The last user message that is not a tool response (the template's last_query_index).
  size_t last_query = n == 0 ? 0 : n - 1;
  for (size_t k = n; k-- > 0;) {
    if (msgs[k].role == "user" && !is_tool_response(msgs[k].content)) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = msgs[i];
    const bool last = i + 1 == n;
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      p.add("<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n", false);
    } else if (m.role == "assistant") {
      std::string content = m.content, reasoning;
      if (m.reasoning_content) {
        reasoning = *m.reasoning_content;
      } else if (m.content.find("</think>") != std::string::npos) {
        const size_t close = m.content.find("</think>");
        content = lstrip_nl(m.content.substr(m.content.rfind("</think>") + 8));
        const std::string before = rstrip_nl(m.content.substr(0, close));
        const size_t open = before.rfind("<think>");
        reasoning = lstrip_nl(open == std::string::npos ? before : before.substr(open + 7));
      }
      std::string body;
      if (i > last_query && (last || !reasoning.empty())) {
        p.add("<|im_start|>" + m.role + "\n<think>\n" + strip_nl(reasoning) + "\n</think>\n\n",
              false);
        body = lstrip_nl(content);
      } else {
        p.add("<|im_start|>" + m.role + "\n", false);
        body = content;
      }
      p.add_answer(body + qwen3_tool_calls(m, content), "<|im_end|>", mark && last);
      p.add("\n", false);
    } else if (m.role == "tool") {
      std::string s;
      if (i == 0 || msgs[i - 1].role != "tool") s += "<|im_start|>user";
      s += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (last || msgs[i + 1].role != "tool") s += "<|im_end|>\n";
      p.add(s, false);
    }
  }
  if (opts.add_generation_prompt) {
    p.add("<|im_start|>assistant\n", false);
    if (!opts.enable_thinking) p.add("<think>\n\n</think>\n\n", false);
  }
}

void render_chatml(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                   Pieces& p) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    p.add("<|im_start|>" + m.role + "\n", false);
    p.add_answer(m.content, "<|im_end|>", mark && i + 1 == msgs.size());
    p.add("\n", false);
  }
  if (opts.add_generation_prompt) p.add("<|im_start|>assistant\n", false);
}

}  // namespace kaizen::text::chat_impl
