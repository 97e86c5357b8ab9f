// Chat templates, hand-written after the Jinja templates they stand for (no Jinja engine);
// each renders byte for byte what transformers' apply_chat_template renders with the
// model's own template (tests compare with jinja2, tools/ref/chat_template_ref.py):
//   kChatML   <|im_start|>{role}\n{content}<|im_end|>\n ... (plain ChatML: no tools).
//   kQwen3    Qwen3's tokenizer_config.json template: ChatML plus
//             - thinking: assistant turns before the last user query lose their <think>
//               block; the turn(s) after it keep "<think>\n{reasoning}\n</think>\n\n"
//               (reasoning_content when set, else split out of content); enable_thinking
//               =false appends "<think>\n\n</think>\n\n" to the generation prompt;
//               "/think" and "/no_think" in messages are plain text.
//             - tools: the system turn lists them (`tool | tojson`, one a line, inside
//               <tools></tools>, after the system message); assistant tool_calls render as
//               "<tool_call>\n{"name": "N", "arguments": A}\n</tool_call>" (A verbatim when
//               the client sent a string, else tojson), "\n"-separated and after content;
//               role "tool" results go into a user turn as <tool_response> blocks.
//   kLlama3   Llama-3.0-Instruct: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>
//             \n\n{content}<|eot_id|> (content trimmed, as the template's `| trim`); no tools.
//   kLlama31  Llama-3.1/3.2/3.3-Instruct: a system turn that always starts "Cutting Knowledge
//             Date: December 2023\nToday Date: {date_string}\n\n" ("Environment: ipython\n"
//             before it when there are tools); tools as `tojson(indent=4)` blocks in the first
//             user turn (tools_in_user_message, the template's default) or the system turn;
//             an assistant tool call as {"name": "N", "parameters": A} (its content dropped),
//             A = tojson of the parsed arguments; role "tool"/"ipython" as an "ipython" turn
//             whose content is `tojson` of the string (the template's own quirk: quoted).
//             builtin_tools (brave_search, <|python_tag|>...) are not supported.
// kChatML and kLlama3 render neither tools nor tool_calls (their templates have none; a
// "tool" message is a turn of that role). Roles a template does not know (e.g. "developer"
// for Qwen3) are dropped, exactly as the real template drops them; map them before calling.
// An empty `tools` list renders as no tools (transformers' tools=None).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/text/py_json.h"

namespace kaizen::text {

// A function call in an assistant message.
struct ToolCall {
  std::string id;  // "call_..." (not rendered by Qwen3 or Llama-3.1; kept for the API)
  std::string name;
  std::string arguments;  // the arguments JSON text exactly as the client sent it
  // The client sent "arguments" as a JSON object (not as OpenAI's string) and `arguments`
  // is its text: Qwen3 then prints tojson of it instead of the text verbatim. Llama-3.1
  // always prints tojson of the parsed text (its template needs a mapping, so servers
  // parse OpenAI's string first, as vLLM does); text that does not parse is printed as
  // tojson of the string.
  bool arguments_is_object = false;
};

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant" | "tool" (Llama-3.1 also "ipython")
  std::string content;  // "" for OpenAI's null
  std::vector<ToolCall> tool_calls = {};  // assistant messages
  std::string tool_call_id = {};          // role "tool" (not rendered by these templates)
  // Assistant: the thinking text. Qwen3 renders it instead of splitting a <think> block
  // out of content when set (content is then rendered as it is).
  std::optional<std::string> reasoning_content = std::nullopt;
};

struct ChatSegment {
  std::string text;
  bool trainable;  // assistant output the model must learn to produce, incl. its end-of-turn token
};

enum class TemplateKind { kChatML, kQwen3, kLlama3, kLlama31 };

struct ChatOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = true;  // Qwen3 only; false appends the empty think block
  // The request's tool objects as sent ({"type":"function","function":{...}}), key order
  // kept; rendered with tojson (py_json_dumps). Qwen3 and Llama-3.1 only.
  std::vector<nlohmann::ordered_json> tools = {};
  // Llama-3.1 only: "Today Date: ..." of the system turn. The default is the template's
  // own default (Llama-3.2's template uses today's date when transformers supplies
  // strftime_now; pass it here to match that).
  std::string date_string = "26 Jul 2024";
  // Llama-3.1 only: tools go into the first user turn (the template's default) or, when
  // false, into the system turn.
  bool tools_in_user_message = true;
};

class ChatTemplate {
 public:
  // Chooses the template from DIR/tokenizer_config.json's chat_template text (<|im_start|>
  // and <think> -> Qwen3, <|im_start|> -> ChatML, "Cutting Knowledge Date" -> Llama-3.1,
  // <|start_header_id|> -> Llama-3), falling back to config.json's model_type (qwen3, qwen2,
  // llama -> Llama-3). override_name "qwen3" | "chatml" | "llama3" | "llama31" skips
  // detection; "" detects. Throws TokenizerError (names the file and problem) when nothing
  // matches or override_name is unknown.
  static ChatTemplate from_model_dir(const std::string& dir, const std::string& override_name = "");
  static ChatTemplate of_kind(TemplateKind kind);
  // "qwen3" | "chatml" | "llama3" | "llama31" -> kind; TokenizerError otherwise.
  static TemplateKind kind_from_name(const std::string& name);
  static const char* name_of(TemplateKind kind);

  TemplateKind kind() const { return kind_; }

  // Throws std::invalid_argument where the real template raises an exception, with its
  // message: Llama-3.1 with tools but no message after the system one ("Cannot put tools in
  // the first user message when there's no first user message!"), or an assistant message
  // with more than one tool call ("This model only supports single tool-calls at once!").
  std::string render(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const;

  // For training: the conversation whose LAST message is the assistant answer, rendered
  // exactly as at inference (Qwen3: non-thinking form, the final assistant turn gets
  // "<think>\n\n</think>\n\n" before its content, as the real template does). The texts
  // concatenate to render(messages, {add_generation_prompt=false, enable_thinking=false,
  // tools}).
  // Only the final assistant message's content, its rendered tool calls (what the model must
  // learn to write) and the end-of-turn token are trainable, except that leading whitespace
  // of that answer up to its last line break stays with the prompt: there the byte-level
  // pre-tokenizer would fuse it with the prompt's "\n", and keeping it out makes
  // encode(segment by segment) == encode(whole text). `tools` go into the prompt as at
  // inference.
  // Throws std::invalid_argument if the last message is not from the assistant, or where
  // render() throws.
  std::vector<ChatSegment> render_segments(
      const std::vector<ChatMessage>& messages,
      const std::vector<nlohmann::ordered_json>& tools = {}) const;

  // Token texts that end an assistant turn: {"<|im_end|>"}, {"<|eot_id|>"}, or for
  // Llama-3.1 {"<|eot_id|>", "<|eom_id|>"} (it ends a tool call with <|eom_id|> when the
  // system turn says "Environment: ipython"; a 3.0 tokenizer names that id
  // <|reserved_special_token_4|>, so look the texts up and skip those it lacks).
  std::vector<std::string> end_of_turn_tokens() const;

 private:
  explicit ChatTemplate(TemplateKind kind) : kind_(kind) {}
  std::vector<ChatSegment> render_pieces(const std::vector<ChatMessage>& messages,
                                         const ChatOptions& opts, bool mark_last_answer) const;

  TemplateKind kind_;
};

}  // namespace kaizen::text
