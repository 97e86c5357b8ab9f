// One generation's constraint state: which tokens may come next under a grammar, and
// advancing by the token the sampler picked.
//
//   auto m = Matcher(json_schema_grammar(schema), vocab);
//   each step: m.fill_mask(mask, max_tokens - generated); sample among set bits (plus EOS
//              if m.can_finish(); only EOS if m.must_finish()); m.accept_token(id).
//
// fill_mask walks the vocabulary's byte trie depth first with the parse stacks saved per
// depth and pruned at the first refused byte; inside a JSON string it takes the plain-text
// tokens as one precomputed block and walks only the few that contain '"' or '\\' or end
// inside a UTF-8 character. Typical cost on Qwen3's 151k tokens: tens to a few hundred µs
// (bench/grammar_bench.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "learning/grammar/grammar.h"
#include "learning/grammar/parse_stacks.h"
#include "learning/grammar/vocab.h"

namespace kaizen::grammar {

// Not thread-safe (one per sequence; fill_mask uses scratch space too); cheap to create and
// to copy (a copy continues independently).
class Matcher {
 public:
  Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocab> vocab);

  // Sets bit (id % 32) of mask[id / 32] iff token id may come next, and clears all others;
  // mask has (vocab.size() + 31) / 32 words. tokens_left = how many tokens may still be
  // generated, this one included, counting the EOS the caller appends after can_finish().
  // A token is then allowed only if, after it, the grammar can be completed and EOS emitted
  // within the remaining tokens_left - 1: min_bytes_to_finish() after it <= tokens_left - 2.
  // So with a budget the answer is always complete when it runs out (every single byte is a
  // token in byte-level BPE vocabularies, so finishing needs at most min_bytes_to_finish()
  // tokens; with a vocab lacking some single bytes, see Vocab::has_all_single_bytes(), the
  // budget is kept only where the shortest completion uses bytes it has). tokens_left == 1
  // allows nothing (only EOS remains, and can_finish() is true if earlier masks had the
  // budget); tokens_left <= 0 means unlimited.
  void fill_mask(uint32_t* mask, int64_t tokens_left) const;
  // Whether token id may come next, as fill_mask would say, for one token (walks only its
  // bytes): for checking a token sampled without the mask.
  bool allows(int32_t id, int64_t tokens_left) const;

  // Advances by a token; returns false (state unchanged) if the token is not allowed
  // (including ids outside the vocab and tokens with no bytes).
  bool accept_token(int32_t id);
  bool accept_bytes(std::string_view bytes);

  bool can_finish() const { return complete_; }  // the bytes so far are a complete sentence
  bool must_finish() const { return complete_ && tops_.empty(); }  // ... and nothing may follow
  size_t min_bytes_to_finish() const;                              // 0 when can_finish()

  const Grammar& grammar() const { return *grammar_; }
  const Vocab& vocab() const { return *vocab_; }

 private:
  struct Level {        // one depth of the trie walk
    size_t begin, end;  // its positions in walk_tops_
    size_t nodes_end;   // the pool size after computing them
  };
  // Walks `trie` from positions `tops`, setting the bits of tokens that fit in `limit` bytes
  // to finish (fin after the token <= limit).
  void walk(const TokenTrie& trie, const std::vector<int32_t>& tops, int64_t limit,
            uint32_t* mask) const;
  // A string-body position: plain tokens as a block, then the walk trie.
  void fill_in_string(int32_t top, int64_t limit, uint32_t* mask) const;
  int64_t fin_of(size_t begin, size_t end, bool complete) const;

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const Vocab> vocab_;
  mutable ParseStacks stacks_;  // fill_mask appends scratch nodes and truncates them again
  std::vector<int32_t> tops_;   // the current positions
  bool complete_ = false;
  size_t compact_at_ = 1 << 14;  // pool size that triggers compaction
  mutable std::vector<int32_t> walk_tops_, scratch_tops_, one_top_;
  mutable std::vector<Level> levels_;
  mutable std::vector<uint32_t> scratch_mask_;
};

}  // namespace kaizen::grammar
