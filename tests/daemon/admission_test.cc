// Small serving parts in isolation: chat admission (ChatGate over the shared ChatLimits),
// the SSE stream's write discipline (ChatStream), the LRU the registry and the engine
// share, and the DeferredService kaizend serves while the model loads.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/deferred_service.h"
#include "daemon/http/chat_stream.h"
#include "daemon/serve/chat_admission.h"
#include "daemon/serve/lru.h"
#include "fake_service.h"

namespace kaizen::daemon {
namespace {

// --- ChatGate ---

struct Started {
  std::vector<int> order;
  std::function<void()> start(int i) {
    return [this, i] { order.push_back(i); };
  }
};

TEST(ChatGate, StartsUpToMaxActiveQueuesFifoUpToMaxQueuedAndRejectsTheRest) {
  ChatGate gate(std::make_shared<ChatLimits>(2, 2));
  Started s;
  uint64_t t[5];
  EXPECT_EQ(gate.admit(s.start(0), &t[0]), ChatGate::Admit::kStarted);
  EXPECT_EQ(gate.admit(s.start(1), &t[1]), ChatGate::Admit::kStarted);
  EXPECT_EQ(gate.admit(s.start(2), &t[2]), ChatGate::Admit::kQueued);
  EXPECT_EQ(gate.admit(s.start(3), &t[3]), ChatGate::Admit::kQueued);
  EXPECT_EQ(gate.admit(s.start(4), &t[4]), ChatGate::Admit::kRejected);
  EXPECT_EQ(s.order, (std::vector<int>{0, 1}));
  EXPECT_EQ(gate.active(), 2);
  EXPECT_EQ(gate.queued(), 2);
  gate.release();
  EXPECT_EQ(s.order, (std::vector<int>{0, 1, 2})) << "the oldest waiter starts first";
  EXPECT_EQ(gate.active(), 2);
  EXPECT_EQ(gate.queued(), 1);
}

TEST(ChatGate, WithdrawOnlyWhileQueued) {
  ChatGate gate(std::make_shared<ChatLimits>(1, 4));
  Started s;
  uint64_t a, b, c;
  gate.admit(s.start(0), &a);
  gate.admit(s.start(1), &b);
  gate.admit(s.start(2), &c);
  EXPECT_TRUE(gate.withdraw(b));
  EXPECT_FALSE(gate.withdraw(b)) << "already gone";
  EXPECT_FALSE(gate.withdraw(a)) << "a started chat is released, not withdrawn";
  gate.release();
  EXPECT_EQ(s.order, (std::vector<int>{0, 2}));
}

TEST(ChatGate, NewLimitsReachEveryReaderOfTheSharedLimitsAndRaisingStartsWaiters) {
  auto limits = std::make_shared<ChatLimits>(1, 1);
  ChatGate gate(limits);
  Started s;
  uint64_t t[4];
  gate.admit(s.start(0), &t[0]);
  gate.admit(s.start(1), &t[1]);
  EXPECT_EQ(gate.admit(s.start(2), &t[2]), ChatGate::Admit::kRejected);
  gate.set_limits(3, 5);  // SIGHUP
  EXPECT_EQ(limits->max_active(), 3) << "the engine reads the same object";
  EXPECT_EQ(limits->max_queued(), 5);
  EXPECT_EQ(s.order, (std::vector<int>{0, 1})) << "the waiter started on the raise";
  EXPECT_EQ(gate.admit(s.start(3), &t[3]), ChatGate::Admit::kStarted);
  gate.set_limits(0, -1);  // clamped: at least one active, no negative queue
  EXPECT_EQ(limits->max_active(), 1);
  EXPECT_EQ(limits->max_queued(), 0);
}

// --- ChatStream ---

TEST(ChatStream, OneWriteAtATimeCoalescesEventsAndEndsWithTheLastChunk) {
  ChatStream st("role;");
  std::string out;
  EXPECT_EQ(st.state(), ChatStream::State::kHeader);
  EXPECT_EQ(st.next(&out), ChatStream::Next::kNothing) << "the header is still being written";
  st.append("a;");
  st.written();  // header
  ASSERT_EQ(st.next(&out), ChatStream::Next::kChunk);
  EXPECT_EQ(out, "role;a;");
  EXPECT_EQ(st.state(), ChatStream::State::kWriting);
  st.append("b;");
  st.append("c;");
  EXPECT_EQ(st.next(&out), ChatStream::Next::kNothing) << "one write outstanding";
  st.written();
  ASSERT_EQ(st.next(&out), ChatStream::Next::kChunk);
  EXPECT_EQ(out, "b;c;") << "deltas during a write coalesce into one chunk";
  st.written();
  EXPECT_EQ(st.next(&out), ChatStream::Next::kNothing) << "idle until the engine says more";
  st.finish("stop;[DONE];", 200);
  st.append("late;");  // after finish: dropped
  ASSERT_EQ(st.next(&out), ChatStream::Next::kChunk);
  EXPECT_EQ(out, "stop;[DONE];");
  st.written();
  EXPECT_FALSE(st.done());
  ASSERT_EQ(st.next(&out), ChatStream::Next::kLastChunk);
  EXPECT_EQ(st.state(), ChatStream::State::kLastChunk);
  st.written();
  EXPECT_TRUE(st.done());
  EXPECT_EQ(st.status(), 200);
  EXPECT_EQ(st.next(&out), ChatStream::Next::kNothing);
}

TEST(ChatStream, AnInBandErrorKeepsItsStatusForTheLog) {
  ChatStream st("role;");
  std::string out;
  st.written();
  st.finish("error;", 500);
  st.finish("second;", 200);  // only the first finish counts
  ASSERT_EQ(st.next(&out), ChatStream::Next::kChunk);
  EXPECT_EQ(out, "role;error;");
  st.written();
  ASSERT_EQ(st.next(&out), ChatStream::Next::kLastChunk);
  st.written();
  EXPECT_TRUE(st.done());
  EXPECT_EQ(st.status(), 500);
}

// --- Lru ---

TEST(Lru, EvictsTheLeastRecentlyUsedByWeight) {
  struct Entry {
    int key;
    int64_t bytes;
  };
  Lru<Entry> lru(100, [](const Entry& e) { return e.bytes; });
  lru.push({1, 40});
  lru.push({2, 40});
  ASSERT_NE(lru.use_if([](const Entry& e) { return e.key == 1; }), nullptr);  // 1 is now the most recent
  lru.push({3, 40});  // 120 > 100: evicts 2
  std::vector<int> keys;
  for (const auto& e : lru) keys.push_back(e.key);
  EXPECT_EQ(keys, (std::vector<int>{3, 1}));
  EXPECT_EQ(lru.weight(), 80);
  EXPECT_EQ(lru.use_if([](const Entry& e) { return e.key == 2; }), nullptr);
  lru.push({4, 500});  // heavier than the budget: evicts everything, itself included
  EXPECT_TRUE(lru.empty());
  EXPECT_EQ(lru.weight(), 0);
  lru.push({5, 10});
  lru.push({6, 10});
  lru.erase_if([](const Entry& e) { return e.key == 5; });
  EXPECT_EQ(lru.size(), 1u);
  EXPECT_EQ(lru.weight(), 10);

  Lru<int> counted(2);  // default weight: entries
  counted.push(1);
  counted.push(2);
  counted.push(3);
  EXPECT_EQ(std::vector<int>(counted.begin(), counted.end()), (std::vector<int>{3, 2}));
}

// --- DeferredService ---

TEST(DeferredService, AnswersNotReadyUntilTheRealServiceIsInstalledThenForwards) {
  DeferredService d("loading model /srv/qwen3");
  EXPECT_FALSE(d.ready());
  Health h = d.health();
  EXPECT_FALSE(h.ready);
  EXPECT_EQ(h.detail, "loading model /srv/qwen3");
  d.set_status("opening the database");
  EXPECT_EQ(d.health().detail, "opening the database");
  Result<ChatTicket> chat = d.submit_chat(ChatRequest{}, ChatEvents{});
  ASSERT_FALSE(chat.ok());
  EXPECT_EQ(chat.error().http_status, 503);
  EXPECT_GT(chat.error().retry_after_s, 0);
  EXPECT_NE(chat.error().message.find("opening the database"), std::string::npos);
  EXPECT_EQ(d.admin("GET", "status", nlohmann::json::object(), PeerInfo{}).error().http_status, 503);
  EXPECT_EQ(d.submit_feedback(FeedbackRequest{}).error().http_status, 503);
  EXPECT_TRUE(d.list_models().empty());

  d.install(std::make_unique<testing::FakeService>());
  EXPECT_TRUE(d.ready());
  EXPECT_TRUE(d.health().ready);
  EXPECT_EQ(d.health().detail, "fake");
  auto status = d.admin("GET", "status", nlohmann::json::object(), PeerInfo{});
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status.value()["ok"], true);
  EXPECT_FALSE(d.list_models().empty());
  d.reset();
  EXPECT_FALSE(d.ready());
}

}  // namespace
}  // namespace kaizen::daemon
