// The HTTP layer's own Prometheus metrics: requests by route and status, latency
// histogram by route, open/rejected connections, chats active/queued. Thread-safe;
// updated once per request/connection, never per byte.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "daemon/serve/chat_admission.h"

namespace kaizen::daemon {

class HttpMetrics {
 public:
  // gate: read at render time for the chats active/queued gauges (never a copy that a
  // slower connection could overwrite with older counts); null = no chat gauges.
  explicit HttpMetrics(const ChatGate* gate = nullptr);

  // route: a fixed route name ("chat", "models", ...), never a raw path (bounded labels).
  void observe_request(const std::string& route, int status, double seconds);
  void connection_opened() { open_connections_.fetch_add(1); accepted_total_.fetch_add(1); }
  void connection_closed() { open_connections_.fetch_sub(1); }
  void connection_shed() { shed_total_.fetch_add(1); }
  void stream_cancelled() { streams_cancelled_total_.fetch_add(1); }

  int64_t open_connections() const { return open_connections_.load(); }
  uint64_t requests_total() const;

  // Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // cumulative at render time; here per bucket
    uint64_t count = 0;
    double sum = 0;
  };
  const std::vector<double> bounds_;  // seconds, ascending

  mutable std::mutex mu_;  // guards requests_ and latency_
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;

  std::atomic<int64_t> open_connections_{0};
  std::atomic<uint64_t> accepted_total_{0};
  std::atomic<uint64_t> shed_total_{0};
  std::atomic<uint64_t> streams_cancelled_total_{0};
  const ChatGate* gate_;
};

}  // namespace kaizen::daemon
