// kaizend (the built binary) with its disk made full and failing under it, by
// tests/fault's LD_PRELOAD injector: chat keeps being served, writes that cannot be made
// durable are answered 507 (full) / 503 (disk error) instead of being acknowledged, a
// publish that hits the full disk fails cleanly (the previous adapter stays active, the
// half-written directory is gone), backup reports the error, and once space returns
// everything works again without a restart. After kill -9 and a restart without faults,
// every acknowledged write is there.
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fault/fault_control.h"
#include "http_client.h"
#include "kaizend_process.h"
#include "learning/model/tiny.h"
#include "learning_server.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon::testing {
namespace {

namespace fs = std::filesystem;
using kaizen::testing::FaultControl;
using nlohmann::json;

std::string chat(Kaizend& k, const std::string& text, int* status) {
  HttpResponse r =
      k.post("/v1/chat/completions", chat_body(text, false, "kaizen", {{"max_tokens", 4}}));
  *status = r.status;
  return r.json().value("id", std::string());
}

HttpResponse feedback(Kaizend& k, const std::string& message_id, const std::string& correction) {
  return k.post(
      "/v1/feedback",
      json{{"message_id", message_id}, {"rating", -1}, {"correction", correction}}.dump());
}

// The adapters directory holds exactly `names`: no .tmp-*, no unrecorded version.
std::set<std::string> adapter_dirs(const std::string& state) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(state) / "adapters"))
    out.insert(e.path().filename().string());
  return out;
}

// Polls `call` until it answers `want` (the store resumes by itself within about a
// second of space returning); the last response.
template <class Call>
HttpResponse until_status(int want, Call call, double timeout_s = 20) {
  const auto t0 = std::chrono::steady_clock::now();
  HttpResponse r = call();
  while (r.status != want &&
         std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(timeout_s)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = call();
  }
  return r;
}

TEST(DiskFault, FullAndFailingDiskUnderKaizend) {
  if (!fs::exists(kaizend_bin())) GTEST_SKIP() << "kaizend not built at " << kaizend_bin();
  const std::string lib = FaultControl::library();
  ASSERT_TRUE(fs::exists(lib)) << lib << " not built";
  kaizen::testing::TempDir dir;
  model::write_tiny_model(model::TinyModelSpec{}, dir / "m", kaizen::testing::tokenizer_dir());
  const std::string state = dir / "state";
  const std::string socket = "/tmp/kaizen-disk-" + std::to_string(::getpid()) + ".sock";
  FaultControl fault(dir / "fault.ctl", state);
  const std::map<std::string, std::string> env = {{"LD_PRELOAD", lib},
                                                  {"KAIZEN_FAULT_CTL", fault.path()}};

  uint64_t v1 = 0, v_after = 0, pending_id = 0;
  std::string acked_feedback, acked_after;
  {
    Kaizend k(dir / "m", state, socket, {}, env);
    ASSERT_TRUE(k.wait_ready());
    ASSERT_EQ(
        k.admin("knowledge/import", {{"jsonl", join_lines(fact_lines(0, 4))}}).json()["imported"],
        4);
    json run = k.wait_run(k.admin("train/now").json()["run_id"]);
    ASSERT_EQ(run["state"], "published") << run.dump(1);
    v1 = run["adapter_version"];
    int status = 0;
    const std::string m1 = chat(k, "Hello", &status);
    ASSERT_EQ(status, 200);
    HttpResponse fb = feedback(k, m1, "Sabitech is in Hanoi.");
    ASSERT_EQ(fb.status, 200) << fb.body;
    acked_feedback = fb.json()["id"];

    // The disk fills while the adapter is written: the run fails, v1 keeps serving, the
    // half-written directory is gone, the examples stay approved for the next run.
    ASSERT_EQ(
        k.admin("knowledge/import", {{"jsonl", join_lines(fact_lines(4, 4))}}).json()["imported"],
        4);
    fault.aim(state + "/adapters");
    fault.set(FaultControl::kNoSpace);
    run = k.wait_run(k.admin("train/now").json()["run_id"]);
    ASSERT_EQ(run["state"], "failed") << run.dump(1);
    EXPECT_NE(run["verdict"].get<std::string>().find("No space left on device"), std::string::npos)
        << run.dump(1);
    EXPECT_EQ(k.admin("status").json()["active_adapter"], v1);
    EXPECT_EQ(adapter_dirs(state), std::set<std::string>{"v000001"});
    EXPECT_EQ(k.approved_count(), 4u);

    // The whole state directory is full.
    fault.aim(state);
    fault.set(FaultControl::kNoSpace);
    const std::string unlogged = chat(k, "Still there?", &status);
    EXPECT_EQ(status, 200) << "chat must keep being served on a full disk";
    EXPECT_EQ(unlogged.rfind("unlogged-", 0), 0u) << unlogged;
    fb = feedback(k, m1, "Sabitech makes SabiCloud.");
    EXPECT_EQ(fb.status, 507) << fb.body;
    EXPECT_EQ(fb.json()["error"]["code"], "insufficient_storage") << fb.body;
    EXPECT_NE(fb.json()["error"]["message"].get<std::string>().find("nothing was stored"),
              std::string::npos);
    EXPECT_EQ(fb.header("retry-after"), "30");
    json pending = k.admin("review").json();
    ASSERT_EQ(pending["pending"].size(), 1u) << pending.dump();  // reads still work
    pending_id = pending["pending"][0]["id"];
    EXPECT_EQ(k.admin("review/approve", {{"id", pending_id}}).status, 507);
    EXPECT_EQ(k.admin("train/now").status, 507);
    HttpResponse backup = k.admin("db/backup");
    EXPECT_TRUE(backup.status == 507 || backup.status == 503)
        << backup.status << " " << backup.body;
    json health = k.get("/healthz").json();
    EXPECT_EQ(health["status"], "degraded") << health.dump();
    EXPECT_NE(health["storage"].get<std::string>().find("NoSpace"), std::string::npos)
        << health.dump();
    json storage = k.admin("status").json()["storage"];
    EXPECT_EQ(storage["writable"], false) << storage.dump();
    EXPECT_GE(storage["failed_writes"].get<uint64_t>(), 3u) << storage.dump();
    const std::string metrics = k.get("/metrics").body;
    EXPECT_NE(metrics.find("kaizen_store_writable 0"), std::string::npos);
    EXPECT_NE(metrics.find("kaizen_chat_unlogged_total 1"), std::string::npos);

    // Space returns: no restart.
    fault.set(FaultControl::kOff);
    fb = until_status(200, [&] { return feedback(k, m1, "Sabitech makes SabiPay."); });
    ASSERT_EQ(fb.status, 200) << fb.body;
    acked_after = fb.json()["id"];
    EXPECT_EQ(k.get("/healthz").json()["status"], "ok");
    EXPECT_EQ(k.admin("status").json()["storage"]["writable"], true);
    EXPECT_EQ(k.admin("review/approve", {{"id", pending_id}}).status, 200);
    const std::string logged = chat(k, "And now?", &status);
    EXPECT_EQ(status, 200);
    EXPECT_EQ(logged.find("unlogged"), std::string::npos) << logged;
    run = k.wait_run(k.admin("train/now").json()["run_id"]);
    ASSERT_EQ(run["state"], "published") << run.dump(1);
    v_after = run["adapter_version"];
    EXPECT_EQ(run["example_ids"].size(),
              5u);  // the 4 the failed run could not publish + the approved correction
    HttpResponse b = k.admin("db/backup");
    EXPECT_EQ(b.status, 200) << b.body;
  }

  // A run whose end cannot be recorded (the disk fills during training, then the run is
  // cancelled): its record is saved once space returns, not left "running".
  {
    Kaizend k(dir / "m", state, socket, {"--train.epochs=400"}, env);
    ASSERT_TRUE(k.wait_ready());
    ASSERT_EQ(
        k.admin("knowledge/import", {{"jsonl", join_lines(fact_lines(8, 2))}}).json()["imported"],
        2);
    const uint64_t id = k.admin("train/now").json()["run_id"];
    ASSERT_TRUE(k.wait_training(id));
    fault.set(FaultControl::kNoSpace);
    ASSERT_EQ(k.admin("train/cancel").status, 200);
    json run = k.wait_run(id);
    EXPECT_EQ(run["state"], "running") << "the store refused the final record: " << run.dump(1);
    fault.set(FaultControl::kOff);
    run = until_status(200, [&] {
            HttpResponse r = k.admin("runs/show", {{"id", id}});
            if (r.json()["state"] == "running") r.status = 0;  // not saved yet
            return r;
          }).json();
    EXPECT_EQ(run["state"], "failed") << run.dump(1);
    EXPECT_NE(run["verdict"].get<std::string>().find("cancelled"), std::string::npos)
        << run.dump(1);

    // A failing disk (EIO): refused as 503, chat still served; RocksDB needs a reopen.
    int status = 0;
    const std::string m2 = chat(k, "Disk?", &status);
    ASSERT_EQ(status, 200);
    fault.set(FaultControl::kIoError);
    chat(k, "Disk now?", &status);
    EXPECT_EQ(status, 200);
    HttpResponse fb = feedback(k, m2, "The disk is failing.");
    EXPECT_EQ(fb.status, 503) << fb.body;
    EXPECT_NE(fb.json()["error"]["message"].get<std::string>().find("nothing was stored"),
              std::string::npos);
    EXPECT_NE(k.get("/healthz").json()["storage"].get<std::string>().find("IOError"),
              std::string::npos);
    k.kill9();
    fault.set(FaultControl::kOff);
  }

  // Restart without faults: every acknowledged write is there.
  {
    Kaizend k(dir / "m", state, socket, {});
    ASSERT_TRUE(k.wait_ready());
    EXPECT_EQ(k.admin("status").json()["active_adapter"], v_after);
    EXPECT_NE(v_after, v1);
    json runs = k.admin("runs").json();
    std::map<std::string, int> states;
    json last_published;
    for (const auto& r : runs["runs"]) {
      ++states[r["state"].get<std::string>()];
      if (r["state"] == "published" && last_published.is_null())
        last_published = r;  // newest first
    }
    EXPECT_EQ(states["published"], 2) << runs.dump(1);
    EXPECT_EQ(states["failed"], 2) << runs.dump(1);  // the full-disk publish, the cancelled run
    EXPECT_EQ(states["running"] + states["interrupted"], 0) << runs.dump(1);
    char name[32];
    std::snprintf(name, sizeof(name), "v%06llu", static_cast<unsigned long long>(v_after));
    EXPECT_EQ(adapter_dirs(state), (std::set<std::string>{"v000001", name}));
    // The two acknowledged corrections: the first approved during the full disk's
    // aftermath and trained, the second still waiting for review.
    ASSERT_TRUE(last_published.is_object()) << runs.dump(1);
    bool trained = false;
    for (const auto& e : last_published["example_ids"]) trained = trained || e == pending_id;
    EXPECT_TRUE(trained) << last_published.dump(1);
    json pending = k.admin("review").json()["pending"];
    ASSERT_EQ(pending.size(), 1u) << pending.dump(1);
    EXPECT_EQ(std::to_string(pending[0]["feedback_id"].get<uint64_t>()), acked_after);
    EXPECT_NE(acked_feedback, acked_after);
  }
  ::unlink(socket.c_str());
}

}  // namespace
}  // namespace kaizen::daemon::testing
