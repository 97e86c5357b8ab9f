// Per-tokenizer precomputation for constrained decoding: the tokens' byte strings in a trie
// walked depth-first by the matcher, and the classification of tokens that are plain JSON
// string text, which the matcher accepts as one block inside a string instead of walking.
// Built once per tokenizer (~0.3 s for Qwen3's 151k tokens), then immutable and shared by
// all threads.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "learning/grammar/grammar.h"

namespace kaizen::text {
class Tokenizer;
}

namespace kaizen::grammar {

// A byte trie over token strings, stored as its nodes in depth-first preorder so that a walk
// is a loop over an array: node i's subtree is [i, subtree_end), its parent is the last node
// before it with depth - 1. Depth 1 is a token's first byte.
class TokenTrie {
 public:
  struct Node {
    int32_t subtree_end;   // the first node after this node's subtree
    int32_t tokens_begin;  // this node's tokens are tokens_[tokens_begin, next node's)
    uint16_t depth;
    uint8_t byte;
  };

  TokenTrie() = default;
  // The trie of `ids`, each standing for token_bytes[id] (non-empty, < 65536 bytes).
  TokenTrie(const std::vector<std::string>& token_bytes, std::vector<int32_t> ids);

  int32_t size() const { return static_cast<int32_t>(nodes_.size()) - 1; }
  int32_t max_depth() const { return max_depth_; }
  const Node& node(int32_t i) const { return nodes_[i]; }
  // The tokens whose bytes end at node i (more than one only if a vocab repeats a string).
  Span<int32_t> tokens(int32_t i) const {
    return {tokens_.data() + nodes_[i].tokens_begin, tokens_.data() + nodes_[i + 1].tokens_begin};
  }

 private:
  std::vector<Node> nodes_;      // plus a sentinel
  std::vector<int32_t> tokens_;  // ids in trie order
  int32_t max_depth_ = 0;
};

class Vocab {
 public:
  // token_bytes[id] = the bytes token id stands for; an empty string = never allowed (special
  // tokens, EOS: the caller handles EOS). Throws std::invalid_argument for a token of 65536
  // bytes or more.
  explicit Vocab(std::vector<std::string> token_bytes);
  // Special and added-special tokens get "" (never allowed); added non-special tokens such as
  // Qwen3's <tool_call> keep their text.
  static std::shared_ptr<const Vocab> from_tokenizer(const text::Tokenizer& tok);
  // The same, padded with never-allowed ids up to the model's embedding size (Qwen3: 151936
  // logits for 151669 tokenizer ids), so that a mask covers every logit.
  static std::shared_ptr<const Vocab> from_tokenizer(const text::Tokenizer& tok,
                                                     int32_t model_vocab_size);

  int32_t size() const { return static_cast<int32_t>(token_bytes_.size()); }
  int32_t mask_words() const { return (size() + 31) / 32; }
  const std::string& token_bytes(int32_t id) const { return token_bytes_[id]; }
  // Whether every byte value is a token of its own. Then the fewest bytes that finish a
  // grammar is also the fewest tokens, which the matcher's token budget relies on; byte-level
  // BPE vocabularies (Qwen, Llama 3, GPT-2) all have the 256.
  bool has_all_single_bytes() const { return single_bytes_.all(); }

  // All tokens with non-empty bytes.
  const TokenTrie& trie() const { return trie_; }

  // Relative to a JSON string body at a character boundary (GrammarBuilder::set_string_body),
  // each token is one of: plain (well-formed UTF-8 of whole characters without '"', '\\' or
  // bytes < 0x20: it stays in the body and adds its code points to the length), dead (a byte
  // < 0x20 or ill-formed UTF-8 comes before any '"' or '\\': never allowed there), or one
  // to walk (a '"' or '\\' comes first, or it ends inside a character).
  const TokenTrie& string_walk_trie() const { return string_walk_trie_; }
  int32_t max_plain_code_points() const {
    return static_cast<int32_t>(plain_by_length_.size()) - 1;
  }
  // ORs into mask the plain tokens of lo..hi code points (1 <= lo). scratch: mask_words()
  // words of working space.
  void add_plain_tokens(int32_t lo, int32_t hi, uint32_t* mask, uint32_t* scratch) const;

 private:
  std::vector<std::string> token_bytes_;
  TokenTrie trie_;
  TokenTrie string_walk_trie_;
  std::vector<uint32_t> plain_mask_;                   // all plain tokens
  std::vector<std::vector<int32_t>> plain_by_length_;  // [code points] -> ids
  std::vector<int64_t> plain_up_to_;                   // [n] -> how many have <= n code points
  std::bitset<256> single_bytes_;
};

}  // namespace kaizen::grammar
