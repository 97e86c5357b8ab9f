// Bounded, thread-safe cache from a pre-token's bytes to its BPE ids. Natural text repeats
// words constantly, so most pre-tokens skip the merge loop. Lookups never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kaizen::text {

struct WordCacheOptions {
  size_t max_entries = 1 << 16;  // across all shards; a full shard is cleared, not evicted
  size_t max_word_bytes = 64;    // longer pre-tokens are not cached (rare, and costly to keep)
};

class WordCache {
 public:
  explicit WordCache(WordCacheOptions options = {});

  // Appends the cached ids of `word` to `out` and returns true, or returns false.
  bool lookup(std::string_view word, std::vector<int32_t>& out) const;
  void insert(std::string_view word, const int32_t* ids, size_t n) const;

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = 0;  // into Shard::keys; key_len 0 = empty slot
    uint32_t ids_off = 0, ids_len = 0;  // into Shard::ids
  };
  struct Shard {
    mutable std::mutex mu;  // guards everything below
    std::vector<Slot> slots;
    std::string keys;
    std::vector<int32_t> ids;
    size_t used = 0;
  };
  static constexpr size_t kShards = 16;

  Shard& shard_of(uint64_t hash) const { return shards_[hash % kShards]; }

  WordCacheOptions options_;
  size_t slots_per_shard_;  // power of two, twice the entries a shard may hold
  mutable Shard shards_[kShards];
};

}  // namespace kaizen::text
