// Chat admission (docs/DESIGN.md §Request path): at most `max_active` chats are handed to
// the Service at once, at most `max_queued` wait (FIFO) for a slot, the rest get 429.
//
// The limits have one owner, ChatLimits, read by both queues a chat passes: this gate
// (HTTP side, before the Service) and the engine's own queue (serve/engine.h decodes at
// most max_active jobs at once). A SIGHUP reload writes them once, through
// ChatGate::set_limits, and both see the new values.
//
// Thread-safe; start callbacks run outside the lock (they post to a session strand).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace kaizen::daemon {

// limits.max_active_chats / limits.max_queued_chats, readable from any thread.
class ChatLimits {
 public:
  ChatLimits(int64_t max_active, int64_t max_queued) { set(max_active, max_queued); }
  void set(int64_t max_active, int64_t max_queued) {
    max_active_.store(max_active < 1 ? 1 : max_active);
    max_queued_.store(max_queued < 0 ? 0 : max_queued);
  }
  int64_t max_active() const { return max_active_.load(); }
  int64_t max_queued() const { return max_queued_.load(); }

 private:
  std::atomic<int64_t> max_active_{1};
  std::atomic<int64_t> max_queued_{0};
};

class ChatGate {
 public:
  enum class Admit { kStarted, kQueued, kRejected };

  explicit ChatGate(std::shared_ptr<ChatLimits> limits);

  // kStarted: `start` ran inside this call. kQueued: it runs later from release().
  // kRejected: it never runs. `*ticket` identifies a queued entry for withdraw().
  Admit admit(std::function<void()> start, uint64_t* ticket);

  // An active chat ended: frees its slot and starts the oldest queued one.
  void release();

  // A queued client went away before its turn. Returns true if it was still queued
  // (then no release() is owed); false if it had already started.
  bool withdraw(uint64_t ticket);

  // SIGHUP: new limits apply to the next admit() (and the engine's next turn); raising
  // max_active starts queued chats.
  void set_limits(int64_t max_active, int64_t max_queued);
  const std::shared_ptr<ChatLimits>& limits() const { return limits_; }

  int64_t active() const;
  int64_t queued() const;

 private:
  struct Waiter {
    uint64_t ticket;
    std::function<void()> start;
  };
  // Pops waiters that fit into free slots; returns their start callbacks.
  std::deque<std::function<void()>> take_startable_locked();

  std::shared_ptr<ChatLimits> limits_;
  mutable std::mutex mu_;  // guards everything below (a limit change takes it too)
  int64_t active_ = 0;
  uint64_t next_ticket_ = 1;
  std::deque<Waiter> queue_;
};

}  // namespace kaizen::daemon
