// Internal to the chat templates: the piece collector every template family renders into
// and the string helpers that stand for Jinja/Python string methods. Not a public API.
#pragma once

#include <string>
#include <vector>

#include "learning/text/chat_template.h"

namespace kaizen::text::chat_impl {

// Python's str.lstrip('\n') / rstrip('\n') / strip('\n').
std::string lstrip_nl(const std::string& s);
std::string rstrip_nl(const std::string& s);
std::string strip_nl(const std::string& s);
// Jinja's `trim` (Python str.strip()): Unicode whitespace on both ends.
std::string trim(const std::string& s);

// The rendered text as segments, adjacent pieces of the same trainability merged.
class Pieces {
 public:
  void add(std::string text, bool trainable);
  // The final answer: leading whitespace that tokenizes together with the prompt stays
  // with the prompt (see ChatTemplate::render_segments).
  void add_answer(const std::string& body, const std::string& end_of_turn, bool trainable);
  std::vector<ChatSegment> take() { return std::move(out_); }

 private:
  std::vector<ChatSegment> out_;
};

// One family per file: chat_template_qwen.cc, chat_template_llama.cc. `mark` asks for the
// final message's answer to be marked trainable (render_segments).
void render_qwen3(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                  Pieces& p);
void render_chatml(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                   Pieces& p);
void render_llama3(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                   Pieces& p);
void render_llama31(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                    Pieces& p);

}  // namespace kaizen::text::chat_impl
