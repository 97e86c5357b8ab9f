// SHA-256 (FIPS 180-4), used for content-hash keys. Small and dependency-free; not a
// security boundary, just a collision-resistant name for an example's content.
#pragma once

#include <string>
#include <string_view>

namespace kaizen::storage {

// 32 raw digest bytes.
std::string sha256(std::string_view data);
// Lowercase hex of raw bytes (for messages and tests).
std::string to_hex(std::string_view bytes);

}  // namespace kaizen::storage
