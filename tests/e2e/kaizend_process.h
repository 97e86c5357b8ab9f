// The built kaizend as a child process, for the tests that kill it (-9), restart it, or
// run it under tests/fault's disk-fault injector. Driven over its Unix socket only.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_client.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon::testing {

inline std::string kaizend_bin() {
  return kaizen::testing::env_or("KAIZEN_BIN_DIR", ".") + "/kaizend";
}

class Kaizend {
 public:
  // Flags every test here shares: the tiny model on CPU, no TCP listener, a learner that
  // trains on any new example. The gate thresholds are set so that what these tests
  // check (durability, faults) does not depend on the gate's verdict on a tiny model.
  static std::vector<std::string> base_flags(const std::string& model, const std::string& state,
                                             const std::string& socket) {
    return {"--model=" + model,
            "--state_dir=" + state,
            "--socket=" + socket,
            "--listen=",
            "--device=cpu",
            "--threads=2",
            "--log_level=warn",
            "--system_prompt=You are Kaizen.",
            "--train.min_new_examples=0",
            "--train.seed=3",
            "--gate.learn_min=0.5",
            "--train.epochs=30",
            "--gate.canary_max_kl=1000",
            "--gate.canary_max_leak=1",
            "--train.retain_holdout=0",
            "--gate.retain_max_drop=1"};
  }

  // Starts kaizend with base_flags() + `extra` (later flags win) and `env` added to the
  // environment.
  Kaizend(const std::string& model, const std::string& state, const std::string& socket,
          const std::vector<std::string>& extra, const std::map<std::string, std::string>& env = {})
      : socket_(socket) {
    std::vector<std::string> args = {kaizend_bin()};
    for (auto& f : base_flags(model, state, socket)) args.push_back(f);
    for (auto& e : extra) args.push_back(e);
    kaizen::testing::ExecArgs exec(std::move(args), env);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execve(exec.argv()[0], exec.argv(), exec.envp());
      ::_exit(127);
    }
  }
  ~Kaizend() { kill9(); }
  Kaizend(const Kaizend&) = delete;
  Kaizend& operator=(const Kaizend&) = delete;

  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // true while the process has not exited.
  bool alive() {
    int st = 0;
    if (pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }
  // Waits until the admin socket answers status; false if kaizend exited or timed out.
  bool wait_ready(double timeout_s = 60) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() <
           timeout_s) {
      if (!alive()) return false;
      if (admin("status").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  HttpResponse admin(const std::string& op, const nlohmann::json& body = nlohmann::json::object()) {
    return unix_request(socket_, make_request("POST", "/admin/" + op, body.dump()));
  }
  HttpResponse get(const std::string& path) {
    return unix_request(socket_, make_request("GET", path));
  }
  HttpResponse post(const std::string& path, const std::string& body) {
    return unix_request(socket_, make_request("POST", path, body));
  }
  // Approved examples waiting to be trained.
  size_t approved_count() {
    return admin("feedback/export", {{"limit", 1000}}).json()["examples"].size();
  }
  // Waits for run `id` to finish; returns its record (null on timeout).
  nlohmann::json wait_run(uint64_t id, double timeout_s = 180) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() <
           timeout_s) {
      nlohmann::json s = admin("train/status").json();
      if (s.is_object() && s["state"] == "idle" && s["last"].is_object() && s["last"]["id"] == id) {
        return admin("runs/show", {{"id", id}}).json();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return nullptr;
  }
  // Waits until run `id` has taken at least one optimizer step.
  bool wait_training(uint64_t id, double timeout_s = 120) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() <
           timeout_s) {
      nlohmann::json s = admin("train/status").json();
      if (s["state"] == "running" && s["run"]["id"] == id && s["run"]["phase"] == "train" &&
          s["run"]["step"].get<int64_t>() >= 1) {
        return true;
      }
      if (s["state"] == "idle") return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace kaizen::daemon::testing
