#include "learning/grammar/vocab.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "learning/text/tokenizer.h"
#include "learning/text/utf8.h"

namespace kaizen::grammar {

namespace {

enum class InString { kPlain, kDead, kWalk };

// How a token behaves from a JSON string body at a character boundary; *code_points gets a
// plain token's length.
InString classify_in_string(const std::string& bytes, int32_t* code_points) {
  int32_t n = 0;
  for (size_t i = 0; i < bytes.size();) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b == '"' || b == '\\') return InString::kWalk;
    if (b < 0x20) return InString::kDead;
    size_t len = 1;
    if (b >= 0x80) {
      switch (text::utf8::next_sequence(bytes, i, &len)) {
        case text::utf8::Seq::kValid:
          break;
        case text::utf8::Seq::kTruncated:
          return InString::kWalk;
        case text::utf8::Seq::kInvalid:
          return InString::kDead;
      }
    }
    i += len;
    ++n;
  }
  *code_points = n;
  return InString::kPlain;
}

}  // namespace

TokenTrie::TokenTrie(const std::vector<std::string>& token_bytes, std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return token_bytes[a] != token_bytes[b] ? token_bytes[a] < token_bytes[b] : a < b;
  });
  std::vector<int32_t> path;  // open nodes, path[d - 1] at depth d
  const std::string* prev = nullptr;
  for (int32_t id : ids) {
    const std::string& s = token_bytes[id];
    if (s.empty() || s.size() > 0xFFFF) {
      throw std::invalid_argument("vocab: token " + std::to_string(id) +
                                  " is empty or longer than 65535 bytes");
    }
    size_t common = 0;
    if (prev) {
      while (common < prev->size() && common < s.size() && (*prev)[common] == s[common]) ++common;
    }
    while (path.size() > common) {
      nodes_[path.back()].subtree_end = static_cast<int32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      path.push_back(static_cast<int32_t>(nodes_.size()));
      nodes_.push_back({0, static_cast<int32_t>(tokens_.size()), static_cast<uint16_t>(d + 1),
                        static_cast<uint8_t>(s[d])});
    }
    tokens_.push_back(id);  // belongs to the last node made, the one for all of s
    max_depth_ = std::max(max_depth_, static_cast<int32_t>(s.size()));
    prev = &s;
  }
  for (int32_t n : path) nodes_[n].subtree_end = static_cast<int32_t>(nodes_.size());
  nodes_.push_back(
      {static_cast<int32_t>(nodes_.size()), static_cast<int32_t>(tokens_.size()), 0, 0});
}

Vocab::Vocab(std::vector<std::string> token_bytes) : token_bytes_(std::move(token_bytes)) {
  std::vector<int32_t> all, walk;
  plain_mask_.assign(mask_words(), 0);
  for (int32_t id = 0; id < size(); ++id) {
    const std::string& s = token_bytes_[id];
    if (s.empty()) continue;
    all.push_back(id);
    if (s.size() == 1) single_bytes_.set(static_cast<unsigned char>(s[0]));
    int32_t cps = 0;
    switch (classify_in_string(s, &cps)) {
      case InString::kPlain:
        if (plain_by_length_.size() <= static_cast<size_t>(cps)) plain_by_length_.resize(cps + 1);
        plain_by_length_[cps].push_back(id);
        plain_mask_[id / 32] |= 1u << (id % 32);
        break;
      case InString::kWalk:
        walk.push_back(id);
        break;
      case InString::kDead:
        break;
    }
  }
  if (plain_by_length_.empty()) plain_by_length_.resize(1);
  plain_up_to_.assign(plain_by_length_.size(), 0);
  for (size_t n = 1; n < plain_by_length_.size(); ++n) {
    plain_up_to_[n] = plain_up_to_[n - 1] + static_cast<int64_t>(plain_by_length_[n].size());
  }
  trie_ = TokenTrie(token_bytes_, std::move(all));
  string_walk_trie_ = TokenTrie(token_bytes_, std::move(walk));
}

std::shared_ptr<const Vocab> Vocab::from_tokenizer(const text::Tokenizer& tok) {
  return from_tokenizer(tok, 0);
}

std::shared_ptr<const Vocab> Vocab::from_tokenizer(const text::Tokenizer& tok,
                                                   int32_t model_vocab_size) {
  std::vector<std::string> bytes(std::max(tok.vocab_size(), model_vocab_size));
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (!tok.is_special(id)) bytes[id] = tok.token_bytes(id);
  }
  return std::make_shared<const Vocab>(std::move(bytes));
}

void Vocab::add_plain_tokens(int32_t lo, int32_t hi, uint32_t* mask, uint32_t* scratch) const {
  const int32_t longest = max_plain_code_points();
  lo = std::max(lo, 1);
  hi = std::min(hi, longest);
  if (lo > hi) return;
  const int64_t inside = plain_up_to_[hi] - plain_up_to_[lo - 1];
  auto set_ids = [](const std::vector<int32_t>& ids, uint32_t* m) {
    for (int32_t id : ids) m[id / 32] |= 1u << (id % 32);
  };
  if (inside * 2 < plain_up_to_[longest]) {  // few: set them one by one
    for (int32_t n = lo; n <= hi; ++n) set_ids(plain_by_length_[n], mask);
    return;
  }
  // Many: all plain tokens but the few outside lo..hi.
  const uint32_t* src = plain_mask_.data();
  if (lo > 1 || hi < longest) {
    std::copy(plain_mask_.begin(), plain_mask_.end(), scratch);
    for (int32_t n = 1; n <= longest; ++n) {
      if (n >= lo && n <= hi) continue;
      for (int32_t id : plain_by_length_[n]) scratch[id / 32] &= ~(1u << (id % 32));
    }
    src = scratch;
  }
  for (size_t w = 0; w < plain_mask_.size(); ++w) mask[w] |= src[w];
}

}  // namespace kaizen::grammar
