#include "learning/text/bpe_model.h"

#include <algorithm>

#include "learning/text/byte_level.h"
#include "learning/text/tokenizer.h"

namespace kaizen::text {

namespace {

inline uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

inline uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

// Per-thread scratch for the merge loop, so encoding allocates nothing once warm.
struct Symbol {
  int32_t id;    // -1 once merged into its left neighbour
  int32_t prev;  // index, -1 = none
  int32_t next;
};
struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t left, right, result;
  // std::push_heap builds a max-heap: "greater" puts the lowest (rank, pos) on top.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};
struct MergeScratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string key;
};
MergeScratch& scratch() {
  thread_local MergeScratch s;
  return s;
}

}  // namespace

BpeModel::BpeModel(const std::unordered_map<std::string, int32_t>& vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   bool ignore_merges, const std::string& file)
    : ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    ch = byte_level::encode(std::string_view(reinterpret_cast<const char*>(&b), 1));
    auto it = vocab.find(ch);
    if (it == vocab.end()) {
      throw TokenizerError(file + ": vocab lacks the byte-level token for byte " +
                           std::to_string(b) + " (not a byte-level BPE vocab?)");
    }
    byte_id_[b] = it->second;
  }
  size_t cap = 16;
  while (cap < merges.size() * 2) cap <<= 1;
  merges_.assign(cap, Merge{});
  merge_mask_ = cap - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab.find(a), ib = vocab.find(b), ir = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || ir == vocab.end()) {
      throw TokenizerError(file + ": merge " + std::to_string(rank) + " ('" + a + "' '" + b +
                           "') uses a token that is not in the vocab");
    }
    const uint64_t key = pair_key(ia->second, ib->second);
    for (uint64_t i = mix(key) & merge_mask_;; i = (i + 1) & merge_mask_) {
      if (merges_[i].key == key) break;  // duplicate merge: the first (lowest) rank wins
      if (merges_[i].key == ~0ull) {
        merges_[i] = Merge{key, static_cast<int32_t>(rank), ir->second};
        break;
      }
    }
  }
  if (ignore_merges_) {
    for (const auto& [token, id] : vocab) {
      std::string bytes;
      byte_level::decode_token(token, bytes);
      bytes_to_id_.emplace(std::move(bytes), id);
    }
  }
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t i = mix(key) & merge_mask_;; i = (i + 1) & merge_mask_) {
    const Merge& m = merges_[i];
    if (m.key == key) return &m;
    if (m.key == ~0ull) return nullptr;
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    std::string& key = scratch().key;
    key.assign(word.data(), word.size());
    if (auto it = bytes_to_id_.find(key); it != bytes_to_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (cache_.lookup(word, out)) return;
  const size_t start = out.size();
  merge_word(word, out);
  cache_.insert(word, out.data() + start, out.size() - start);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  MergeScratch& s = scratch();
  auto& sym = s.symbols;
  auto& heap = s.heap;
  sym.clear();
  heap.clear();
  const int32_t n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    sym.push_back({byte_id_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1});
  }
  auto push_pair = [&](int32_t left) {
    const int32_t right = sym[left].next;
    if (right < 0) return;
    if (const Merge* m = find_merge(sym[left].id, sym[right].id)) {
      heap.push_back({m->rank, left, sym[left].id, sym[right].id, m->result});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = sym[c.pos];
    if (l.id != c.left || l.next < 0) continue;  // stale: the left symbol changed
    Symbol& r = sym[l.next];
    if (r.id != c.right) continue;  // stale: the right neighbour changed
    l.id = c.result;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.pos;
    r.id = -1;
    if (l.prev >= 0) push_pair(l.prev);
    push_pair(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace kaizen::text
