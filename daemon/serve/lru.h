// A least-recently-used list with a weight budget: the adapter registry's loaded versions
// (weight 1 each), the engine's cached prefixes (1 each) and kept conversations (their
// KV bytes). Entries are found by predicate, not by key, because the engine matches
// token prefixes. Iteration is most recent first.
//
// Not thread-safe: the owner's lock (registry) or thread (engine) guards it.
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <utility>

namespace kaizen::daemon {

template <class V>
class Lru {
 public:
  using List = std::list<V>;
  using iterator = typename List::iterator;
  using const_iterator = typename List::const_iterator;

  // capacity: the most total weight kept (entries, or bytes with a byte weight);
  // weight: an entry's share of it (default 1).
  explicit Lru(int64_t capacity, std::function<int64_t(const V&)> weight = nullptr)
      : capacity_(capacity), weight_(std::move(weight)) {}

  // Adds `value` as the most recent entry, then evicts the least recent ones until the
  // total weight fits the capacity (which may evict `value` itself when it is heavier).
  void push(V value) {
    weight_total_ += weight_of(value);
    items_.push_front(std::move(value));
    while (weight_total_ > capacity_ && !items_.empty()) erase(std::prev(items_.end()));
  }

  // The most recent entry matching `pred`, made the most recent; nullptr when none.
  template <class Pred>
  V* use_if(Pred pred) {
    for (auto it = items_.begin(); it != items_.end(); ++it) {
      if (pred(*it)) return &*touch(it);
    }
    return nullptr;
  }

  // Makes `it` the most recent entry; returns it (iterators stay valid).
  iterator touch(iterator it) {
    items_.splice(items_.begin(), items_, it);
    return items_.begin();
  }

  // Removes one entry; returns the one after it.
  iterator erase(iterator it) {
    weight_total_ -= weight_of(*it);
    return items_.erase(it);
  }

  template <class Pred>
  void erase_if(Pred pred) {
    for (auto it = items_.begin(); it != items_.end();) it = pred(*it) ? erase(it) : std::next(it);
  }

  void clear() {
    items_.clear();
    weight_total_ = 0;
  }

  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  int64_t weight() const { return weight_total_; }
  int64_t capacity() const { return capacity_; }

 private:
  int64_t weight_of(const V& v) const { return weight_ ? weight_(v) : 1; }

  int64_t capacity_;
  std::function<int64_t(const V&)> weight_;
  List items_;  // front = most recently used
  int64_t weight_total_ = 0;
};

}  // namespace kaizen::daemon
