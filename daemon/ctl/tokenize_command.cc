// kaizenctl tokenize | detokenize: offline, straight through learning/text with the model
// directory's tokenizer.json (no daemon needed).
//
//   kaizenctl tokenize   --model DIR --text T [--no-special] [--json]
//   kaizenctl detokenize --model DIR --ids 1,2,3 | --ids '[1,2,3]' | '[1,2,3]'
//                        [--skip-special] [--json]
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "daemon/ctl/command.h"
#include "daemon/ctl/flags.h"
#include "learning/text/tokenizer.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;
using text::Tokenizer;
using text::TokenizerError;

const char* kTokenizeUsage =
    "kaizenctl tokenize --model DIR --text T [--no-special] [--json]\n"
    "  Prints the token ids of T as a JSON array (--json: {\"ids\", \"tokens\", \"count\"}).\n"
    "  --no-special encodes special tokens written in T (<|im_end|>, ...) as plain text.\n"
    "Exit codes: 0 ok, 1 unreadable tokenizer.json, 2 usage, 3 DIR or DIR/tokenizer.json "
    "missing.\n";
const char* kDetokenizeUsage =
    "kaizenctl detokenize --model DIR --ids 1,2,3 [--skip-special] [--json]\n"
    "  Prints the text of the ids (also as --ids '[1,2,3]' or a JSON array argument);\n"
    "  --json prints {\"text\": ...}. --skip-special drops special tokens.\n"
    "Exit codes: 0 ok, 1 unreadable tokenizer.json, 2 usage or ids not integers / out of\n"
    "range, 3 DIR or DIR/tokenizer.json missing.\n";

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Loads DIR/tokenizer.json, or prints why not and sets *rc.
std::shared_ptr<const Tokenizer> load(const std::string& cmd, const std::string& dir, int* rc) {
  if (!exists(dir) || !exists(dir + "/tokenizer.json")) {
    std::fprintf(
        stderr, "kaizenctl %s: %s\n", cmd.c_str(),
        (!exists(dir) ? dir + ": model directory does not exist" : dir + "/tokenizer.json: missing")
            .c_str());
    *rc = kExitNotFound;
    return nullptr;
  }
  try {
    return Tokenizer::from_model_dir(dir);
  } catch (const TokenizerError& e) {
    std::fprintf(stderr, "kaizenctl %s: %s\n", cmd.c_str(), e.what());
    *rc = kExitFailure;
    return nullptr;
  }
}

int64_t parse_id(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
  const std::string t = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  if (t.empty()) throw FlagError("empty token id in --ids");
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) throw FlagError("token id is not an integer: '" + t + "'");
  return v;
}

// "1,2,3" or "[1, 2, 3]".
std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> ids;
  const size_t first = s.find_first_not_of(" \t\n");
  if (first != std::string::npos && s[first] == '[') {
    json j;
    try {
      j = json::parse(s);
    } catch (const json::exception&) {
      throw FlagError("ids are not a valid JSON array: '" + s + "'");
    }
    for (const auto& v : j) {
      if (!v.is_number_integer()) throw FlagError("token id is not an integer: " + v.dump());
      ids.push_back(v.get<int64_t>());
    }
    return ids;
  }
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    ids.push_back(
        parse_id(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int tokenize_command(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(kTokenizeUsage, stdout);
    return kExitOk;
  }
  try {
    Flags f(args, {"model", "text"}, {"no-special"});
    if (!f.positional().empty()) throw FlagError("unexpected argument '" + f.positional()[0] + "'");
    const std::string dir = f.require("model");
    const std::string text = f.require("text");
    int rc = kExitOk;
    auto tok = load("tokenize", dir, &rc);
    if (!tok) return rc;
    const auto ids = tok->encode(text, /*parse_special=*/!f.has("no-special"));
    if (f.json()) {
      json tokens = json::array();
      for (int32_t id : ids) tokens.push_back(tok->id_to_token(id));
      // Byte-level token texts may be partial UTF-8 only in exotic vocabs; never throw here.
      std::cout << json{{"ids", ids}, {"tokens", tokens}, {"count", ids.size()}}.dump(
                       -1, ' ', false, json::error_handler_t::replace)
                << "\n";
    } else {
      std::cout << json(ids).dump() << "\n";
    }
    return kExitOk;
  } catch (const FlagError& e) {
    std::fprintf(stderr, "kaizenctl tokenize: %s\n\n%s", e.what(), kTokenizeUsage);
    return kExitUsage;
  }
}

int detokenize_command(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(kDetokenizeUsage, stdout);
    return kExitOk;
  }
  try {
    Flags f(args, {"model", "ids"}, {"skip-special"});
    std::string ids_text;
    if (f.has("ids")) {
      if (!f.positional().empty())
        throw FlagError("unexpected argument '" + f.positional()[0] + "'");
      ids_text = f.get("ids");
    } else if (f.positional().size() == 1) {
      ids_text = f.positional()[0];  // `--json '[1,2,3]'`
    } else {
      throw FlagError(f.positional().empty() ? "--ids is required" : "too many arguments");
    }
    const std::string dir = f.require("model");
    const std::vector<int64_t> ids = parse_ids(ids_text);
    int rc = kExitOk;
    auto tok = load("detokenize", dir, &rc);
    if (!tok) return rc;
    std::vector<int32_t> ids32;
    for (int64_t id : ids) {
      if (id < 0 || id >= tok->vocab_size()) {
        throw FlagError("token id " + std::to_string(id) + " out of range [0, " +
                        std::to_string(tok->vocab_size()) + ")");
      }
      ids32.push_back(static_cast<int32_t>(id));
    }
    const std::string out = tok->decode(ids32, f.has("skip-special"));
    if (f.json()) {
      std::cout << json{{"text", out}}.dump() << "\n";
    } else {
      std::cout << out << "\n";
    }
    return kExitOk;
  } catch (const FlagError& e) {
    std::fprintf(stderr, "kaizenctl detokenize: %s\n\n%s", e.what(), kDetokenizeUsage);
    return kExitUsage;
  }
}

}  // namespace
}  // namespace kaizen::ctl

KAIZEN_CTL_COMMAND("tokenize", "token ids of a text with a model's tokenizer (offline)",
                   kaizen::ctl::tokenize_command);
KAIZEN_CTL_COMMAND("detokenize", "text of token ids with a model's tokenizer (offline)",
                   kaizen::ctl::detokenize_command);
