// State shared by the listeners and every HTTP session of one Server. Beast-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "daemon/serve/chat_admission.h"
#include "daemon/config.h"
#include "daemon/http/http_metrics.h"
#include "daemon/service.h"

namespace kaizen::daemon {

struct ServerState {
  // limits: shared with the engine (serve/chat_admission.h); null = this server's own.
  ServerState(const Config& config, Service& service, std::shared_ptr<ChatLimits> limits)
      : service(service),
        gate(limits ? std::move(limits)
                    : std::make_shared<ChatLimits>(config.limits.max_active_chats, config.limits.max_queued_chats)),
        metrics(&gate),
        config_(std::make_shared<const Config>(config)) {}

  // The config a request sees: taken once per request, so a SIGHUP reload never changes
  // limits halfway through one.
  std::shared_ptr<const Config> config() const {
    std::lock_guard<std::mutex> lock(config_mu_);
    return config_;
  }
  void set_config(std::shared_ptr<const Config> c) {
    std::lock_guard<std::mutex> lock(config_mu_);
    config_ = std::move(c);
  }

  Service& service;  // outlives the Server
  ChatGate gate;
  HttpMetrics metrics;  // reads gate's counts when rendered
  std::atomic<bool> draining{false};   // SIGTERM seen: finish requests, accept nothing new
  std::atomic<int64_t> in_flight{0};   // requests between header read and last byte written

 private:
  mutable std::mutex config_mu_;  // guards config_
  std::shared_ptr<const Config> config_;
};

}  // namespace kaizen::daemon
