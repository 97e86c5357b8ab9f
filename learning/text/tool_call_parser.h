// Streaming parser that turns a model's answer back into tool calls, in the format its chat
// template taught it (see chat_template.h):
//   Hermes (kQwen3, kChatML):  text? <tool_call>\n{"name": "N", "arguments": {...}}\n</tool_call>
//                              (\n<tool_call>...</tool_call>)*  — whitespace around the JSON is
//                              lenient; "arguments" (or "parameters") may be an object or a
//                              string; a block whose JSON does not parse, is not an object or
//                              lacks a string "name" comes back as text unchanged.
//   Llama (kLlama31, kLlama3): the whole answer is {"name": "N", "parameters": {...}}
//                              (optionally after <|python_tag|>; several joined by ';' as
//                              Llama-3.1 sometimes writes them); an answer that does not start
//                              with '{' (after whitespace / the tag) streams as text, one that
//                              does is held until its object closes and is text unless it is
//                              an object with a string "name" and "parameters"/"arguments".
// Arguments come back as JSON text: an object (or any non-string value) as
// json.dumps(args, ensure_ascii=False) writes it (py_json_dumps, ", " / ": " separators, key
// order kept: exactly what the template prints back when the client returns the string), a
// string verbatim, a missing or null one as "{}".
//
// Whitespace that the template writes between content and calls is not content: in the
// Hermes format whitespace right before a <tool_call>, between calls and after the last call
// is dropped, so "Let me check.\n<tool_call>..." gives the text "Let me check." and a call,
// which render back to the same bytes. To know that, trailing whitespace is held back until
// non-whitespace text follows (or finish()); otherwise only what could still become a tag
// ("<", "<tool_c", ...) and an incomplete UTF-8 sequence at the end is held.
//
// Never throws for any model output. Not thread-safe (one per answer).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "learning/text/chat_template.h"

namespace kaizen::text {

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON text (see above)
};

class ToolCallParser {
 public:
  explicit ToolCallParser(TemplateKind kind);

  struct Event {
    std::string text;                    // plain text safe to stream (when call is empty)
    std::optional<ParsedToolCall> call;  // a complete tool call
  };

  // Feeds the next piece of model output (UTF-8, may split tags and characters anywhere);
  // returns what is now known, in order. The concatenated texts and calls do not depend on
  // how the output was split (only how text is cut into events does).
  std::vector<Event> push(std::string_view delta);
  // End of output: pending text flushed; an unterminated or malformed call becomes text.
  // The parser is done afterwards (push/finish again return nothing new).
  std::vector<Event> finish();
  // A call has been returned.
  bool saw_call() const { return saw_call_; }

 private:
  enum class Format { kHermes, kLlamaJson };
  // Hermes: kText / kInCall. Llama: kStart (answer's beginning not yet seen), kJson (inside
  // the object), kAfterCall (a call returned; ';' may start another), kText (plain answer).
  enum class State { kStart, kText, kInCall, kJson, kAfterCall, kDone };

  void drain_hermes(bool final, std::vector<Event>& out);
  void drain_llama(bool final, std::vector<Event>& out);
  // Emits buf_[0, n) as text (n shortened so that no incomplete UTF-8 sequence is cut
  // unless `final`) and erases it from buf_.
  void emit_text(size_t n, bool final, std::vector<Event>& out);
  void emit_call(ParsedToolCall call, std::vector<Event>& out);

  Format format_;
  State state_;
  std::string buf_;          // output not yet returned
  std::string separator_;    // Hermes: whitespace dropped before the open <tool_call>
  bool after_call_ = false;  // Hermes: only whitespace since the last call
  size_t scan_ = 0;          // where the search for the end of the call / object goes on in buf_
  int depth_ = 0;            // Llama kJson: the object's nesting depth at scan_
  bool in_string_ = false, escape_ = false;
  bool saw_call_ = false;
};

}  // namespace kaizen::text
