// Admission control for chat completions: at most `max_active` chats are handed to the
// Service at once, at most `max_queued` wait (FIFO) for a slot, the rest get 429.
// Thread-safe; start callbacks run outside the lock (they post to a session strand).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace kaizen::daemon {

class ChatGate {
 public:
  enum class Admit { kStarted, kQueued, kRejected };

  ChatGate(int64_t max_active, int64_t max_queued);

  // kStarted: `start` ran inside this call. kQueued: it runs later from release().
  // kRejected: it never runs. `*ticket` identifies a queued entry for withdraw().
  Admit admit(std::function<void()> start, uint64_t* ticket);

  // An active chat ended: frees its slot and starts the oldest queued one.
  void release();

  // A queued client went away before its turn. Returns true if it was still queued
  // (then no release() is owed); false if it had already started.
  bool withdraw(uint64_t ticket);

  // SIGHUP: new limits apply to the next admit(); raising max_active starts queued chats.
  void set_limits(int64_t max_active, int64_t max_queued);

  int64_t active() const;
  int64_t queued() const;

 private:
  struct Waiter {
    uint64_t ticket;
    std::function<void()> start;
  };
  // Pops waiters that fit into free slots; returns their start callbacks.
  std::deque<std::function<void()>> take_startable_locked();

  mutable std::mutex mu_;  // guards everything below
  int64_t max_active_;
  int64_t max_queued_;
  int64_t active_ = 0;
  uint64_t next_ticket_ = 1;
  std::deque<Waiter> queue_;
};

}  // namespace kaizen::daemon
