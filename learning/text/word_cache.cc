#include "learning/text/word_cache.h"

#include <cstring>
#include <functional>

namespace kaizen::text {

WordCache::WordCache(WordCacheOptions options) : options_(options) {
  size_t per_shard = options_.max_entries / kShards + 1;
  slots_per_shard_ = 1;
  while (slots_per_shard_ < per_shard * 2) slots_per_shard_ <<= 1;
}

bool WordCache::lookup(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty() || word.size() > options_.max_word_bytes) return false;
  const uint64_t h = std::hash<std::string_view>{}(word);
  Shard& s = shard_of(h);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.slots.empty()) return false;
  const size_t mask = slots_per_shard_ - 1;
  for (size_t i = (h / kShards) & mask;; i = (i + 1) & mask) {
    const Slot& slot = s.slots[i];
    if (slot.key_len == 0) return false;
    if (slot.hash == h && slot.key_len == word.size() &&
        std::memcmp(s.keys.data() + slot.key_off, word.data(), word.size()) == 0) {
      out.insert(out.end(), s.ids.begin() + slot.ids_off,
                 s.ids.begin() + slot.ids_off + slot.ids_len);
      return true;
    }
  }
}

void WordCache::insert(std::string_view word, const int32_t* ids, size_t n) const {
  if (word.empty() || word.size() > options_.max_word_bytes) return;
  const uint64_t h = std::hash<std::string_view>{}(word);
  Shard& s = shard_of(h);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.slots.empty() || s.used * 2 >= slots_per_shard_) {
    // Full: start over. Cheaper than LRU bookkeeping and just as good for text whose
    // frequent words come back within a few thousand pre-tokens.
    s.slots.assign(slots_per_shard_, Slot{});
    s.keys.clear();
    s.ids.clear();
    s.used = 0;
  }
  const size_t mask = slots_per_shard_ - 1;
  size_t i = (h / kShards) & mask;
  for (;; i = (i + 1) & mask) {
    const Slot& slot = s.slots[i];
    if (slot.key_len == 0) break;
    if (slot.hash == h && slot.key_len == word.size() &&
        std::memcmp(s.keys.data() + slot.key_off, word.data(), word.size()) == 0) {
      return;  // another thread got here first
    }
  }
  Slot& slot = s.slots[i];
  slot.hash = h;
  slot.key_off = static_cast<uint32_t>(s.keys.size());
  slot.key_len = static_cast<uint32_t>(word.size());
  slot.ids_off = static_cast<uint32_t>(s.ids.size());
  slot.ids_len = static_cast<uint32_t>(n);
  s.keys.append(word);
  s.ids.insert(s.ids.end(), ids, ids + n);
  ++s.used;
}

}  // namespace kaizen::text
