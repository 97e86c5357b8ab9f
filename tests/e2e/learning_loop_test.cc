// The continual-learning loop end to end, through HTTP only (issue 6 "Proof"): the tiny
// model does not know the company; knowledge is imported; the learner trains, the gate
// passes, the adapter is published and swapped in while clients keep chatting; the seed
// questions now get the company's answers while `model: base` keeps the old ones;
// rollback restores the previous behaviour; swaps under streaming load never fail a
// request or mix adapters inside one answer; a user's unreviewed false correction never
// reaches training; an approved batch that breaks retained facts is rejected by the gate.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "learning_server.h"
#include "storage/store.h"

namespace kaizen::daemon::testing {
namespace {

using nlohmann::json;

constexpr size_t kGen1 = 8;  // generated facts in generation 1
constexpr size_t kGen2 = 6;  // generated facts imported with the two seed facts

struct StreamedAnswer {
  int status = 0;
  bool done = false;
  std::string id, model, text;
};

StreamedAnswer stream_chat(uint16_t port, const json& body) {
  StreamedAnswer a;
  HttpResponse r = tcp_request(port, make_request("POST", "/v1/chat/completions", body.dump(),
                                                  {std::string("Authorization: Bearer ") + kToken}));
  a.status = r.status;
  if (r.status != 200) {
    a.text = r.body;
    return a;
  }
  for (const auto& e : sse_events(r.body)) {
    if (e == "[DONE]") {
      a.done = true;
      continue;
    }
    json c = json::parse(e, nullptr, false);
    if (!c.is_object()) continue;
    a.id = c.value("id", a.id);
    a.model = c.value("model", a.model);
    if (c.contains("choices") && !c["choices"].empty() && c["choices"][0]["delta"].contains("content")) {
      a.text += c["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  return a;
}

uint64_t version_of(const std::string& model) {
  auto at = model.find("@v");
  return at == std::string::npos ? 0 : std::stoull(model.substr(at + 2));
}

class LearningLoop : public LearningServer {};

TEST_F(LearningLoop, LearnsServesSwapsRollsBackAndRejectsPoison) {
  // 0. The model does not know the company.
  const std::string base_chorei = answer(kChoreiQ, "base");
  const std::string base_sabi = answer(kSabitechQ, "base");
  EXPECT_NE(base_chorei, kChoreiA);
  EXPECT_NE(base_sabi, kSabitechA);
  EXPECT_EQ(answer(kChoreiQ), base_chorei);  // nothing published: `kaizen` is the base model

  // 1. A user's false correction waits for review and must never be trained on.
  HttpResponse asked = chat(ask("CHOREI là gì?"));
  ASSERT_EQ(asked.status, 200);
  json fb = {{"message_id", asked.json()["id"]}, {"rating", -1}, {"correction", "CHOREI là một loại bánh ngọt."}};
  HttpResponse f = tcp_request(server_->tcp_port(), make_request("POST", "/v1/feedback", fb.dump(),
                                                               {std::string("Authorization: Bearer ") + kToken}));
  ASSERT_EQ(f.status, 200) << f.body;
  HttpResponse review = admin("review");
  ASSERT_EQ(review.json()["pending"].size(), 1u);
  const uint64_t false_correction = review.json()["pending"][0]["id"];

  // 2. Generation 1: generated facts only -> v1.
  auto gen1 = fact_lines(0, kGen1);
  ASSERT_EQ(import(gen1, "gen1.jsonl")["imported"], kGen1);
  json run1 = train_and_wait();
  ASSERT_TRUE(run1.is_object());
  ASSERT_EQ(run1["state"], "published") << run1.dump(1);
  const uint64_t v1 = run1["adapter_version"];
  std::printf("run 1: %s\n", run1["metrics"].dump().c_str());
  EXPECT_GE(run1["metrics"]["learn_acc"].get<double>(), 0.9);
  EXPECT_EQ(run1["metrics"]["learn_n"], kGen1);
  EXPECT_EQ(run1["replay_ids"].size(), 0u);  // nothing learned before: nothing to replay
  const std::string v1_chorei = answer(kChoreiQ);
  const std::string v1_sabi = answer(kSabitechQ);
  EXPECT_NE(v1_chorei, kChoreiA);

  // 3. Generation 2: the seed facts + more, while a client keeps chatting.
  std::vector<std::string> gen2 = {qa_line(kChoreiQ, kChoreiA), qa_line(kSabitechQ, kSabitechA)};
  for (const auto& l : fact_lines(kGen1, kGen2)) gen2.push_back(l);
  ASSERT_EQ(import(gen2, "gen2.jsonl")["imported"], gen2.size());
  auto timed_chat = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    StreamedAnswer a = stream_chat(server_->tcp_port(), ask("Hôm nay thế nào?", "kaizen", true));
    return std::make_pair(a, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  };
  std::vector<double> idle_ms, training_ms;
  for (int i = 0; i < 8; ++i) idle_ms.push_back(timed_chat().second);
  std::atomic<bool> chatting{true};
  std::atomic<int> chats{0}, failed{0};
  std::thread client([&] {
    while (chatting.load()) {
      auto [a, ms] = timed_chat();
      ++chats;
      training_ms.push_back(ms);
      if (a.status != 200 || !a.done) ++failed;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  json run2 = train_and_wait();
  chatting.store(false);
  client.join();
  auto pct = [](std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
  };
  std::printf("chat latency (48-token streamed answers): idle p50 %.0f ms p99 %.0f ms (%zu); during training "
              "p50 %.0f ms p99 %.0f ms (%zu)\n",
              pct(idle_ms, 0.5), pct(idle_ms, 0.99), idle_ms.size(), pct(training_ms, 0.5), pct(training_ms, 0.99),
              training_ms.size());
  ASSERT_TRUE(run2.is_object());
  std::printf("run 2: %s (chats during training: %d)\n", run2["metrics"].dump().c_str(), chats.load());
  ASSERT_EQ(run2["state"], "published") << run2.dump(1);
  // The learner's own record of what chats saw while it trained.
  EXPECT_GE(run2["metrics"]["chat_during_train_n"].get<double>(), 1.0);
  EXPECT_GT(run2["metrics"]["chat_during_train_p99_ms"].get<double>(), 0.0);
  EXPECT_GE(run2["metrics"]["chat_during_train_p99_ms"].get<double>(),
            run2["metrics"]["chat_during_train_p50_ms"].get<double>());
  const uint64_t v2 = run2["adapter_version"];
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(chats.load(), 0);
  EXPECT_GT(run2["replay_ids"].size(), 0u);     // generation 1 rehearsed
  EXPECT_GT(run2["metrics"]["retain_n"], 0);    // and measured on held-out facts
  for (const auto& id : run2["example_ids"]) EXPECT_NE(id.get<uint64_t>(), false_correction);
  for (const auto& id : run1["example_ids"]) EXPECT_NE(id.get<uint64_t>(), false_correction);
  HttpResponse still = admin("review");
  ASSERT_EQ(still.json()["pending"].size(), 1u);
  EXPECT_EQ(still.json()["pending"][0]["id"], false_correction);

  // The company's answers now; the base model unchanged.
  EXPECT_EQ(answer(kChoreiQ), kChoreiA);
  EXPECT_EQ(answer(kSabitechQ), kSabitechA);
  EXPECT_EQ(answer(kChoreiQ, "base"), base_chorei);
  EXPECT_EQ(answer(kSabitechQ, "base"), base_sabi);
  EXPECT_EQ(answer(kChoreiQ, "kaizen@v" + std::to_string(v1)), v1_chorei);

  // 4. Swaps under streaming load: rollback/roll forward 10 times while 3 clients stream.
  std::map<uint64_t, std::string> expected = {{v1, v1_chorei}, {v2, kChoreiA}};
  std::mutex seen_mu;
  std::vector<StreamedAnswer> seen;
  std::atomic<bool> loading{true};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&] {
      while (loading.load()) {
        StreamedAnswer a = stream_chat(server_->tcp_port(), ask(kChoreiQ, "kaizen", true));
        std::lock_guard<std::mutex> lock(seen_mu);
        seen.push_back(std::move(a));
      }
    });
  }
  for (int i = 0; i < 10; ++i) {
    const uint64_t to = i % 2 == 0 ? v1 : v2;
    HttpResponse rb = admin("adapters/rollback", {{"version", to}});
    EXPECT_EQ(rb.status, 200) << rb.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  loading.store(false);
  for (auto& t : clients) t.join();
  std::set<uint64_t> versions_seen;
  for (const auto& a : seen) {
    ASSERT_EQ(a.status, 200) << a.text;
    EXPECT_TRUE(a.done);
    const uint64_t v = version_of(a.model);
    ASSERT_TRUE(expected.count(v)) << a.model;
    EXPECT_EQ(a.text, expected[v]) << "answer " << a.id << " from " << a.model << " mixes adapters";
    versions_seen.insert(v);
  }
  std::printf("swap under load: %zu streamed answers, versions seen %zu\n", seen.size(), versions_seen.size());
  EXPECT_GE(seen.size(), 10u);
  EXPECT_EQ(versions_seen.size(), 2u);

  // Active is v2 again (the 10th swap). 5. An approved harmful batch that contradicts the
  // facts of generation 1 is rejected by the gate; nothing changes for users.
  std::vector<std::string> harmful;
  for (size_t i = 0; i < gen1.size(); ++i) {
    json a = json::parse(gen1[i]), b = json::parse(gen1[(i + 1) % gen1.size()]);
    harmful.push_back(qa_line(a["messages"][0]["content"], b["messages"][1]["content"]));
  }
  ASSERT_EQ(import(harmful, "harmful.jsonl")["imported"], harmful.size());
  json run3 = train_and_wait();
  ASSERT_TRUE(run3.is_object());
  std::printf("run 3 (harmful): %s verdict: %s\n", run3["metrics"].dump().c_str(),
              run3["verdict"].get<std::string>().c_str());
  EXPECT_EQ(run3["state"], "rejected");
  EXPECT_NE(run3["verdict"].get<std::string>().find("retain"), std::string::npos) << run3["verdict"];
  EXPECT_EQ(admin("status").json()["active_adapter"], v2);
  EXPECT_EQ(answer(kChoreiQ), kChoreiA);
  const uint64_t v3 = run3["adapter_version"];
  EXPECT_EQ(admin("adapters/show", {{"version", v3}}).json()["state"], "rejected");
  EXPECT_EQ(chat(ask("hi", "kaizen@v" + std::to_string(v3))).status, 404);

  // 6. Rollback (no version: the newest earlier published one, skipping the rejected)
  // restores the old behaviour.
  HttpResponse rb = admin("adapters/rollback");
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(rb.json()["active"], v1);
  EXPECT_EQ(answer(kChoreiQ), v1_chorei);
  EXPECT_EQ(answer(kSabitechQ), v1_sabi);
  // Nothing published before v1: the next rollback goes to the base model, and then
  // there is nothing left to roll back. "base" and a version name it explicitly.
  rb = admin("adapters/rollback");
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(rb.json()["active"], 0);
  EXPECT_EQ(rb.json()["previous"], v1);
  EXPECT_EQ(answer(kChoreiQ), base_chorei);
  EXPECT_EQ(answer(kSabitechQ), base_sabi);
  EXPECT_EQ(admin("adapters/rollback").status, 404);
  EXPECT_EQ(admin("adapters/rollback", {{"version", "bogus"}}).status, 400);
  EXPECT_EQ(admin("adapters/rollback", {{"version", "v" + std::to_string(v2)}}).json()["active"], v2);
  EXPECT_EQ(answer(kChoreiQ), kChoreiA);
  EXPECT_EQ(admin("adapters/rollback", {{"version", "base"}}).json()["active"], 0);
  EXPECT_EQ(admin("status").json()["active_adapter"], 0);

  HttpResponse metrics = tcp_request(server_->tcp_port(), make_request("GET", "/metrics", "",
                                                                     {std::string("Authorization: Bearer ") + kToken}));
  EXPECT_NE(metrics.body.find("kaizen_training_running 0"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kaizen_training_last_run{state=\"rejected\"}"), std::string::npos);
  EXPECT_NE(metrics.body.find("kaizen_training_runs_total{state=\"published\"} 2"), std::string::npos);

  // 7. Each streamed answer was stored with the adapter version it started with.
  stop();
  auto store = storage::Store::open(state_ / "db");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const auto& a : seen) {
    auto m = (*store)->get_message(std::stoull(a.id));
    ASSERT_TRUE(m.ok()) << a.id;
    EXPECT_EQ(m->adapter_version, version_of(a.model));
    EXPECT_EQ(m->content, a.text);
  }
  // The rollback to base is durable: no active pointer, v2 retired (still loadable).
  EXPECT_EQ(*(*store)->active_adapter_version(), 0u);
  EXPECT_EQ((*store)->get_adapter(v2)->state, storage::AdapterState::kRetired);
  auto pending = (*store)->get_example(false_correction);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->state, storage::ExampleState::kPending);
}

}  // namespace
}  // namespace kaizen::daemon::testing
