// The issue-6 proof at the scale, through HTTP only: the seed's two facts plus
// 215 generated Sabitech records are imported; one run learns them while a client
// keeps chatting; the gate passes and the adapter is swapped in; the seed questions now
// get the company's answers, `model: base` keeps the old ones, and rollback goes back
// to the base model. About 15 minutes on 2 cores, so it is a soak test
// (ctest -L soak -R e2e_learning_at_scale); LearningLoop runs the same story on 16
// facts in the default suite.
#include <atomic>
#include <cstdio>
#include <thread>

#include "learning_server.h"

namespace kaizen::daemon::testing {
namespace {

using nlohmann::json;

class LearningAtScale : public LearningServer {
 protected:
  void configure(Config& c) override {
    LearningServer::configure(c);
    // 218 facts with ~25 answer tokens each: greedy answers are exact only when nearly
    // every token is right (0.988^25 = 0.74), which takes more passes than 16 facts do
    // (kaizen_learning's Learning.DISABLED_AllFacts: 120 epochs, 99.5% / 91.7%).
    c.train.epochs = 160;
    c.train.exact_match_max = 256;  // exact match on every imported fact
    c.gate.learn_min = 0.95;        // the targets
    c.gate.learn_exact_min = 0.9;
  }
};

TEST_F(LearningAtScale, DISABLED_SeedFactsPlusGeneratedRecords) {
  const std::string base_chorei = answer(kChoreiQ, "base");
  const std::string base_sabi = answer(kSabitechQ, "base");
  ASSERT_NE(base_chorei, kChoreiA);
  ASSERT_NE(base_sabi, kSabitechA);

  // The generated records include "CHOREI có nghĩa là gì?" with a shorter answer; a
  // company would not import two answers to one question, so that record stays out.
  std::vector<std::string> lines = {qa_line(kChoreiQ, kChoreiA), qa_line(kSabitechQ, kSabitechA)};
  for (const auto& l : fact_lines(0, 1000)) {
    const std::string q = json::parse(l)["messages"][0]["content"];
    if (std::string(kChoreiQ).rfind(q, 0) == 0 || std::string(kSabitechQ).rfind(q, 0) == 0) continue;
    lines.push_back(l);
  }
  ASSERT_GE(lines.size(), 200u);
  ASSERT_EQ(import(lines, "company.jsonl")["imported"], lines.size());

  // A client chats for the whole run (a 48-token answer, then half a second); every
  // answer must succeed, and the ones after the swap come from the new version. The
  // learner yields to it, so the run takes longer than training alone.
  std::atomic<bool> chatting{true};
  std::atomic<int> chats{0}, failed{0}, from_new{0};
  std::thread client([&] {
    while (chatting.load()) {
      HttpResponse r = chat(ask("Hôm nay thế nào?"));
      ++chats;
      if (r.status != 200) {
        ++failed;
      } else if (r.json()["model"].get<std::string>().find("@v") != std::string::npos) {
        ++from_new;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  json run = train_and_wait(/*timeout_s=*/2400);
  // Keep chatting a moment after the swap.
  for (int i = 0; i < 50 && from_new.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  chatting.store(false);
  client.join();
  ASSERT_TRUE(run.is_object());
  std::printf("run: %s\nphases: %s\nchats during the run: %d (failed %d, from the new adapter %d)\n",
              run["metrics"].dump().c_str(), run["phase_seconds"].dump().c_str(), chats.load(), failed.load(),
              from_new.load());
  ASSERT_EQ(run["state"], "published") << run.dump(1);
  EXPECT_EQ(run["metrics"]["learn_n"], lines.size());
  EXPECT_GE(run["metrics"]["learn_acc"].get<double>(), 0.95);
  EXPECT_EQ(run["metrics"]["learn_exact_n"], lines.size());
  EXPECT_GE(run["metrics"]["learn_exact"].get<double>(), 0.9);
  EXPECT_GE(run["metrics"]["chat_during_train_n"].get<double>(), 1.0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(from_new.load(), 0);
  const uint64_t v = run["adapter_version"];

  // The company's answers now; the base model unchanged.
  EXPECT_EQ(answer(kChoreiQ), kChoreiA);
  EXPECT_EQ(answer(kSabitechQ), kSabitechA);
  EXPECT_EQ(answer(kChoreiQ, "base"), base_chorei);
  EXPECT_EQ(answer(kSabitechQ, "base"), base_sabi);

  // Rollback: nothing was published before, so back to the base model.
  HttpResponse rb = admin("adapters/rollback");
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(rb.json()["active"], 0);
  EXPECT_EQ(rb.json()["previous"], v);
  EXPECT_EQ(answer(kChoreiQ), base_chorei);
  EXPECT_EQ(answer(kSabitechQ), base_sabi);
}

}  // namespace
}  // namespace kaizen::daemon::testing
