// UTF-8 helpers shared by the tokenizer, the stream decoder and the chat templates.
// Ill-formed input is replaced the way Unicode (§3.9, "maximal subparts") and WHATWG
// TextDecoder do, which is also what Rust's String::from_utf8_lossy (HF tokenizers) does:
// each maximal ill-formed subpart becomes one U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kaizen::text::utf8 {

enum class Seq { kValid, kInvalid, kTruncated };

// Classifies the sequence starting at s[i] (i < s.size()). *len receives the length of
// the valid sequence (kValid), of the maximal ill-formed subpart (kInvalid), or of the
// valid-so-far prefix that runs into the end of s (kTruncated).
inline Seq next_sequence(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  const unsigned char b = p[i];
  if (b < 0x80) {
    *len = 1;
    return Seq::kValid;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
    need = 2;
  } else if (b == 0xED) {
    need = 2, hi = 0x9F;  // no UTF-16 surrogates
  } else if (b == 0xF0) {
    need = 3, lo = 0x90;
  } else if (b >= 0xF1 && b <= 0xF3) {
    need = 3;
  } else if (b == 0xF4) {
    need = 3, hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *len = 1;
    return Seq::kInvalid;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= n) {
      *len = k;
      return Seq::kTruncated;
    }
    const unsigned char c = p[i + k];
    if (c < lo || c > hi) {
      *len = k;
      return Seq::kInvalid;
    }
    lo = 0x80, hi = 0xBF;
  }
  *len = need + 1;
  return Seq::kValid;
}

// Appends `in` to `out`, each maximal ill-formed subpart (including a truncated final
// sequence) replaced by U+FFFD.
void append_lossy(std::string_view in, std::string& out);

// Streaming form: appends the decodable prefix of `in` (ill-formed parts as U+FFFD) and
// returns how many bytes of `in` it consumed. A trailing sequence that could still be
// completed by more bytes is not consumed.
size_t append_complete(std::string_view in, std::string& out);

bool is_valid(std::string_view s);

inline bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Decodes the valid sequence at s[i] of length len (from next_sequence).
char32_t decode_at(std::string_view s, size_t i, size_t len);

// The code point that ends just before s[end] (0xFFFD if ill-formed); *start receives
// where it begins. end > 0.
char32_t decode_before(std::string_view s, size_t end, size_t* start);

void append_codepoint(char32_t cp, std::string& out);

// Unicode White_Space (what Rust's char::is_whitespace and \s in HF's regexes use).
bool is_whitespace(char32_t cp);

}  // namespace kaizen::text::utf8
