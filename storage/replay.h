// ReplayReservoir: the in-memory mirror of the `replay` column family, a reservoir
// sample (Vitter's algorithm R) of every example id ever trained, so a training run can
// mix in a uniform sample of earlier knowledge however much has been learned.
//
// Algorithm R: the n-th offered item (0-based) fills slot n while n < capacity;
// afterwards it replaces slot j, j uniform in [0, n], when j < capacity. Every item
// offered so far is then in the reservoir with probability capacity / seen. The seen
// count and the slots are persisted by Store in the same batch, so the sample stays
// uniform across restarts.
//
// Pure logic, no I/O. Thread-safe: every method takes the internal mutex.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "storage/records.h"

namespace kaizen::storage {

class ReplayReservoir {
 public:
  // capacity: slots (>= 1). seed: replacement choices; 0 = std::random_device.
  ReplayReservoir(uint32_t capacity, uint64_t seed);

  // Replaces the state with what was read from disk. Slots at or beyond capacity are
  // dropped (a smaller capacity keeps a uniform subset); missing slots below
  // min(seen, capacity) mean a damaged column family and are skipped.
  void restore(uint64_t seen, std::map<uint32_t, ReplayEntry> slots);

  // The writes one batch of offers needs: the new seen count and the slots to set.
  struct Plan {
    uint64_t seen_after = 0;
    std::map<uint32_t, ReplayEntry> writes;  // slot -> entry
  };
  // Plans offering `items` in order (algorithm R); does not change the reservoir.
  Plan plan(const std::vector<ReplayEntry>& items);
  // Applies a plan after its batch was written.
  void apply(const Plan& plan);

  uint32_t capacity() const { return capacity_; }
  uint64_t seen() const;
  uint32_t size() const;
  std::map<ExampleSource, uint32_t> count_by_source() const;
  std::vector<ReplayEntry> entries() const;  // in slot order

  // Up to k distinct entries, uniformly without replacement.
  std::vector<ReplayEntry> sample(size_t k, uint64_t seed) const;
  // Up to quota[s] distinct entries of each source s.
  std::vector<ReplayEntry> sample_stratified(const std::map<ExampleSource, size_t>& quota,
                                             uint64_t seed) const;

 private:
  const uint32_t capacity_;
  mutable std::mutex mu_;  // guards everything below
  uint64_t seen_ = 0;
  std::vector<ReplayEntry> slots_;  // size min(seen_, capacity_) unless damaged
  std::mt19937_64 rng_;
};

}  // namespace kaizen::storage
