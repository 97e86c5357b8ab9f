#include "learning/text/added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "learning/text/utf8.h"

namespace kaizen::text {

namespace {

// \w of the regex crate HF uses for single_word: alphabetic, marks, digits, connector
// punctuation, join controls.
bool is_word_char(char32_t c) {
  if (c < 0x80)
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC)) return true;
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_JOIN_CONTROL)) return true;
  const int8_t t = u_charType(static_cast<UChar32>(c));
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION;
}

char32_t char_at(std::string_view s, size_t i, size_t* len) {
  if (utf8::next_sequence(s, i, len) == utf8::Seq::kValid) return utf8::decode_at(s, i, *len);
  return 0xFFFD;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (uint32_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](uint32_t a, uint32_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

void AddedTokenMatcher::split(std::string_view text, bool parse_special,
                              std::vector<TextPiece>& out) const {
  size_t emitted = 0;  // text before this is already in out
  size_t pos = 0;
  const size_t n = text.size();
  while (pos < n) {
    const auto& bucket = by_first_byte_[static_cast<unsigned char>(text[pos])];
    const AddedToken* hit = nullptr;
    for (uint32_t idx : bucket) {
      const std::string& c = tokens_[idx].content;
      if (c.size() <= n - pos && text.compare(pos, c.size(), c) == 0) {
        hit = &tokens_[idx];
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + hit->content.size();
    pos = stop;  // like an Aho-Corasick iterator, a rejected match is still consumed
    if (hit->special && !parse_special) continue;
    if (hit->single_word) {
      size_t b = 0, len = 0;
      const bool word_before = start > 0 && is_word_char(utf8::decode_before(text, start, &b));
      const bool word_after = stop < n && is_word_char(char_at(text, stop, &len));
      if (word_before || word_after) continue;
    }
    if (hit->lstrip) {
      size_t b = 0;
      while (start > emitted && utf8::is_whitespace(utf8::decode_before(text, start, &b)))
        start = b;
    }
    if (hit->rstrip) {
      size_t len = 0;
      while (stop < n && utf8::is_whitespace(char_at(text, stop, &len))) stop += len;
      pos = stop;
    }
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), hit->id});
    emitted = stop;
  }
  if (emitted < n) out.push_back({text.substr(emitted), -1});
}

}  // namespace kaizen::text
