// kill -9 of kaizend (a child process running the built binary) during training and
// during publish: on restart the active adapter is the last one fully published, the
// killed run is marked interrupted, half-written adapter directories are gone, and every
// example of the killed runs is still approved (then trained by the next run).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http_client.h"
#include "kaizend_process.h"
#include "learning/model/tiny.h"
#include "learning_server.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(LearnerCrash, KillDuringTrainingAndDuringPublishLosesNothing) {
  if (!fs::exists(kaizend_bin())) GTEST_SKIP() << "kaizend not built at " << kaizend_bin();
  kaizen::testing::TempDir dir;
  model::write_tiny_model(model::TinyModelSpec{}, dir / "m", kaizen::testing::tokenizer_dir());
  const std::string state = dir / "state";
  const std::string socket = "/tmp/kaizen-crash-" + std::to_string(::getpid()) + ".sock";

  // v1: a normal publish.
  uint64_t v1 = 0;
  {
    Kaizend k(dir / "m", state, socket, {});
    ASSERT_TRUE(k.wait_ready());
    auto r = k.admin("knowledge/import", {{"jsonl", join_lines(fact_lines(0, 4))}});
    ASSERT_EQ(r.json()["imported"], 4) << r.body;
    json run = k.wait_run(k.admin("train/now").json()["run_id"]);
    ASSERT_EQ(run["state"], "published") << run.dump(1);
    v1 = run["adapter_version"];
    ASSERT_EQ(k.approved_count(), 0u);
    ASSERT_EQ(k.admin("knowledge/import", {{"jsonl", join_lines(fact_lines(4, 4))}}).json()["imported"], 4);
    k.kill9();
  }

  // kill -9 while training (many epochs so there is time to see a step).
  uint64_t killed_in_training = 0;
  {
    Kaizend k(dir / "m", state, socket, {"--train.epochs=400"});
    ASSERT_TRUE(k.wait_ready());
    killed_in_training = k.admin("train/now").json()["run_id"];
    ASSERT_TRUE(k.wait_training(killed_in_training));
    k.kill9();
  }

  // Restart: v1 active, run interrupted, examples still approved; then kill -9 during
  // publish, after the adapter directory is renamed and before the DB records it.
  uint64_t killed_in_publish = 0;
  {
    Kaizend k(dir / "m", state, socket, {"--train.publish_pause_ms=60000"});
    ASSERT_TRUE(k.wait_ready());
    EXPECT_EQ(k.admin("status").json()["active_adapter"], v1);
    EXPECT_EQ(k.admin("runs/show", {{"id", killed_in_training}}).json()["state"], "interrupted");
    EXPECT_EQ(k.approved_count(), 4u);
    killed_in_publish = k.admin("train/now").json()["run_id"];
    ASSERT_GT(killed_in_publish, killed_in_training);
    bool written = false;
    for (int i = 0; i < 1800 && !written; ++i) {
      json s = k.admin("train/status").json();
      json run = k.admin("runs/show", {{"id", killed_in_publish}}).json();
      const uint64_t v = run.value("adapter_version", uint64_t{0});
      char name[32];
      std::snprintf(name, sizeof(name), "v%06llu", static_cast<unsigned long long>(v));
      written = v != 0 && s["run"].is_object() && s["run"]["phase"] == "publish" &&
                fs::exists(fs::path(state) / "adapters" / name / "adapter_model.safetensors");
      if (!written && run.value("state", std::string()) != "running") break;  // finished without pausing
      if (!written) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(written) << "the publish pause was never reached: "
                         << k.admin("runs/show", {{"id", killed_in_publish}}).body;
    k.kill9();
  }

  // Restart: still v1, both runs interrupted, no half-written directory, nothing lost;
  // the next run trains the same 4 examples and publishes.
  {
    Kaizend k(dir / "m", state, socket, {});
    ASSERT_TRUE(k.wait_ready());
    EXPECT_EQ(k.admin("status").json()["active_adapter"], v1);
    json run = k.admin("runs/show", {{"id", killed_in_publish}}).json();
    EXPECT_EQ(run["state"], "interrupted");
    const uint64_t orphan = run["adapter_version"];
    EXPECT_EQ(k.admin("adapters/show", {{"version", orphan}}).status, 404);
    for (const auto& e : fs::directory_iterator(fs::path(state) / "adapters")) {
      const std::string name = e.path().filename().string();
      EXPECT_NE(name.rfind(".tmp-", 0), 0u) << name;
      EXPECT_NE(name, "v" + std::string(6 - std::to_string(orphan).size(), '0') + std::to_string(orphan));
    }
    EXPECT_EQ(k.approved_count(), 4u);
    json next = k.wait_run(k.admin("train/now").json()["run_id"]);
    ASSERT_EQ(next["state"], "published") << next.dump(1);
    EXPECT_EQ(next["example_ids"].size(), 4u);
    EXPECT_EQ(k.approved_count(), 0u);
    EXPECT_EQ(k.admin("status").json()["active_adapter"], next["adapter_version"]);
  }
  ::unlink(socket.c_str());
}

}  // namespace
}  // namespace kaizen::daemon::testing
