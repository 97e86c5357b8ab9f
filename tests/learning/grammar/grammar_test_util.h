// Shared helpers for the grammar tests: vocabularies (a tiny byte-level one and the real
// Qwen3 one), matching byte strings, and the Python jsonschema peer
// (tools/ref/json_schema_check.py).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/grammar/grammar.h"
#include "learning/grammar/matcher.h"
#include "learning/grammar/vocab.h"

namespace kaizen::grammar::testing {

std::string source_dir();
// The 256 single bytes (id = byte value) plus `extra` tokens after them.
std::shared_ptr<const Vocab> byte_vocab(const std::vector<std::string>& extra = {});
// The real Qwen3 vocabulary, built once per test binary.
std::shared_ptr<const Vocab> qwen3_vocab();

// Whether the grammar accepts `text` as a complete sentence.
bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text);
// Whether `text` is a prefix of some sentence.
bool is_prefix(const std::shared_ptr<const Grammar>& g, const std::string& text);

// The allowed ids of a mask.
std::vector<int32_t> allowed(const Matcher& m, int64_t tokens_left = 0);

// Whether `python3 -c "import jsonschema"` works.
bool have_python_jsonschema();
// Runs tools/ref/json_schema_check.py on JSON lines; returns one result per line ("ok" or
// the error), or an empty vector after ADD_FAILURE if the script fails.
std::vector<std::string> run_schema_check(const std::vector<nlohmann::json>& lines);

std::string hex(const std::string& bytes);

}  // namespace kaizen::grammar::testing
