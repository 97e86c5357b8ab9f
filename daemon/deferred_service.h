// The Service kaizend serves while the real one is still being built (the model loads
// for seconds to minutes): /healthz answers 503 with what is happening, every other
// route 503 with Retry-After, until install() hands over the real Service; from then on
// every call goes straight to it. So the sockets are up, and honest, from the start.
//
// Thread-safe: install()/set_status() from the loading thread, calls from I/O threads.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/service.h"

namespace kaizen::daemon {

class DeferredService : public Service {
 public:
  explicit DeferredService(std::string status = "starting") : status_(std::move(status)) {}

  // What /healthz says while not ready ("loading model /srv/qwen3").
  void set_status(const std::string& status);
  // The real Service; calls made from now on reach it.
  void install(std::unique_ptr<Service> service);
  // Destroys the real Service (kaizend does so before the Server, see service.h).
  void reset();
  bool ready() const { return real_.load() != nullptr; }

  Result<ChatTicket> submit_chat(ChatRequest request, ChatEvents events) override;
  std::vector<ModelEntry> list_models() override;
  Result<FeedbackAck> submit_feedback(FeedbackRequest request) override;
  Health health() override;
  std::string metrics_text() override;
  Result<nlohmann::json> admin(const std::string& method, const std::string& op, const nlohmann::json& args,
                               const PeerInfo& peer) override;

 private:
  Error not_yet() const;

  mutable std::mutex mu_;  // guards status_, owned_
  std::string status_;
  std::unique_ptr<Service> owned_;
  std::atomic<Service*> real_{nullptr};
};

}  // namespace kaizen::daemon
