#include "learning/text/byte_level.h"

#include "learning/text/utf8.h"

namespace kaizen::text::byte_level {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // code points < 0x144 cover the whole alphabet

  Tables() {
    to_byte.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t char_of_byte(unsigned char b) {
  return tables().to_char[b];
}

int byte_of_char(char32_t c) {
  return c < tables().to_byte.size() ? tables().to_byte[c] : -1;
}

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8::append_codepoint(char_of_byte(b), out);
  return out;
}

bool decode_token(std::string_view token, std::string& out) {
  const size_t mark = out.size();
  size_t i = 0, len = 0;
  while (i < token.size()) {
    int b = -1;
    if (utf8::next_sequence(token, i, &len) == utf8::Seq::kValid) {
      b = byte_of_char(utf8::decode_at(token, i, len));
    }
    if (b < 0) {
      out.resize(mark);
      out.append(token);
      return false;
    }
    out.push_back(static_cast<char>(b));
    i += len;
  }
  return true;
}

}  // namespace kaizen::text::byte_level
