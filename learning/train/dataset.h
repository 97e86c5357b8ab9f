// Training examples from OpenAI chat fine-tuning JSONL: one object per line,
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "...", "weight": 0|1?}, ...]}
// Each assistant message (unless "weight": 0) becomes one example: the conversation up to
// and including it, rendered by the model's chat template exactly as at inference time
// (Qwen3: the non-thinking form), with the loss on that answer's tokens and its
// end-of-turn token only (ChatTemplate::render_segments).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"

namespace kaizen::train {

struct DatasetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Example {
  std::vector<int64_t> ids;   // prompt + answer tokens
  std::vector<uint8_t> loss;  // loss[t] = 1: ids[t] is a target (predicted at position t-1)
  // For evaluation: the messages before the answer and the answer text.
  std::vector<text::ChatMessage> prompt;
  std::string answer;
  std::vector<nlohmann::ordered_json> tools;  // shown in the prompt (function calling)
  int64_t line = 0;  // 1-based source line (0 when built in code)

  int64_t length() const { return static_cast<int64_t>(ids.size()); }
  int64_t target_tokens() const;
};

struct BadLine {
  int64_t line;        // 1-based
  std::string reason;  // e.g. "invalid JSON: ...", "message 2: role 'bot' is not ..."
};

struct DatasetOptions {
  int64_t max_len = 2048;  // tokens per example; longer ones keep their first max_len tokens
  bool strict = false;     // any bad line makes load_chat_jsonl throw (naming them all)
};

struct Dataset {
  std::vector<Example> examples;
  std::vector<BadLine> bad_lines;  // skipped (never when strict: that throws)
  int64_t lines = 0;               // non-empty lines read
  int64_t truncated = 0;           // examples cut to max_len (they keep their answer's start)
  int64_t dropped_empty = 0;       // examples with no answer token left after truncation
  int64_t target_tokens() const;
  int64_t tokens() const;
};

// Parses one JSONL record (OpenAI's chat fine-tuning format) into messages; throws
// std::invalid_argument with the reason (invalid JSON, no "messages" list, a message
// without string role/content, an unknown role, no assistant message). weights[i] = the
// message's "weight" (default 1). Function calling as OpenAI documents it for fine-tuning:
// a top-level "tools" list (into *tools, key order kept: the template shows it), assistant
// messages with "tool_calls" ([{id, type: "function", function: {name, arguments}}],
// content then optional), "tool" messages with "tool_call_id" and content. The answer to
// learn may be a tool call: the model learns to write it as its template renders it.
std::vector<text::ChatMessage> parse_chat_record(const std::string& line, std::vector<int>* weights = nullptr,
                                                 std::vector<nlohmann::ordered_json>* tools = nullptr);

// Renders and tokenizes the conversation whose last message is the assistant answer
// (with the request's tools shown as the template shows them). Truncates to max_len
// (right side); `truncated` (optional) tells whether it did. Example::answer is the
// answer's content, or for a tool-call answer the text the template renders for it.
Example encode_example(const std::vector<text::ChatMessage>& messages, const text::Tokenizer& tokenizer,
                       const text::ChatTemplate& chat_template, int64_t max_len, bool* truncated = nullptr,
                       const std::vector<nlohmann::ordered_json>& tools = {});

// Reads a JSONL file. Empty lines are ignored. Throws DatasetError when the file cannot be
// read, when strict and any line is bad (the message lists line numbers and reasons), or
// when no example is left.
Dataset load_chat_jsonl(const std::string& path, const text::Tokenizer& tokenizer,
                        const text::ChatTemplate& chat_template, const DatasetOptions& options = {});

}  // namespace kaizen::train
