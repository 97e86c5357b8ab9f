// Key encoding. Every numeric key part is fixed-width big-endian, so RocksDB's
// bytewise comparator orders keys numerically and a prefix scan walks ids in order.
//
// Layout per column family (`T` = one tag byte, `id` = u64 BE):
//   conversations  id                        -> Conversation
//   messages       'm' conversation_id id    -> Message
//                  'x' id                    -> conversation_id (u64 BE)  message index
//   feedback       id                        -> Feedback
//   examples       'e' id                    -> Example
//                  's' state seq             -> id   (index: examples by state, in the
//                                               order they entered it)
//                  'h' sha256(content)       -> id   (index: content dedupe, schema >= 2)
//   replay         'n'                       -> seen count (u64 BE)
//                  'r' slot (u32 BE)         -> ReplayEntry
//   adapters       version                   -> Adapter
//   runs           id                        -> Run
//   meta           "schema_version"          -> u32 BE
//                  "active_adapter"          -> version (u64 BE)
//                  "id/<kind>"               -> first id not yet reserved (u64 BE)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kaizen::storage::keys {

inline void put_u64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
inline void put_u32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
// Reads a u64 BE at `pos`; nullopt if `s` is too short.
inline std::optional<uint64_t> get_u64(std::string_view s, size_t pos = 0) {
  if (s.size() < pos + 8) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}
inline std::optional<uint32_t> get_u32(std::string_view s, size_t pos = 0) {
  if (s.size() < pos + 4) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}

inline std::string u64(uint64_t v) {
  std::string k;
  put_u64(&k, v);
  return k;
}
inline std::string tagged(char tag, uint64_t a) {
  std::string k(1, tag);
  put_u64(&k, a);
  return k;
}
inline std::string tagged(char tag, uint64_t a, uint64_t b) {
  std::string k = tagged(tag, a);
  put_u64(&k, b);
  return k;
}

// Column-family-specific keys (see the layout above).
inline std::string conversation(uint64_t id) {
  return u64(id);
}
inline std::string message(uint64_t conversation_id, uint64_t id) {
  return tagged('m', conversation_id, id);
}
inline std::string message_index(uint64_t id) {
  return tagged('x', id);
}
inline std::string feedback(uint64_t id) {
  return u64(id);
}
inline std::string example(uint64_t id) {
  return tagged('e', id);
}
inline std::string example_state(uint8_t state, uint64_t seq) {
  std::string k{'s', static_cast<char>(state)};
  put_u64(&k, seq);
  return k;
}
inline std::string example_hash(std::string_view sha256_digest) {
  return "h" + std::string(sha256_digest);
}
inline std::string replay_slot(uint32_t slot) {
  std::string k(1, 'r');
  put_u32(&k, slot);
  return k;
}
inline const std::string kReplaySeen = "n";
inline std::string adapter(uint64_t version) {
  return u64(version);
}
inline std::string run(uint64_t id) {
  return u64(id);
}
inline const std::string kSchemaVersion = "schema_version";
inline const std::string kActiveAdapter = "active_adapter";
inline std::string id_counter(std::string_view kind) {
  return "id/" + std::string(kind);
}

// Printable form of a key for error messages: printable ASCII kept, other bytes as \xNN.
std::string printable(std::string_view key);

}  // namespace kaizen::storage::keys
