// GPT-2's byte-level alphabet: every byte maps to one printable code point, so a BPE
// vocabulary over these code points covers any byte string. Printable Latin-1 bytes map
// to themselves; the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) map to U+0100..
// in byte order (so ' ' -> 'Ġ', '\n' -> 'Ċ').
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace kaizen::text::byte_level {

// The code point byte b is written as.
char32_t char_of_byte(unsigned char b);

// The byte code point c stands for, or -1 if c is outside the alphabet.
int byte_of_char(char32_t c);

// Raw bytes -> byte-level string (UTF-8 of the mapped code points).
std::string encode(std::string_view bytes);

// Byte-level string -> raw bytes, as HF's ByteLevel decoder does per token: if every code
// point of `token` is in the alphabet the mapped bytes are appended, otherwise the token's
// own UTF-8 bytes are (added tokens like "<|im_end|>" are plain ASCII and map to
// themselves either way). Returns false when the fallback was used.
bool decode_token(std::string_view token, std::string& out);

}  // namespace kaizen::text::byte_level
