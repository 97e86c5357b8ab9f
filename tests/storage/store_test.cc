// Store records and queries: chat log, feedback, examples and review, adapters, runs,
// pagination, ids across threads and restarts, bad bytes planted on disk.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "storage/keys.h"
#include "storage/store.h"
#include "store_test_util.h"

namespace kaizen::storage {
namespace {

using test::TempDir;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen(StoreOptions o = {}) {
    store_.reset();
    auto s = Store::open(tmp_.path(), o);
    ASSERT_OK(s.status());
    store_ = std::move(*s);
  }
  void close() { store_.reset(); }
  Example qa(const std::string& q, const std::string& a,
             ExampleState state = ExampleState::kApproved) {
    Example e;
    e.messages = {{"user", q}, {"assistant", a}};
    e.state = state;
    return e;
  }
  uint64_t message_in_new_conversation() {
    auto c = store_->create_conversation({});
    EXPECT_OK(c.status());
    Message m;
    m.conversation_id = c->id;
    m.role = "assistant";
    m.content = "đàn nhạc";
    auto stored = store_->append_message(m);
    EXPECT_OK(stored.status());
    return stored->id;
  }

  TempDir tmp_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, ConversationsNewestFirstWithPagination) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 7; ++i) {
    Conversation c;
    c.title = "c" + std::to_string(i);
    auto stored = store_->create_conversation(c);
    ASSERT_OK(stored.status());
    EXPECT_GT(stored->created_ms, 0);
    ids.push_back(stored->id);
  }
  std::vector<uint64_t> seen;
  PageRequest page{0, 3};
  int pages = 0;
  do {
    auto p = store_->list_conversations(page);
    ASSERT_OK(p.status());
    for (const auto& c : p->items) seen.push_back(c.id);
    page.cursor = p->next_cursor;
    ++pages;
  } while (page.cursor != 0 && pages < 10);
  EXPECT_EQ(pages, 3);
  std::vector<uint64_t> want(ids.rbegin(), ids.rend());
  EXPECT_EQ(seen, want);
  auto one = store_->get_conversation(ids[2]);
  ASSERT_OK(one.status());
  EXPECT_EQ(one->title, "c2");
  EXPECT_TRUE(store_->get_conversation(999999).status().IsNotFound());
}

TEST_F(StoreTest, MessagesOfAConversationInOrderAndById) {
  auto a = store_->create_conversation({});
  auto b = store_->create_conversation({});
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  std::vector<uint64_t> in_a;
  for (int i = 0; i < 5; ++i) {
    for (uint64_t conv : {a->id, b->id}) {
      Message m;
      m.conversation_id = conv;
      m.role = i % 2 ? "assistant" : "user";
      m.content = "turn " + std::to_string(i);
      m.adapter_version = 3;
      m.latency_ms = 10 * i;
      auto stored = store_->append_message(m);
      ASSERT_OK(stored.status());
      if (conv == a->id) in_a.push_back(stored->id);
    }
  }
  auto page1 = store_->list_messages(a->id, {0, 4});
  ASSERT_OK(page1.status());
  ASSERT_EQ(page1->items.size(), 4u);
  auto page2 = store_->list_messages(a->id, {page1->next_cursor, 4});
  ASSERT_OK(page2.status());
  ASSERT_EQ(page2->items.size(), 1u);
  EXPECT_EQ(page2->next_cursor, 0u);
  std::vector<uint64_t> got;
  for (const auto& m : page1->items) got.push_back(m.id);
  for (const auto& m : page2->items) got.push_back(m.id);
  EXPECT_EQ(got, in_a);
  for (const auto& m : page1->items) EXPECT_EQ(m.conversation_id, a->id);

  auto m = store_->get_message(in_a[3]);
  ASSERT_OK(m.status());
  EXPECT_EQ(m->content, "turn 3");
  EXPECT_EQ(m->latency_ms, 30u);
  EXPECT_TRUE(store_->get_message(123456).status().IsNotFound());
}

TEST_F(StoreTest, ReservedMessageIdIsUsedByAppend) {
  auto c = store_->create_conversation({});
  ASSERT_OK(c.status());
  auto reserved = store_->reserve_message_id();
  ASSERT_OK(reserved.status());
  Message other;  // appended while the reserved answer is still being generated
  other.conversation_id = c->id;
  other.role = "user";
  auto o = store_->append_message(other);
  ASSERT_OK(o.status());
  EXPECT_GT(o->id, *reserved);
  Message answer;
  answer.id = *reserved;
  answer.conversation_id = c->id;
  answer.role = "assistant";
  answer.content = "streamed";
  auto a = store_->append_message(answer);
  ASSERT_OK(a.status());
  EXPECT_EQ(a->id, *reserved);
  EXPECT_EQ(store_->get_message(*reserved)->content, "streamed");
}

TEST_F(StoreTest, MessageNeedsAConversationAndAValidRole) {
  Message m;
  m.conversation_id = 4242;
  m.role = "user";
  EXPECT_TRUE(store_->append_message(m).status().IsNotFound());
  auto c = store_->create_conversation({});
  ASSERT_OK(c.status());
  m.conversation_id = c->id;
  m.role = "robot";
  auto bad = store_->append_message(m);
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("robot"), std::string::npos);
}

TEST_F(StoreTest, FeedbackWithCorrectionIsOneLinkedPendingItem) {
  const uint64_t msg = message_in_new_conversation();
  Feedback f;
  f.message_id = msg;
  f.rating = -1;
  f.correction = "CHOREI là tên công ty";
  f.author = "alice";
  Example corr = qa("CHOREI có nghĩa là gì?", "CHOREI là tên công ty", ExampleState::kPending);
  corr.source = ExampleSource::kCorrection;
  auto stored = store_->add_feedback(f, corr);
  ASSERT_OK(stored.status());
  ASSERT_NE(stored->example_id, 0u);
  auto e = store_->get_example(stored->example_id);
  ASSERT_OK(e.status());
  EXPECT_EQ(e->feedback_id, stored->id);
  EXPECT_EQ(e->source, ExampleSource::kCorrection);
  EXPECT_EQ(e->provenance, "feedback:" + std::to_string(stored->id) + " by alice");

  auto queue = store_->list_pending_review();
  ASSERT_OK(queue.status());
  ASSERT_EQ(queue->items.size(), 1u);
  EXPECT_EQ(queue->items[0].id, e->id);

  ASSERT_OK(store_->review_example(e->id, /*approve=*/true, "operator"));
  auto fb = store_->get_feedback(stored->id);
  ASSERT_OK(fb.status());
  EXPECT_EQ(fb->review, ReviewState::kAccepted);
  auto approved = store_->get_example(e->id);
  EXPECT_EQ(approved->state, ExampleState::kApproved);
  EXPECT_EQ(approved->reviewer, "operator");
  EXPECT_TRUE(store_->list_pending_review()->items.empty());
  // A second decision on the same example is refused.
  Status again = store_->review_example(e->id, false, "operator");
  EXPECT_TRUE(again.IsAborted()) << again.ToString();
}

TEST_F(StoreTest, DuplicateProposalsCollapseAndAnApprovedOneApprovesTheWaitingOne) {
  const uint64_t msg = message_in_new_conversation();
  Feedback f;
  f.message_id = msg;
  f.rating = 1;
  f.author = "alice";
  auto first = store_->add_feedback(f, qa("q", "a", ExampleState::kPending));
  ASSERT_OK(first.status());
  EXPECT_FALSE(first->duplicate);
  f.author = "bob";  // the same proposal, unreviewed: linked, still waiting
  auto second = store_->add_feedback(f, qa("q", "a", ExampleState::kPending));
  ASSERT_OK(second.status());
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->example_id, first->example_id);
  EXPECT_EQ(store_->list_pending_review()->items.size(), 1u);

  f.author = "hr-bot";  // a trusted author's approved duplicate approves it
  Example trusted = qa("q", "a", ExampleState::kApproved);
  trusted.reviewer = "trusted author hr-bot";
  auto third = store_->add_feedback(f, trusted);
  ASSERT_OK(third.status());
  EXPECT_TRUE(third->duplicate);
  auto e = store_->get_example(first->example_id);
  EXPECT_EQ(e->state, ExampleState::kApproved);
  EXPECT_EQ(e->reviewer, "trusted author hr-bot");
  EXPECT_EQ(store_->get_feedback(first->id)->review, ReviewState::kAccepted);
  EXPECT_TRUE(store_->list_pending_review()->items.empty());
  // Once approved, another approved duplicate changes nothing.
  ASSERT_OK(store_->add_feedback(f, trusted).status());
  EXPECT_EQ(store_->get_example(first->example_id)->state, ExampleState::kApproved);
}

TEST_F(StoreTest, FeedbackBadInputs) {
  Feedback f;
  f.message_id = 777;
  f.rating = 1;
  auto missing = store_->add_feedback(f);
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("777"), std::string::npos);
  f.message_id = message_in_new_conversation();
  f.rating = 5;
  EXPECT_TRUE(store_->add_feedback(f).status().IsInvalidArgument());
  f.rating = 1;
  Example bad = qa("q", "a");
  bad.messages.pop_back();  // ends with the user
  auto s = store_->add_feedback(f, bad);
  EXPECT_TRUE(s.status().IsInvalidArgument()) << s.status().ToString();
  ASSERT_OK(store_->add_feedback(f).status());  // rating only
}

TEST_F(StoreTest, ExamplesByStateSinceSequenceNumber) {
  std::vector<Example> approved;
  for (int i = 0; i < 6; ++i) {
    auto e = store_->add_example(qa("q" + std::to_string(i), "a"), /*dedupe=*/false);
    ASSERT_OK(e.status());
    approved.push_back(*e);
  }
  ASSERT_OK(store_->add_example(qa("p", "a", ExampleState::kPending)).status());
  auto since = store_->list_examples(ExampleState::kApproved, {approved[2].state_seq, 100});
  ASSERT_OK(since.status());
  ASSERT_EQ(since->items.size(), 3u);
  EXPECT_EQ(since->items[0].id, approved[3].id);
  EXPECT_EQ(since->next_cursor, 0u);
  auto paged = store_->list_examples(ExampleState::kApproved, {0, 4});
  ASSERT_EQ(paged->items.size(), 4u);
  EXPECT_EQ(paged->next_cursor, paged->items.back().state_seq);

  ASSERT_OK(store_->mark_trained({approved[0].id, approved[1].id}, 1));
  auto trained = store_->list_examples(ExampleState::kTrained);
  ASSERT_OK(trained.status());
  ASSERT_EQ(trained->items.size(), 2u);
  EXPECT_EQ(trained->items[0].first_adapter_version, 1u);
  EXPECT_EQ(store_->list_examples(ExampleState::kApproved)->items.size(), 4u);
  // Trained again by v2: skipped, keeps the first version.
  ASSERT_OK(store_->mark_trained({approved[0].id}, 2));
  EXPECT_EQ(store_->get_example(approved[0].id)->first_adapter_version, 1u);
  // A pending example cannot be marked trained; nothing is written.
  auto pending = store_->list_pending_review();
  Status s = store_->mark_trained({approved[2].id, pending->items[0].id}, 3);
  EXPECT_TRUE(s.IsAborted()) << s.ToString();
  EXPECT_EQ(store_->get_example(approved[2].id)->state, ExampleState::kApproved);
  EXPECT_EQ(store_->replay_stats().seen, 2u);
}

// The learner reads "approved since my cursor"; an example approved later must show up
// after the cursor even though its id is older than everything the learner has seen.
TEST_F(StoreTest, LateApprovalAppearsAfterTheLearnersCursor) {
  auto old_pending = store_->add_example(qa("early correction", "a", ExampleState::kPending));
  ASSERT_OK(old_pending.status());
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(store_->add_example(qa("k" + std::to_string(i), "a")).status());
  auto first_read = store_->list_examples(ExampleState::kApproved);
  ASSERT_OK(first_read.status());
  ASSERT_EQ(first_read->items.size(), 3u);
  const uint64_t cursor = first_read->items.back().state_seq;
  ASSERT_OK(store_->review_example(old_pending->id, /*approve=*/true, "op"));
  auto second_read = store_->list_examples(ExampleState::kApproved, {cursor, 50});
  ASSERT_OK(second_read.status());
  ASSERT_EQ(second_read->items.size(), 1u);
  EXPECT_EQ(second_read->items[0].id, old_pending->id);
  EXPECT_LT(old_pending->id, first_read->items[0].id);
}

TEST_F(StoreTest, DedupeByContent) {
  auto first = store_->add_example(qa("same", "answer"), true);
  ASSERT_OK(first.status());
  auto second = store_->add_example(qa("same", "answer"), true);
  EXPECT_TRUE(second.status().IsAlreadyExists());
  auto ids = store_->add_examples({qa("x", "1"), qa("x", "1"), qa("same", "answer")}, true);
  ASSERT_OK(ids.status());
  EXPECT_NE((*ids)[0], 0u);
  EXPECT_EQ((*ids)[1], 0u);
  EXPECT_EQ((*ids)[2], 0u);
  // Without dedupe, duplicates are allowed (two users may send the same correction).
  ASSERT_OK(store_->add_example(qa("same", "answer"), false).status());
}

TEST_F(StoreTest, AdaptersPublishRollbackAndListNewestFirst) {
  EXPECT_EQ(*store_->active_adapter_version(), 0u);
  std::vector<uint64_t> versions;
  for (int i = 0; i < 3; ++i) {
    auto v = store_->allocate_adapter_version();
    ASSERT_OK(v.status());
    versions.push_back(*v);
    Adapter a;
    a.version = *v;
    a.parent = i ? versions[i - 1] : 0;
    a.path = "adapters/v" + std::to_string(*v);
    a.metrics = {{"learn_acc", 0.9 + i * 0.01}};
    ASSERT_OK(store_->publish_adapter(a));
  }
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 2, 3}));  // dense versions
  EXPECT_EQ(*store_->active_adapter_version(), 3u);
  EXPECT_EQ(store_->get_adapter(2)->state, AdapterState::kRetired);
  EXPECT_EQ(store_->get_adapter(3)->state, AdapterState::kActive);

  // Rejected candidate.
  auto v4 = store_->allocate_adapter_version();
  Adapter rejected;
  rejected.version = *v4;
  rejected.state = AdapterState::kRejected;
  ASSERT_OK(store_->put_adapter(rejected));
  EXPECT_TRUE(store_->set_active_adapter(*v4).IsAborted());

  // Rollback to v1.
  ASSERT_OK(store_->set_active_adapter(1));
  EXPECT_EQ(*store_->active_adapter_version(), 1u);
  EXPECT_EQ(store_->get_adapter(3)->state, AdapterState::kRetired);
  EXPECT_EQ(store_->get_adapter(1)->state, AdapterState::kActive);
  EXPECT_TRUE(store_->set_active_adapter(99).IsNotFound());
  Adapter retire_active;
  retire_active.version = 1;
  retire_active.state = AdapterState::kRetired;
  EXPECT_TRUE(store_->put_adapter(retire_active).IsAborted());

  // Rollback to the base model (version 0): v1 retired, no active pointer; idempotent;
  // then roll forward again.
  ASSERT_OK(store_->set_active_adapter(0));
  EXPECT_EQ(*store_->active_adapter_version(), 0u);
  EXPECT_EQ(store_->get_adapter(1)->state, AdapterState::kRetired);
  ASSERT_OK(store_->set_active_adapter(0));
  EXPECT_EQ(*store_->active_adapter_version(), 0u);
  ASSERT_OK(store_->set_active_adapter(1));
  EXPECT_EQ(*store_->active_adapter_version(), 1u);
  EXPECT_EQ(store_->get_adapter(1)->state, AdapterState::kActive);

  ASSERT_OK(store_->set_adapter_pinned(2, true));
  EXPECT_TRUE(store_->get_adapter(2)->pinned);

  auto page = store_->list_adapters({0, 2});
  ASSERT_OK(page.status());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].version, 4u);
  EXPECT_EQ(page->items[1].version, 3u);
  auto rest = store_->list_adapters({page->next_cursor, 10});
  ASSERT_EQ(rest->items.size(), 2u);
  EXPECT_EQ(rest->items[1].version, 1u);

  // Versions stay dense and are never reused across a restart.
  reopen();
  EXPECT_EQ(*store_->allocate_adapter_version(), 5u);
  EXPECT_EQ(*store_->active_adapter_version(), 1u);
  VerifyReport report;
  ASSERT_OK(store_->verify_records(&report));
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
}

TEST_F(StoreTest, RunsNewestFirstAndUpdates) {
  for (int i = 0; i < 3; ++i) {
    storage::Run r;
    r.trigger = i ? "interval" : "manual";
    r.example_ids = {1, 2};
    auto stored = store_->create_run(r);
    ASSERT_OK(stored.status());
    EXPECT_EQ(stored->state, RunState::kRunning);
    stored->loss_curve = {2.0f, 1.0f};
    stored->state = RunState::kPublished;
    stored->verdict = "published v" + std::to_string(i + 1);
    ASSERT_OK(store_->update_run(*stored));
  }
  auto runs = store_->list_runs();
  ASSERT_OK(runs.status());
  ASSERT_EQ(runs->items.size(), 3u);
  EXPECT_EQ(runs->items[0].verdict, "published v3");
  EXPECT_EQ(runs->items[2].trigger, "manual");
  storage::Run ghost;
  ghost.id = 999;
  EXPECT_TRUE(store_->update_run(ghost).IsNotFound());
}

TEST_F(StoreTest, IdsAreUniqueAcrossThreadsAndRestarts) {
  auto c = store_->create_conversation({});
  ASSERT_OK(c.status());
  const uint64_t conv = c->id;
  constexpr int kThreads = 4, kPerThread = 300;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Message m;
        m.conversation_id = conv;
        m.role = "user";
        m.content = std::to_string(t) + "/" + std::to_string(i);
        auto stored = store_->append_message(m);
        if (stored.ok()) got[t].push_back(stored->id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& v : got) {
    EXPECT_EQ(v.size(), size_t(kPerThread));
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));  // increasing per thread
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), size_t(kThreads * kPerThread));
  const uint64_t max_before = *all.rbegin();
  reopen();
  Message m;
  m.conversation_id = conv;
  m.role = "user";
  auto after = store_->append_message(m);
  ASSERT_OK(after.status());
  EXPECT_GT(after->id, max_before);
  // Every message is listed exactly once.
  size_t listed = 0;
  PageRequest page{0, 1000};
  do {
    auto p = store_->list_messages(conv, page);
    ASSERT_OK(p.status());
    listed += p->items.size();
    page.cursor = p->next_cursor;
  } while (page.cursor);
  EXPECT_EQ(listed, all.size() + 1);
}

TEST_F(StoreTest, ConcurrentExampleWritersKeepIndexesConsistent) {
  const uint64_t msg = message_in_new_conversation();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        const std::string tag = std::to_string(t) + "/" + std::to_string(i);
        bool ok = true;
        if (t == 0) {  // feedback with corrections, then approve them
          Feedback f;
          f.message_id = msg;
          f.rating = -1;
          auto fb = store_->add_feedback(f, qa("q" + tag, "a", ExampleState::kPending));
          ok = fb.ok() && store_->review_example(fb->example_id, true, "op").ok();
        } else if (t == 1) {  // importer with dedupe against thread 2's content
          auto ids = store_->add_examples({qa("shared" + std::to_string(i), "a")}, true);
          ok = ids.ok();
        } else if (t == 2) {
          auto ids = store_->add_examples({qa("shared" + std::to_string(i), "a")}, true);
          ok = ids.ok();
        } else {  // learner: train whatever is approved
          auto page = store_->list_examples(ExampleState::kApproved, {0, 5});
          ok = page.ok();
          if (ok) {
            std::vector<uint64_t> ids;
            for (const auto& e : page->items) ids.push_back(e.id);
            Status s = store_->mark_trained(ids, 1);
            ok = s.ok() || s.IsAborted();  // raced with nothing else: should be ok
          }
        }
        if (!ok) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  VerifyReport report;
  ASSERT_OK(store_->verify_records(&report));
  for (const auto& p : report.problems) ADD_FAILURE() << p;
  size_t trained = store_->list_examples(ExampleState::kTrained, {0, 1000})->items.size();
  EXPECT_EQ(store_->replay_stats().seen, trained);
  // Thread 1 and 2 offered the same 15 contents: dedupe kept one of each.
  size_t shared = 0;
  for (auto state : {ExampleState::kApproved, ExampleState::kTrained}) {
    auto listed = store_->list_examples(state, {0, 1000});
    ASSERT_OK(listed.status());
    for (const auto& e : listed->items) {
      shared += e.messages[0].content.rfind("shared", 0) == 0;
    }
  }
  EXPECT_EQ(shared, 15u);
}

TEST_F(StoreTest, CorruptRecordOnDiskIsCorruptionNamingCfAndKey) {
  auto c = store_->create_conversation({});
  Message m;
  m.conversation_id = c->id;
  m.role = "user";
  auto stored = store_->append_message(m);
  ASSERT_OK(stored.status());
  close();
  test::raw_put(tmp_.path(), "messages", keys::message(c->id, stored->id),
                std::string("\x13\x37not json", 10));
  reopen();
  auto bad = store_->get_message(stored->id);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  const std::string want = "messages/m#" + std::to_string(c->id) + "#" + std::to_string(stored->id);
  EXPECT_NE(bad.status().message().find(want), std::string::npos) << bad.status().ToString();
  auto listed = store_->list_messages(c->id);
  EXPECT_TRUE(listed.status().IsCorruption());
  VerifyReport report;
  ASSERT_OK(store_->verify_records(&report));
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find(want), std::string::npos);
}

TEST_F(StoreTest, NewerRecordVersionOnDiskIsNotSupported) {
  close();
  test::raw_put(tmp_.path(), "adapters", keys::adapter(5), R"({"v":7,"version":5})");
  reopen();
  auto a = store_->get_adapter(5);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(a.status().IsNotSupported()) << a.status().ToString();
  EXPECT_NE(a.status().message().find("adapters/#5"), std::string::npos);
  EXPECT_NE(a.status().message().find("upgrade kaizen"), std::string::npos);
}

TEST_F(StoreTest, ChatLogSurvivesCleanReopenWithoutSync) {
  auto c = store_->create_conversation({});
  Message m;
  m.conversation_id = c->id;
  m.role = "user";
  m.content = "hello";
  auto stored = store_->append_message(m);
  ASSERT_OK(stored.status());
  reopen();
  EXPECT_EQ(store_->get_message(stored->id)->content, "hello");
}

}  // namespace
}  // namespace kaizen::storage
