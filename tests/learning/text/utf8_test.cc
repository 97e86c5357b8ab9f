// UTF-8 repair must match WHATWG/Unicode "maximal subpart" replacement, which is what
// HF's decoder (Rust from_utf8_lossy) and JavaScript's TextDecoder produce.
#include <gtest/gtest.h>

#include "learning/text/byte_level.h"
#include "learning/text/utf8.h"

namespace kaizen::text {
namespace {

const std::string R = "\xEF\xBF\xBD";

std::string lossy(const std::string& s) {
  std::string out;
  utf8::append_lossy(s, out);
  return out;
}

TEST(Utf8, MaximalSubparts) {
  EXPECT_EQ(lossy("abc"), "abc");
  EXPECT_EQ(lossy("\xFF"), R);
  EXPECT_EQ(lossy("\xE6\x97"), R);  // truncated 3-byte sequence: one U+FFFD
  EXPECT_EQ(lossy("\xE6\x97"
                  "a"),
            R + "a");
  EXPECT_EQ(lossy("\xC0\xAF"), R + R);          // overlong lead: each byte
  EXPECT_EQ(lossy("\xED\xA0\x80"), R + R + R);  // surrogate: ED is valid, A0 is not
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), R + R + R + R);
  EXPECT_EQ(lossy("\xF0\x9F\x98"), R);
  EXPECT_EQ(lossy("\x80\x80"), R + R);
  EXPECT_EQ(lossy("é\xF0\x9F\x98\x80"), "é😀");
}

TEST(Utf8, AppendCompleteHoldsBackOnlyCompletableTails) {
  std::string out;
  EXPECT_EQ(utf8::append_complete("ab\xF0\x9F", out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(utf8::append_complete("ab\xF0\x41", out), 4u);  // cannot complete: replaced now
  EXPECT_EQ(out, "ab" + R + "A");
}

TEST(ByteLevel, AlphabetIsGpt2s) {
  EXPECT_EQ(byte_level::encode(" "), "Ġ");
  EXPECT_EQ(byte_level::encode("\n"), "Ċ");
  EXPECT_EQ(byte_level::encode("a"), "a");
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(byte_level::byte_of_char(byte_level::char_of_byte(static_cast<unsigned char>(b))), b);
  }
  std::string out;
  EXPECT_TRUE(byte_level::decode_token("ĠhelloĊ", out));
  EXPECT_EQ(out, " hello\n");
  out.clear();
  EXPECT_FALSE(byte_level::decode_token("a b", out));  // ' ' is not in the alphabet: raw bytes
  EXPECT_EQ(out, "a b");
}

}  // namespace
}  // namespace kaizen::text
