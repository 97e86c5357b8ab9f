#include "storage/replay.h"

#include <algorithm>

namespace kaizen::storage {
namespace {

uint64_t seed_or_random(uint64_t seed) {
  if (seed != 0) return seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// k distinct indices of [0, n), uniformly (partial Fisher-Yates).
std::vector<size_t> pick(size_t n, size_t k, std::mt19937_64& rng) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  k = std::min(k, n);
  for (size_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<size_t> d(i, n - 1);
    std::swap(idx[i], idx[d(rng)]);
  }
  idx.resize(k);
  return idx;
}

}  // namespace

ReplayReservoir::ReplayReservoir(uint32_t capacity, uint64_t seed)
    : capacity_(std::max<uint32_t>(capacity, 1)), rng_(seed_or_random(seed)) {}

void ReplayReservoir::restore(uint64_t seen, std::map<uint32_t, ReplayEntry> slots) {
  std::lock_guard<std::mutex> lock(mu_);
  seen_ = seen;
  slots_.clear();
  const uint64_t filled = std::min<uint64_t>(seen, capacity_);
  for (auto& [slot, entry] : slots) {
    if (slot >= filled) break;
    if (slot != slots_.size()) break;  // a hole: keep the contiguous prefix
    slots_.push_back(entry);
  }
}

ReplayReservoir::Plan ReplayReservoir::plan(const std::vector<ReplayEntry>& items) {
  std::lock_guard<std::mutex> lock(mu_);
  Plan p;
  uint64_t n = seen_;
  // Slots filled so far, counting fills planned in this batch.
  uint64_t filled = slots_.size();
  for (const auto& item : items) {
    if (n < capacity_) {
      // Fill the next free slot (== n unless the column family lost slots).
      p.writes[static_cast<uint32_t>(filled)] = item;
      ++filled;
    } else {
      std::uniform_int_distribution<uint64_t> d(0, n);
      const uint64_t j = d(rng_);
      if (j < filled) p.writes[static_cast<uint32_t>(j)] = item;
    }
    ++n;
  }
  p.seen_after = n;
  return p;
}

void ReplayReservoir::apply(const Plan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  seen_ = plan.seen_after;
  for (const auto& [slot, entry] : plan.writes) {
    if (slot < slots_.size()) {
      slots_[slot] = entry;
    } else if (slot == slots_.size()) {
      slots_.push_back(entry);
    }
  }
}

uint64_t ReplayReservoir::seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

uint32_t ReplayReservoir::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(slots_.size());
}

std::map<ExampleSource, uint32_t> ReplayReservoir::count_by_source() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<ExampleSource, uint32_t> out;
  for (const auto& e : slots_) ++out[e.source];
  return out;
}

std::vector<ReplayEntry> ReplayReservoir::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_;
}

std::vector<ReplayEntry> ReplayReservoir::sample(size_t k, uint64_t seed) const {
  std::vector<ReplayEntry> all = entries();
  std::mt19937_64 rng(seed_or_random(seed));
  std::vector<ReplayEntry> out;
  for (size_t i : pick(all.size(), k, rng)) out.push_back(all[i]);
  return out;
}

std::vector<ReplayEntry> ReplayReservoir::sample_stratified(
    const std::map<ExampleSource, size_t>& quota, uint64_t seed) const {
  std::map<ExampleSource, std::vector<ReplayEntry>> by_source;
  for (const auto& e : entries()) by_source[e.source].push_back(e);
  std::mt19937_64 rng(seed_or_random(seed));
  std::vector<ReplayEntry> out;
  for (const auto& [source, k] : quota) {
    const auto& pool = by_source[source];
    for (size_t i : pick(pool.size(), k, rng)) out.push_back(pool[i]);
  }
  return out;
}

}  // namespace kaizen::storage
