// Chat templates, hand-written after the Jinja templates they stand for (no Jinja engine):
//   kChatML  <|im_start|>{role}\n{content}<|im_end|>\n ... (Qwen2/Qwen2.5)
//   kQwen3   ChatML plus Qwen3's thinking rules (tokenizer_config.json of Qwen3):
//            assistant turns before the last user query lose their <think> block; the
//            final assistant turn(s) after it keep "<think>\n{reasoning}\n</think>\n\n";
//            enable_thinking=false appends "<think>\n\n</think>\n\n" to the generation
//            prompt; "/think" and "/no_think" in messages are plain text.
//   kLlama3  <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
//            (content trimmed, as the template's `| trim`).
// Tool calls/tool schemas are not rendered (kaizen's chat has no tools); role "tool" is
// rendered as the Qwen templates do. Roles a template does not know (e.g. "developer" for
// Qwen3) are dropped, exactly as the real template drops them; map them before calling.
#pragma once

#include <string>
#include <vector>

namespace kaizen::text {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" | "tool"
  std::string content;
};

struct ChatSegment {
  std::string text;
  bool trainable;  // assistant output the model must learn to produce, incl. its end-of-turn token
};

enum class TemplateKind { kChatML, kQwen3, kLlama3 };

struct ChatOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = true;  // Qwen3 only; false appends the empty think block
};

class ChatTemplate {
 public:
  // Chooses the template from DIR/tokenizer_config.json's chat_template text (<|im_start|>
  // and <think> -> Qwen3, <|im_start|> -> ChatML, <|start_header_id|> -> Llama-3), falling
  // back to config.json's model_type (qwen3, qwen2, llama). override_name "qwen3" |
  // "chatml" | "llama3" skips detection; "" detects. Throws TokenizerError (names the file
  // and problem) when nothing matches or override_name is unknown.
  static ChatTemplate from_model_dir(const std::string& dir, const std::string& override_name = "");
  static ChatTemplate of_kind(TemplateKind kind);
  // "qwen3" | "chatml" | "llama3" -> kind; TokenizerError otherwise.
  static TemplateKind kind_from_name(const std::string& name);
  static const char* name_of(TemplateKind kind);

  TemplateKind kind() const { return kind_; }

  std::string render(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const;

  // For training: the conversation whose LAST message is the assistant answer, rendered
  // exactly as at inference (Qwen3: non-thinking form, the final assistant turn gets
  // "<think>\n\n</think>\n\n" before its content, as the real template does). The texts
  // concatenate to render(messages, {add_generation_prompt=false, enable_thinking=false}).
  // Only the final assistant message's content + end-of-turn token are trainable, except
  // that leading whitespace of that content up to its last line break stays with the
  // prompt: there the byte-level pre-tokenizer would fuse it with the prompt's "\n", and
  // keeping it out makes encode(segment by segment) == encode(whole text).
  // Throws std::invalid_argument if the last message is not from the assistant.
  std::vector<ChatSegment> render_segments(const std::vector<ChatMessage>& messages) const;

  // Token texts that end an assistant turn: {"<|im_end|>"} or {"<|eot_id|>"}.
  std::vector<std::string> end_of_turn_tokens() const;

 private:
  explicit ChatTemplate(TemplateKind kind) : kind_(kind) {}
  std::vector<ChatSegment> render_pieces(const std::vector<ChatMessage>& messages,
                                         const ChatOptions& opts, bool mark_last_answer) const;

  TemplateKind kind_;
};

}  // namespace kaizen::text
