// Byte-level BPE: a pre-token's bytes start as one symbol each and the adjacent pair with
// the lowest merge rank is merged until no pair has a rank (ties: leftmost first), which
// is what HF tokenizers' BPE model does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "learning/text/word_cache.h"

namespace kaizen::text {

class BpeModel {
 public:
  // vocab: token in the byte-level alphabet -> id. merges: pairs of vocab tokens, rank =
  // position. ignore_merges: a pre-token that is itself in the vocab maps to that id
  // directly (Llama-3 sets this). Throws TokenizerError naming `file` when a merge or a
  // byte is missing from the vocab.
  BpeModel(const std::unordered_map<std::string, int32_t>& vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
           const std::string& file);

  // Appends the ids of one pre-token (raw bytes) to out. Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    uint64_t key = ~0ull;  // (left << 32) | right; ~0 = empty
    int32_t rank = 0;
    int32_t result = 0;
  };
  const Merge* find_merge(int32_t left, int32_t right) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t byte_id_[256];
  std::vector<Merge> merges_;  // open addressing, power-of-two size
  uint64_t merge_mask_ = 0;
  bool ignore_merges_;
  std::unordered_map<std::string, int32_t> bytes_to_id_;  // raw bytes -> id, for ignore_merges
  WordCache cache_;
};

}  // namespace kaizen::text
