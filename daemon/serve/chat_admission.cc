#include "daemon/serve/chat_admission.h"

namespace kaizen::daemon {

ChatGate::ChatGate(std::shared_ptr<ChatLimits> limits) : limits_(std::move(limits)) {}

ChatGate::Admit ChatGate::admit(std::function<void()> start, uint64_t* ticket) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    *ticket = next_ticket_++;
    if (active_ >= limits_->max_active() || !queue_.empty()) {
      if (static_cast<int64_t>(queue_.size()) >= limits_->max_queued()) return Admit::kRejected;
      queue_.push_back({*ticket, std::move(start)});
      return Admit::kQueued;
    }
    ++active_;
  }
  start();
  return Admit::kStarted;
}

std::deque<std::function<void()>> ChatGate::take_startable_locked() {
  std::deque<std::function<void()>> ready;
  while (active_ < limits_->max_active() && !queue_.empty()) {
    ++active_;
    ready.push_back(std::move(queue_.front().start));
    queue_.pop_front();
  }
  return ready;
}

void ChatGate::release() {
  std::deque<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (active_ > 0) --active_;
    ready = take_startable_locked();
  }
  for (auto& f : ready) f();
}

bool ChatGate::withdraw(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->ticket == ticket) {
      queue_.erase(it);
      return true;
    }
  }
  return false;
}

void ChatGate::set_limits(int64_t max_active, int64_t max_queued) {
  std::deque<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    limits_->set(max_active, max_queued);
    ready = take_startable_locked();
  }
  for (auto& f : ready) f();
}

int64_t ChatGate::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

int64_t ChatGate::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

}  // namespace kaizen::daemon
