// A deterministic in-memory Service for the HTTP-layer tests: streams canned words with
// a delay from its own "engine" thread, like the real engine does, honouring max_tokens,
// stop strings and cancel(). Test-only: the product never links it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "daemon/service.h"

namespace kaizen::daemon::testing {

class FakeService : public Service {
 public:
  struct Options {
    std::chrono::milliseconds token_delay{2};  // between engine ticks
    size_t max_pending = 1000;                 // engine queue; over -> 429
    bool ready = true;
  };
  FakeService() : FakeService(Options{}) {}
  explicit FakeService(Options options);
  ~FakeService() override;

  // Stops the engine thread; pending chats end with on_error(503). Idempotent.
  void shutdown();

  // The answer a request gets: "Echo: " + the last user message, as words.
  static std::vector<std::string> answer_tokens(const ChatRequest& r);

  Result<ChatTicket> submit_chat(ChatRequest request, ChatEvents events) override;
  std::vector<ModelEntry> list_models() override;
  Result<FeedbackAck> submit_feedback(FeedbackRequest request) override;
  Health health() override;
  std::string metrics_text() override;
  Result<nlohmann::json> admin(const std::string& method, const std::string& op,
                               const nlohmann::json& args, const PeerInfo& peer) override;

  // Observations for assertions.
  ChatRequest last_request() const;
  std::vector<FeedbackRequest> feedback() const;
  int64_t chats_started() const { return chats_started_.load(); }
  int64_t chats_cancelled() const { return chats_cancelled_.load(); }
  int64_t max_concurrent() const { return max_concurrent_.load(); }
  void set_ready(bool r) { ready_ = r; }

 private:
  struct Job {
    std::string id;
    ChatRequest request;
    ChatEvents events;
    std::vector<std::string> tokens;
    size_t next = 0;
    std::string produced;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };
  void engine_loop();

  const Options options_;
  std::atomic<bool> ready_;
  mutable std::mutex mu_;  // guards everything below it
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> jobs_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::set<std::string> message_ids_;
  std::vector<FeedbackRequest> feedback_;
  ChatRequest last_request_;
  std::atomic<int64_t> chats_started_{0};
  std::atomic<int64_t> chats_cancelled_{0};
  std::atomic<int64_t> max_concurrent_{0};
  std::thread engine_;
};

}  // namespace kaizen::daemon::testing
