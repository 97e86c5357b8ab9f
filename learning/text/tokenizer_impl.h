// Internals of Tokenizer shared by its loader (tokenizer_json.cc) and its encode/decode
// (tokenizer.cc). Not part of the public API.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "learning/text/added_tokens.h"
#include "learning/text/bpe_model.h"
#include "learning/text/regex_splitter.h"
#include "learning/text/tokenizer.h"

namespace kaizen::text {

// One pre-tokenizer step: split each piece with `regex` (if any). The ByteLevel step may
// also prefix a space to each piece before splitting (add_prefix_space).
struct PreTokenizerStep {
  std::unique_ptr<RegexSplitter> regex;
  bool add_prefix_space = false;
};

struct Tokenizer::Impl {
  std::string path;
  bool nfc = false;
  std::vector<PreTokenizerStep> steps;
  std::unique_ptr<BpeModel> bpe;
  AddedTokenMatcher raw_added;         // added tokens with normalized=false
  AddedTokenMatcher normalized_added;  // added tokens with normalized=true
  std::unordered_map<std::string, int32_t> token_to_id;
  std::vector<std::string> id_to_token;  // "" = no token with this id
  std::vector<std::string> id_bytes;     // what decode emits for each id
  std::vector<uint8_t> flags;            // kAdded | kSpecial
  static constexpr uint8_t kAdded = 1, kSpecial = 2;
};

std::unique_ptr<Tokenizer::Impl> load_tokenizer_json(const std::string& path);
// The same from text already in memory; `path` names it in errors.
std::unique_ptr<Tokenizer::Impl> parse_tokenizer_json(std::string_view text,
                                                      const std::string& path);

}  // namespace kaizen::text
