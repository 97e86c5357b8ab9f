// Added tokens (special tokens like <|im_end|> and extra vocabulary like <think>) are cut
// out of the text before normalization and BPE, as HF tokenizers' AddedVocabulary does:
// leftmost-longest matching, then the token's single_word / lstrip / rstrip rules.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kaizen::text {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;  // match only when not inside a word
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool normalized = false;   // matched against the normalized text instead of the raw text
  bool special = false;      // skipped by decode(skip_special); not matched when !parse_special
};

struct TextPiece {
  std::string_view text;
  int32_t id = -1;  // the added token this piece is, or -1 for plain text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  bool empty() const { return tokens_.empty(); }

  // Appends the pieces of `text` (plain text and added tokens, in order, covering all of
  // `text`) to out. With parse_special false, special tokens are not matched and stay
  // plain text (HF's split_special_tokens / encode_special_tokens).
  void split(std::string_view text, bool parse_special, std::vector<TextPiece>& out) const;

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // indexes, longest content first
};

}  // namespace kaizen::text
