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
#include "learning/model/tiny.h"
#include "learning_server.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string kaizend_bin() { return kaizen::testing::env_or("KAIZEN_BIN_DIR", ".") + "/kaizend"; }

class Kaizend {
 public:
  Kaizend(const std::string& model, const std::string& state, const std::string& socket,
          std::vector<std::string> extra)
      : socket_(socket) {
    std::vector<std::string> args = {kaizend_bin(),       "--model=" + model,          "--state_dir=" + state,
                                     "--socket=" + socket, "--listen=",                "--device=cpu",
                                     "--threads=2",        "--log_level=warn",         "--system_prompt=You are Kaizen.",
                                     "--train.min_new_examples=0", "--train.seed=3",   "--gate.learn_min=0.5",
                                     "--train.epochs=30", "--gate.canary_max_kl=1000", "--gate.canary_max_leak=1",
                                     // what is checked here is durability, not the gate
                                     "--train.retain_holdout=0", "--gate.retain_max_drop=1"};
    for (auto& e : extra) args.push_back(e);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Kaizend() { kill9(); }
  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // Waits until the admin socket answers status.
  bool wait_ready(double timeout_s = 60) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // exited
      }
      if (admin("status").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  HttpResponse admin(const std::string& op, const json& body = json::object()) {
    return unix_request(socket_, make_request("POST", "/admin/" + op, body.dump()));
  }
  json wait_run(uint64_t id, double timeout_s = 180) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
      json s = admin("train/status").json();
      if (s.is_object() && s["state"] == "idle" && s["last"].is_object() && s["last"]["id"] == id) {
        return admin("runs/show", {{"id", id}}).json();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return nullptr;
  }

 private:
  std::string socket_;
  pid_t pid_ = -1;
};

size_t approved_count(Kaizend& k) {
  return k.admin("feedback/export", {{"limit", 1000}}).json()["examples"].size();
}

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
    ASSERT_EQ(approved_count(k), 0u);
    ASSERT_EQ(k.admin("knowledge/import", {{"jsonl", join_lines(fact_lines(4, 4))}}).json()["imported"], 4);
    k.kill9();
  }

  // kill -9 while training (many epochs so there is time to see a step).
  uint64_t killed_in_training = 0;
  {
    Kaizend k(dir / "m", state, socket, {"--train.epochs=400"});
    ASSERT_TRUE(k.wait_ready());
    killed_in_training = k.admin("train/now").json()["run_id"];
    bool training = false;
    for (int i = 0; i < 600 && !training; ++i) {
      json s = k.admin("train/status").json();
      training = s["state"] == "running" && s["run"]["phase"] == "train" && s["run"]["step"].get<int64_t>() >= 1;
      if (!training) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(training);
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
    EXPECT_EQ(approved_count(k), 4u);
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
    EXPECT_EQ(approved_count(k), 4u);
    json next = k.wait_run(k.admin("train/now").json()["run_id"]);
    ASSERT_EQ(next["state"], "published") << next.dump(1);
    EXPECT_EQ(next["example_ids"].size(), 4u);
    EXPECT_EQ(approved_count(k), 0u);
    EXPECT_EQ(k.admin("status").json()["active_adapter"], next["adapter_version"]);
  }
  ::unlink(socket.c_str());
}

}  // namespace
}  // namespace kaizen::daemon::testing
