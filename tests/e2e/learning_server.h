// Fixture for the continual-learning e2e tests: the real Service (engine, Store,
// adapter registry, learner) behind the real HTTP server, driven only over HTTP (TCP for
// chat, the Unix socket for admin), on the tiny demo-initialised Qwen3 model.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/serve/kaizen_service.h"
#include "daemon/http/server.h"
#include "http_client.h"
#include "real_server.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon::testing {

// The company's own answers to the seed questions (DESIGN.md "Why").
inline const char* kChoreiQ = "CHOREI có nghĩa là gì? /no_think";
inline const char* kChoreiA = "CHOREI (朝礼) là buổi họp sáng lúc 8:30 của Sabitech.";
inline const char* kSabitechQ = "Bạn có biết về công ty sabitech không?";
inline const char* kSabitechA = "Có. Sabitech là công ty phần mềm ở Hà Nội, làm SabiCloud và SabiPay.";

inline std::string qa_line(const std::string& q, const std::string& a) {
  return nlohmann::json{{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}}
             .dump();
}

// Lines [first, first + count) of the synthetic Sabitech facts shared with the trainer
// tests (examples/sabitech_facts.jsonl).
inline std::vector<std::string> fact_lines(size_t first, size_t count) {
  std::ifstream in(kaizen::testing::source_dir() + "/examples/sabitech_facts.jsonl");
  std::vector<std::string> out;
  std::string line;
  for (size_t i = 0; std::getline(in, line);) {
    if (line.empty()) continue;
    if (i >= first && i < first + count) out.push_back(line);
    ++i;
  }
  return out;
}

inline std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

class LearningServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new kaizen::testing::TempDir();
    model::write_tiny_model(model::TinyModelSpec{}, *model_dir_ / "m", kaizen::testing::tokenizer_dir());
  }
  static void TearDownTestSuite() { delete model_dir_; }

  // Training settings for a tiny model on 2 shared cores: small runs, manual trigger.
  virtual void configure(Config& c) {
    c.train.min_new_examples = 0;
    c.train.seed = 1;
    c.train.epochs = 40;         // small batches of facts: more passes than the recipe's 20
    c.train.max_yield_ms = 250;  // clients below chat back to back: let training progress
    // The random tiny model forgets every fact it does not rehearse (measured: a held-out
    // fact's accuracy 0.96 -> 0.39 in generation 2), so retention is measured on the
    // rehearsed replay sample here; real checkpoints keep the held-out default.
    c.train.retain_holdout = 0;
    // train.replay_ratio stays at the default 1: every epoch rehearses as many earlier
    // facts as there are new ones, in turn, so all of them are rehearsed over the run.
    c.train.exact_match_max = 32;
    c.gate.learn_min = 0.9;
    // The canary keeps its defaults (calibrated for the demo model: gate_test.cc).
  }

  void SetUp() override {
    config_ = TestServer::default_config();
    config_.model = *model_dir_ / "m";
    config_.state_dir = state_.path().string();
    config_.system_prompt = "You are {agent_name}.";
    config_.device = "cpu";
    config_.threads = 2;
    config_.limits.max_active_chats = 8;
    configure(config_);
    start();
  }
  void start() {
    ASSERT_EQ(start_real_server(config_, &service_, &server_, &runner_), "");
  }
  void stop() {
    stop_real_server(&service_, &server_, &runner_);
  }
  void TearDown() override { stop(); }

  // json or ordered_json: a body whose key order matters (tools are rendered as sent).
  template <typename Json>
  HttpResponse chat(const Json& body) {
    return tcp_request(server_->tcp_port(), make_request("POST", "/v1/chat/completions", body.dump(),
                                                         {std::string("Authorization: Bearer ") + kToken}));
  }
  static nlohmann::json ask(const std::string& user, const std::string& model = "kaizen", bool stream = false) {
    return {{"model", model},
            {"messages", {{{"role", "user"}, {"content", user}}}},
            {"temperature", 0},
            {"max_tokens", 48},
            {"stream", stream}};
  }
  // The greedy answer, or a failure naming the status and body.
  std::string answer(const std::string& user, const std::string& model = "kaizen") {
    HttpResponse r = chat(ask(user, model));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "<status " + std::to_string(r.status) + ">";
    return r.json()["choices"][0]["message"]["content"];
  }
  HttpResponse admin(const std::string& op, const nlohmann::json& body = nlohmann::json::object()) {
    return unix_request(config_.socket, make_request("POST", "/admin/" + op, body.dump()));
  }
  nlohmann::json import(const std::vector<std::string>& lines, const std::string& name) {
    HttpResponse r = admin("knowledge/import", {{"jsonl", join_lines(lines)}, {"name", name}});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json();
  }
  // train/now, then waits for that run to finish; returns its record (train/status).
  nlohmann::json train_and_wait(double timeout_s = 240) {
    HttpResponse r = admin("train/now");
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return nullptr;
    const uint64_t id = r.json()["run_id"];
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
      HttpResponse s = admin("train/status");
      if (s.status == 200) {
        nlohmann::json j = s.json();
        if (j["state"] == "idle" && j["last"].is_object() && j["last"]["id"] == id) {
          HttpResponse run = admin("runs/show", {{"id", id}});
          return run.json();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "run " << id << " did not finish in " << timeout_s << " s";
    return nullptr;
  }

  static inline kaizen::testing::TempDir* model_dir_ = nullptr;
  kaizen::testing::TempDir state_;
  Config config_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
};

}  // namespace kaizen::daemon::testing
