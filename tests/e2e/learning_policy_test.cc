// Who gets to teach kaizen, through the HTTP API only: feedback from a trusted author
// (train.trusted_authors) is approved on arrival while everyone else's waits for review;
// train.max_per_author caps one author's share of a run and the rest waits for the next
// run, nothing skipped; paraphrases given with an imported fact are held out of training
// and scored by the gate (paraphrase_* metrics on the run record); the same proposal
// from two users is one example, which a trusted author's duplicate approves.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "learning_server.h"

namespace kaizen::daemon::testing {
namespace {

using nlohmann::json;

class LearningPolicy : public LearningServer {
 protected:
  void configure(Config& c) override {
    LearningServer::configure(c);
    c.train.trusted_authors = {"hr-bot"};
    c.train.max_per_author = 2;
    c.train.max_steps = 3;  // this test checks what goes into a run, not how well it learns
    c.train.exact_match_max = 4;
    c.gate.learn_min = 0;
    c.gate.canary_max_kl = 1e9;
    // Runs of one fact: on the random demo model an adapter that learned one answer gives
    // it to every prompt, which the canary rightly calls collapse; bookkeeping is tested here.
    c.gate.canary_max_leak = 1;
  }
  // One answer to rate; returns its id.
  std::string answer_id(const std::string& q) {
    HttpResponse r = chat(ask(q));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json()["id"];
  }
  json feedback(const std::string& id, const std::string& user) {
    json fb = {{"message_id", id}, {"rating", 1}, {"user", user}};
    HttpResponse r = tcp_request(server_->tcp_port(), make_request("POST", "/v1/feedback", fb.dump(),
                                                                   {std::string("Authorization: Bearer ") + kToken}));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json();
  }
};

TEST_F(LearningPolicy, TrustedAuthorsPerAuthorLimitAndParaphraseHoldout) {
  // An operator import with two held-out paraphrases of its question.
  json fact = json::parse(qa_line(kChoreiQ, kChoreiA));
  fact["paraphrases"] = {"Chorei là gì vậy?", "What is CHOREI at Sabitech?"};
  ASSERT_EQ(import({fact.dump()}, "faq.jsonl")["imported"], 1);

  // Three approvals from the trusted HR bot, one proposal from a user.
  for (int i = 0; i < 3; ++i) {
    json ack = feedback(answer_id("HR question " + std::to_string(i)), "hr-bot");
    EXPECT_EQ(ack["status"], "approved") << ack;
  }
  const std::string alices = answer_id("a user's question");
  EXPECT_EQ(feedback(alices, "alice")["status"], "queued_for_review");
  EXPECT_EQ(feedback(alices, "bob")["status"], "duplicate");  // same proposal: collapses
  json pending = admin("review").json()["pending"];
  ASSERT_EQ(pending.size(), 1u);  // only alice's waits; the bot's went straight through
  EXPECT_EQ(pending[0]["author"], "alice");

  // Run 1: the import and the bot's first two; its third is over the limit of 2.
  json run1 = train_and_wait();
  ASSERT_TRUE(run1.is_object());
  ASSERT_EQ(run1["example_ids"].size(), 3u) << run1.dump();
  EXPECT_EQ(run1["config"]["deferred_from_author"], "hr-bot");
  EXPECT_EQ(run1["config"]["max_per_author"], 2);
  // The paraphrases were scored, never trained on.
  EXPECT_EQ(run1["metrics"]["paraphrase_n"], 2) << run1["metrics"].dump();
  EXPECT_EQ(run1["metrics"]["paraphrase_exact_n"], 2);
  const double pacc = run1["metrics"]["paraphrase_acc"];
  EXPECT_GE(pacc, 0.0);
  EXPECT_LE(pacc, 1.0);
  EXPECT_EQ(run1["state"], "published") << run1["verdict"];
  EXPECT_EQ(run1["metrics"]["chat_during_train_n"], 0);  // nobody chatted during this run

  // Run 2: the deferred one, and nothing else.
  json run2 = train_and_wait();
  ASSERT_TRUE(run2.is_object());
  ASSERT_EQ(run2["example_ids"].size(), 1u) << run2.dump();
  EXPECT_EQ(run2["config"]["deferred_from_author"], "");
  std::set<uint64_t> trained;
  for (const auto& id : run1["example_ids"]) trained.insert(id.get<uint64_t>());
  EXPECT_EQ(trained.count(run2["example_ids"][0].get<uint64_t>()), 0u);
  EXPECT_EQ(run2["metrics"]["paraphrase_n"], 0);  // no paraphrases in this run

  // Nothing new is left; alice's proposal still waits for a reviewer.
  EXPECT_EQ(admin("train/now").status, 400);
  json waiting = admin("review").json()["pending"];
  ASSERT_EQ(waiting.size(), 1u);
  const uint64_t alices_example = waiting[0]["id"];

  // The trusted bot proposing the same conversation approves alice's waiting proposal:
  // still one example, no longer in the queue, and the next run trains it.
  EXPECT_EQ(feedback(alices, "hr-bot")["status"], "duplicate");
  EXPECT_EQ(admin("review").json()["pending"].size(), 0u);
  json run3 = train_and_wait();
  ASSERT_TRUE(run3.is_object());
  ASSERT_EQ(run3["example_ids"].size(), 1u) << run3.dump();
  EXPECT_EQ(run3["example_ids"][0], alices_example);
}

// Retention: train.keep_versions unpinned inactive versions keep their files; older ones
// are pruned (directory deleted, record kept in state "pruned"); pinned ones never are.
// A pruned version cannot be activated (409, saying why) and the default rollback skips it.
class AdapterRetention : public LearningPolicy {
 protected:
  void configure(Config& c) override {
    LearningPolicy::configure(c);
    c.train.keep_versions = 1;
    c.gate.retain_max_drop = 1.0;  // three optimizer steps per run: only the bookkeeping counts
  }
  uint64_t publish(int i) {
    EXPECT_EQ(import({qa_line("Retention question " + std::to_string(i), "Answer " + std::to_string(i))},
                     "r" + std::to_string(i) + ".jsonl")["imported"], 1);
    json run = train_and_wait();
    EXPECT_TRUE(run.is_object());
    if (!run.is_object()) return 0;
    EXPECT_EQ(run["state"], "published") << run["verdict"];
    return run["adapter_version"];
  }
  json show(uint64_t v) { return admin("adapters/show", {{"version", v}}).json(); }
  bool files_of(uint64_t v) { return std::filesystem::exists(state_.path() / show(v)["path"].get<std::string>()); }
};

TEST_F(AdapterRetention, PrunesPastKeepVersionsNeverPinnedAndRefusesPrunedRollback) {
  const uint64_t v1 = publish(1);
  ASSERT_EQ(admin("adapters/pin", {{"version", v1}}).status, 200);
  const uint64_t v2 = publish(2);
  const uint64_t v3 = publish(3);
  const uint64_t v4 = publish(4);
  ASSERT_TRUE(v1 && v2 && v3 && v4);
  // Active v4; kept: v3 (keep_versions 1) and pinned v1; pruned: v2.
  EXPECT_EQ(show(v4)["state"], "active");
  EXPECT_EQ(show(v3)["state"], "retired");
  EXPECT_EQ(show(v2)["state"], "pruned");
  EXPECT_EQ(show(v1)["state"], "retired");
  EXPECT_TRUE(files_of(v4));
  EXPECT_TRUE(files_of(v3));
  EXPECT_FALSE(files_of(v2));
  EXPECT_TRUE(files_of(v1));

  HttpResponse refused = admin("adapters/rollback", {{"version", v2}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("pruned"), std::string::npos) << refused.body;
  EXPECT_EQ(admin("status").json()["active_adapter"], v4);
  // Default rollback: v4 -> v3 -> (v2 pruned) v1 -> base.
  EXPECT_EQ(admin("adapters/rollback").json()["active"], v3);
  EXPECT_EQ(admin("adapters/rollback").json()["active"], v1);
  EXPECT_EQ(admin("adapters/rollback").json()["active"], 0);
  // Rolling forward to a kept version works.
  EXPECT_EQ(admin("adapters/rollback", {{"version", v4}}).json()["active"], v4);
}

// Automatic triggers and cancellation: train.min_new_examples starts a run by itself
// once that many approved examples are new (not before); train.interval_s starts one
// when anything new waits; `train/cancel` stops a run between optimizer steps, nothing
// is published, the triggers do not restart it by themselves, and its examples stay new
// for the next run.
class LearnerTriggers : public LearningPolicy {
 protected:
  void configure(Config& c) override {
    LearningPolicy::configure(c);
    c.train.min_new_examples = 3;
    c.train.interval_s = 0;
    c.train.max_steps = 0;  // runs of real length, so one can be cancelled mid-way
    c.train.epochs = 400;
  }
  json runs() { return admin("runs").json()["runs"]; }
  // Waits until the newest run is in `state` (or `timeout_s` passes: a failure naming
  // the runs last seen); returns it, or null on timeout.
  json wait_newest(const std::string& state, double timeout_s = 60) {
    json r, newest;
    ::kaizen::testing::wait_until(
        [&] {
          r = runs();
          if (r.empty() || r[0]["state"] != state) return false;
          newest = r[0];
          return true;
        },
        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)), "the newest run in state " + state,
        [&] { return "runs " + r.dump(); });
    return newest;
  }
  // The learner loop's count of automatic-trigger evaluations (train/status "checks"),
  // or -1 when train/status has none.
  int64_t trigger_checks() {
    json st = admin("train/status").json();
    return st.is_object() && st.contains("checks") && st["checks"].is_number_integer() ? st["checks"].get<int64_t>()
                                                                                       : -1;
  }
  // Waits until trigger_checks() >= n; fails at once when train/status has no "checks".
  bool wait_checks_at_least(int64_t n, const std::string& what) {
    int64_t c = trigger_checks();
    if (c < 0) {
      ADD_FAILURE() << "train/status has no integer \"checks\" (learner loop trigger evaluations), needed to "
                    << "wait for " << what << ": " << admin("train/status").body;
      return false;
    }
    return ::kaizen::testing::wait_until([&] { return (c = trigger_checks()) >= n; }, std::chrono::seconds(15),
                                         what + " (train/status checks >= " + std::to_string(n) + ")",
                                         [&] { return "checks " + std::to_string(c); });
  }
  // Waits until the learner's loop has evaluated its automatic triggers at least twice
  // more than when called. The second of those passes began after this call, so it saw
  // everything committed before the call: when it still started no run, none is due.
  // (Twice, not once: a pass may be under way while this reads the counter.)
  bool wait_trigger_checks(const std::string& why) {
    const int64_t c0 = trigger_checks();
    return wait_checks_at_least(c0 < 0 ? 0 : c0 + 2, "two learner trigger checks after " + why);
  }
  std::vector<std::string> facts(int first, int n) {
    std::vector<std::string> out;
    for (int i = first; i < first + n; ++i) {
      out.push_back(qa_line("Trigger question " + std::to_string(i), "Answer " + std::to_string(i)));
    }
    return out;
  }
};

TEST_F(LearnerTriggers, MinNewExamplesStartsARunAndCancelStopsIt) {
  ASSERT_EQ(import(facts(0, 2), "a.jsonl")["imported"], 2);
  wait_trigger_checks("importing 2 examples");  // the loop has seen them and started nothing
  EXPECT_TRUE(runs().empty()) << "2 new examples < train.min_new_examples 3";

  ASSERT_EQ(import(facts(2, 1), "b.jsonl")["imported"], 1);
  json run = wait_newest("running", 10);
  ASSERT_TRUE(run.is_object());
  EXPECT_EQ(run["trigger"], "min_new_examples");
  EXPECT_EQ(run["example_ids"].size(), 3u);
  // Cancel once it is training.
  json st;
  ::kaizen::testing::wait_until(
      [&] {
        st = admin("train/status").json();
        return st.contains("run") && st["run"]["phase"] == "train" && st["run"]["step"].get<int64_t>() > 0;
      },
      std::chrono::seconds(30), "the run to reach phase train, step > 0", [&] { return "train/status " + st.dump(); });
  EXPECT_EQ(admin("train/cancel").json()["cancelled"], true);
  json failed = wait_newest("failed", 30);
  ASSERT_TRUE(failed.is_object());
  EXPECT_EQ(failed["verdict"], "cancelled by the operator");
  EXPECT_EQ(failed["adapter_version"], 0);  // nothing published
  EXPECT_EQ(admin("status").json()["active_adapter"], 0);
  EXPECT_EQ(admin("train/cancel").json()["cancelled"], false);  // nothing running now
  // The automatic trigger does not restart the cancelled run by itself...
  wait_trigger_checks("the cancelled run ended");
  EXPECT_EQ(runs()[0]["id"], failed["id"]);
  // ...but its examples are still new: the next run (here `train now`) takes them.
  HttpResponse now = admin("train/now");
  ASSERT_EQ(now.status, 200) << now.body;
  json again = wait_newest("running", 10);
  ASSERT_TRUE(again.is_object());
  EXPECT_NE(again["id"], failed["id"]);
  EXPECT_EQ(again["trigger"], "manual");
  EXPECT_EQ(again["example_ids"], failed["example_ids"]);
  EXPECT_EQ(admin("train/cancel").json()["cancelled"], true);
  wait_newest("failed", 30);
}

class LearnerInterval : public LearnerTriggers {
 protected:
  void configure(Config& c) override {
    LearnerTriggers::configure(c);
    c.train.min_new_examples = 0;
    c.train.interval_s = 2;
    c.train.max_steps = 3;
  }
};

TEST_F(LearnerInterval, IntervalStartsARunOnlyWhenSomethingIsNew) {
  // The loop is running (one check done), so its interval clock started before now...
  wait_checks_at_least(1, "the learner loop's first trigger check");
  // ...and has run out by then. Not synchronisation: the time passing is what is tested.
  std::this_thread::sleep_until(std::chrono::steady_clock::now() + std::chrono::seconds(config_.train.interval_s));
  // A pass since then has evaluated the due interval with nothing new.
  wait_trigger_checks("train.interval_s ran out with nothing new");
  EXPECT_TRUE(runs().empty()) << "nothing new: the interval must not start empty runs";
  ASSERT_EQ(import(facts(0, 1), "a.jsonl")["imported"], 1);
  json run = wait_newest("published", 30);
  ASSERT_TRUE(run.is_object());
  EXPECT_EQ(run["trigger"], "interval");
  EXPECT_EQ(run["example_ids"].size(), 1u);
}

}  // namespace
}  // namespace kaizen::daemon::testing
