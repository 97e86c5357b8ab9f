#include "learning/grammar/matcher.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace kaizen::grammar {

namespace {
constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();
}

Matcher::Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocab> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), stacks_(grammar_.get()) {
  if (!grammar_ || !vocab_) throw std::invalid_argument("Matcher: null grammar or vocab");
  stacks_.start(tops_);
}

int64_t Matcher::fin_of(size_t begin, size_t end, bool complete) const {
  if (complete) return 0;
  int64_t fin = Grammar::kInfinite;
  for (size_t i = begin; i < end; ++i) {
    fin = std::min<int64_t>(fin, stacks_.node(walk_tops_[i]).fin);
  }
  return fin;
}

size_t Matcher::min_bytes_to_finish() const {
  if (complete_) return 0;
  int32_t fin = Grammar::kInfinite;
  for (int32_t t : tops_) fin = std::min(fin, stacks_.node(t).fin);
  return static_cast<size_t>(fin);
}

void Matcher::walk(const TokenTrie& trie, const std::vector<int32_t>& tops, int64_t limit,
                   uint32_t* mask) const {
  if (trie.size() == 0 || tops.empty()) return;
  const size_t base = stacks_.pool_size();
  walk_tops_.assign(tops.begin(), tops.end());
  levels_.resize(trie.max_depth() + 1);
  levels_[0] = {0, walk_tops_.size(), base};
  for (int32_t i = 0; i < trie.size();) {
    const TokenTrie::Node& n = trie.node(i);
    const Level parent = levels_[n.depth - 1];
    stacks_.truncate(parent.nodes_end);
    walk_tops_.resize(parent.end);
    const bool complete = stacks_.step(walk_tops_, parent.begin, parent.end, n.byte, walk_tops_);
    const Level cur{parent.end, walk_tops_.size(), stacks_.pool_size()};
    const bool alive = cur.end > cur.begin;
    if (!alive && !complete) {
      i = n.subtree_end;
      continue;
    }
    levels_[n.depth] = cur;
    const Span<int32_t> ids = trie.tokens(i);
    if (ids.size() > 0 && fin_of(cur.begin, cur.end, complete) <= limit) {
      for (int32_t id : ids) mask[id / 32] |= 1u << (id % 32);
    }
    i = alive ? i + 1 : n.subtree_end;
  }
  stacks_.truncate(base);
}

void Matcher::fill_in_string(int32_t top, int64_t limit, uint32_t* mask) const {
  const ParseStacks::Node n = stacks_.node(top);
  const Grammar::Rule& rule = grammar_->rule(grammar_->state(n.state).rule);
  const int64_t below = n.parent >= 0 ? stacks_.node(n.parent).fin : 0;
  const int32_t longest = vocab_->max_plain_code_points();
  // A plain token of k code points leaves the body at count + k, where finishing costs
  // dist(count + k) + below, which shrinks as k grows (a minLength gets closer).
  const int64_t room = rule.max_count == Grammar::kUnbounded
                           ? longest
                           : std::min<int64_t>(longest, rule.max_count - n.count);
  int32_t lo = 1;
  while (limit != kNoLimit && lo <= room && grammar_->dist(n.state, n.count + lo) + below > limit) {
    ++lo;
  }
  scratch_mask_.resize(vocab_->mask_words());
  vocab_->add_plain_tokens(lo, static_cast<int32_t>(room), mask, scratch_mask_.data());
  one_top_.assign(1, top);
  walk(vocab_->string_walk_trie(), one_top_, limit, mask);
}

void Matcher::fill_mask(uint32_t* mask, int64_t tokens_left) const {
  std::memset(mask, 0, sizeof(uint32_t) * vocab_->mask_words());
  const int64_t limit = tokens_left > 0 ? tokens_left - 2 : kNoLimit;
  if (limit < 0) return;
  scratch_tops_.clear();
  for (int32_t t : tops_) {
    if (grammar_->state(stacks_.node(t).state).string_body) {
      fill_in_string(t, limit, mask);
    } else {
      scratch_tops_.push_back(t);
    }
  }
  walk(vocab_->trie(), scratch_tops_, limit, mask);
}

bool Matcher::allows(int32_t id, int64_t tokens_left) const {
  if (id < 0 || id >= vocab_->size()) return false;
  const std::string& bytes = vocab_->token_bytes(id);
  if (bytes.empty()) return false;
  const int64_t limit = tokens_left > 0 ? tokens_left - 2 : kNoLimit;
  if (limit < 0) return false;
  const size_t base = stacks_.pool_size();
  walk_tops_.assign(tops_.begin(), tops_.end());
  size_t begin = 0, end = walk_tops_.size();
  bool complete = false, ok = true;
  for (size_t i = 0; i < bytes.size() && ok; ++i) {
    complete = stacks_.step(walk_tops_, begin, end, static_cast<uint8_t>(bytes[i]), walk_tops_);
    begin = end;
    end = walk_tops_.size();
    ok = begin < end || (complete && i + 1 == bytes.size());
  }
  ok = ok && fin_of(begin, end, complete) <= limit;
  stacks_.truncate(base);
  return ok;
}

bool Matcher::accept_bytes(std::string_view bytes) {
  const size_t base = stacks_.pool_size();
  std::vector<int32_t> cur = tops_, next;
  bool complete = complete_;
  for (size_t i = 0; i < bytes.size(); ++i) {
    next.clear();
    complete = stacks_.step(cur, 0, cur.size(), static_cast<uint8_t>(bytes[i]), next);
    if (next.empty() && !(complete && i + 1 == bytes.size())) {
      stacks_.truncate(base);
      return false;
    }
    cur.swap(next);
  }
  tops_.swap(cur);
  complete_ = complete;
  if (stacks_.pool_size() > compact_at_) {
    stacks_.compact(tops_);
    compact_at_ = std::max<size_t>(1 << 14, 4 * stacks_.pool_size());
  }
  return true;
}

bool Matcher::accept_token(int32_t id) {
  if (id < 0 || id >= vocab_->size()) return false;
  const std::string& bytes = vocab_->token_bytes(id);
  return !bytes.empty() && accept_bytes(bytes);
}

}  // namespace kaizen::grammar
