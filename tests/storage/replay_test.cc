// Replay reservoir: algorithm R is uniform (also across simulated restarts), sampling
// is without replacement, stratified by source, and the Store persists it.
#include <gtest/gtest.h>

#include <set>

#include "storage/replay.h"
#include "storage/store.h"
#include "store_test_util.h"

namespace kaizen::storage {
namespace {

std::vector<ReplayEntry> items(uint64_t from, uint64_t n,
                               ExampleSource s = ExampleSource::kKnowledge) {
  std::vector<ReplayEntry> out;
  for (uint64_t i = 0; i < n; ++i) out.push_back({from + i, s});
  return out;
}

TEST(ReplayReservoirTest, FillsThenKeepsCapacity) {
  ReplayReservoir r(10, 1);
  auto p = r.plan(items(1, 4));
  EXPECT_EQ(p.seen_after, 4u);
  EXPECT_EQ(p.writes.size(), 4u);
  EXPECT_EQ(r.size(), 0u);  // plan alone changes nothing
  r.apply(p);
  EXPECT_EQ(r.size(), 4u);
  r.apply(r.plan(items(5, 100)));
  EXPECT_EQ(r.size(), 10u);
  EXPECT_EQ(r.seen(), 104u);
  std::set<uint64_t> distinct;
  for (const auto& e : r.entries()) distinct.insert(e.example_id);
  EXPECT_EQ(distinct.size(), 10u);
}

// Each of N offered items must end up in the reservoir with probability C/N. Items are
// grouped by offer order (early, middle, late) so a bias towards old or new items
// shows; a restart (restore into a fresh reservoir with another seed) happens every
// 100 offers, as the daemon would restart between training runs.
TEST(ReplayReservoirTest, InclusionIsUniformAcrossRestarts) {
  constexpr uint32_t kCapacity = 50;
  constexpr uint64_t kItems = 1000, kTrials = 400, kGroups = 10;
  std::vector<uint64_t> group_hits(kGroups, 0);
  for (uint64_t trial = 0; trial < kTrials; ++trial) {
    auto r = std::make_unique<ReplayReservoir>(kCapacity, 1000 + trial);
    for (uint64_t start = 0; start < kItems; start += 100) {
      // Offer in uneven batches, like runs of different sizes.
      for (uint64_t i = start; i < start + 100;) {
        uint64_t n = std::min<uint64_t>(1 + (i * 7 + trial) % 13, start + 100 - i);
        r->apply(r->plan(items(i, n)));
        i += n;
      }
      std::map<uint32_t, ReplayEntry> slots;
      auto entries = r->entries();
      for (uint32_t s = 0; s < entries.size(); ++s) slots[s] = entries[s];
      const uint64_t seen = r->seen();
      r = std::make_unique<ReplayReservoir>(kCapacity, 77 * trial + start + 1);
      r->restore(seen, slots);
    }
    ASSERT_EQ(r->size(), kCapacity);
    for (const auto& e : r->entries()) ++group_hits[e.example_id / (kItems / kGroups)];
  }
  // Expected hits per group: trials * capacity / groups = 2000, sd ~ 42.
  const double expected = double(kTrials) * kCapacity / kGroups;
  for (uint64_t g = 0; g < kGroups; ++g) {
    EXPECT_NEAR(double(group_hits[g]), expected, 0.1 * expected) << "group " << g;
  }
}

TEST(ReplayReservoirTest, SamplesAreDistinctAndStratified) {
  ReplayReservoir r(100, 3);
  r.apply(r.plan(items(1, 30, ExampleSource::kKnowledge)));
  r.apply(r.plan(items(100, 5, ExampleSource::kCorrection)));
  auto s = r.sample(20, 9);
  ASSERT_EQ(s.size(), 20u);
  std::set<uint64_t> ids;
  for (const auto& e : s) ids.insert(e.example_id);
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(r.sample(1000, 9).size(), 35u);  // capped at what exists
  EXPECT_EQ(r.sample(5, 42).size(), 5u);

  auto strat = r.sample_stratified({{ExampleSource::kKnowledge, 4},
                                    {ExampleSource::kCorrection, 8},
                                    {ExampleSource::kFeedback, 2}},
                                   5);
  std::map<ExampleSource, int> counts;
  for (const auto& e : strat) ++counts[e.source];
  EXPECT_EQ(counts[ExampleSource::kKnowledge], 4);
  EXPECT_EQ(counts[ExampleSource::kCorrection], 5);  // only 5 exist
  EXPECT_EQ(counts[ExampleSource::kFeedback], 0);
  auto by_source = r.count_by_source();
  EXPECT_EQ(by_source[ExampleSource::kCorrection], 5u);
}

TEST(ReplayStoreTest, ReservoirSurvivesRestartsAndCapacityDefault) {
  EXPECT_EQ(StoreOptions().replay_capacity, 10000u);
  test::TempDir tmp;
  StoreOptions o;
  o.replay_capacity = 20;
  std::vector<ReplayEntry> before;
  {
    auto store = Store::open(tmp.path(), o);
    ASSERT_OK(store.status());
    std::vector<uint64_t> ids;
    for (int i = 0; i < 60; ++i) {
      Example e;
      e.messages = {{"user", "q" + std::to_string(i)}, {"assistant", "a"}};
      e.state = ExampleState::kApproved;
      e.source = i % 3 ? ExampleSource::kKnowledge : ExampleSource::kCorrection;
      auto stored = (*store)->add_example(e);
      ASSERT_OK(stored.status());
      ids.push_back(stored->id);
    }
    ASSERT_OK((*store)->mark_trained({ids.begin(), ids.begin() + 25}, 1));
    ASSERT_OK((*store)->mark_trained({ids.begin() + 25, ids.end()}, 2));
    auto stats = (*store)->replay_stats();
    EXPECT_EQ(stats.seen, 60u);
    EXPECT_EQ(stats.size, 20u);
    before = (*store)->sample_replay(20, 1);
  }
  auto store = Store::open(tmp.path(), o);
  ASSERT_OK(store.status());
  auto stats = (*store)->replay_stats();
  EXPECT_EQ(stats.seen, 60u);
  EXPECT_EQ(stats.size, 20u);
  EXPECT_EQ(stats.capacity, 20u);
  auto after = (*store)->sample_replay(20, 1);
  std::set<uint64_t> a, b;
  for (const auto& e : before) a.insert(e.example_id);
  for (const auto& e : after) b.insert(e.example_id);
  EXPECT_EQ(a, b);
  // Every entry names a trained example with the right source.
  for (const auto& e : after) {
    auto ex = (*store)->get_example(e.example_id);
    ASSERT_OK(ex.status());
    EXPECT_EQ(ex->state, ExampleState::kTrained);
    EXPECT_EQ(ex->source, e.source);
  }
  auto strat = (*store)->sample_replay_stratified({{ExampleSource::kCorrection, 3}}, 2);
  for (const auto& e : strat) EXPECT_EQ(e.source, ExampleSource::kCorrection);
}

}  // namespace
}  // namespace kaizen::storage
