// NFC normalization (the "NFC" normalizer of tokenizer.json) via ICU, on UTF-8 directly.
#pragma once

#include <string>
#include <string_view>

namespace kaizen::text {

// Returns `in` itself when it is already NFC (always for ASCII, the common case),
// otherwise its NFC form written into `scratch`. Ill-formed UTF-8 bytes are kept as they
// are; only the well-formed runs between them are normalized.
std::string_view nfc(std::string_view in, std::string& scratch);

}  // namespace kaizen::text
