#include "daemon/deferred_service.h"

namespace kaizen::daemon {

namespace {
constexpr int kRetryAfterS = 5;
}

void DeferredService::set_status(const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = status;
}

void DeferredService::install(std::unique_ptr<Service> service) {
  std::lock_guard<std::mutex> lock(mu_);
  owned_ = std::move(service);
  real_.store(owned_.get());
}

void DeferredService::reset() {
  std::unique_ptr<Service> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    real_.store(nullptr);
    gone = std::move(owned_);
  }
}

Error DeferredService::not_yet() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Error::Unavailable("kaizend is starting (" + status_ + "); retry shortly", kRetryAfterS);
}

Result<ChatTicket> DeferredService::submit_chat(ChatRequest request, ChatEvents events) {
  if (Service* s = real_.load()) return s->submit_chat(std::move(request), std::move(events));
  return not_yet();
}

std::vector<ModelEntry> DeferredService::list_models() {
  if (Service* s = real_.load()) return s->list_models();
  return {};
}

Result<FeedbackAck> DeferredService::submit_feedback(FeedbackRequest request) {
  if (Service* s = real_.load()) return s->submit_feedback(std::move(request));
  return not_yet();
}

Health DeferredService::health() {
  if (Service* s = real_.load()) return s->health();
  std::lock_guard<std::mutex> lock(mu_);
  return Health{false, status_, {}};
}

std::string DeferredService::metrics_text() {
  if (Service* s = real_.load()) return s->metrics_text();
  return "";
}

Result<nlohmann::json> DeferredService::admin(const std::string& method, const std::string& op,
                                              const nlohmann::json& args, const PeerInfo& peer) {
  if (Service* s = real_.load()) return s->admin(method, op, args, peer);
  return not_yet();
}

}  // namespace kaizen::daemon
