// One line of OpenAI's chat fine-tuning JSONL -> the messages of an example. The parser
// behind knowledge import (storage/import.h) and `kaizenctl` data checks, kept free of
// RocksDB so that it is fuzzed on its own (tests/fuzz/fuzz_chat_line.cc).
#pragma once

#include <string>

#include "storage/records.h"
#include "storage/status.h"

namespace kaizen::storage {

// Parses one JSONL line into out->messages, out->paraphrases (the optional top-level
// "paraphrases": other wordings of the last user message, held out for the gate) and
// out->tools_json (the optional top-level "tools" list, as OpenAI's fine-tuning format
// has it for function calling: assistant messages may carry "tool_calls" instead of
// content, "tool" messages answer them by "tool_call_id"); InvalidArgument with the
// reason otherwise. Other fields of *out are left alone.
Status parse_chat_line(const std::string& line, Example* out);

}  // namespace kaizen::storage
