#include "daemon/http/http_metrics.h"

#include <sstream>

namespace kaizen::daemon {

HttpMetrics::HttpMetrics(const ChatGate* gate)
    : bounds_{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}, gate_(gate) {}

void HttpMetrics::observe_request(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  if (h.buckets.empty()) h.buckets.assign(bounds_.size(), 0);
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (seconds <= bounds_[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

uint64_t HttpMetrics::requests_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& kv : requests_) n += kv.second;
  return n;
}

std::string HttpMetrics::render() const {
  std::ostringstream os;
  os << "# HELP kaizen_http_requests_total HTTP requests answered, by route and status.\n"
     << "# TYPE kaizen_http_requests_total counter\n";
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, n] : requests_)
    os << "kaizen_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second
       << "\"} " << n << "\n";
  os << "# HELP kaizen_http_request_duration_seconds Time from request header to last byte "
        "written.\n"
     << "# TYPE kaizen_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cum += h.buckets[i];
      os << "kaizen_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\""
         << bounds_[i] << "\"} " << cum << "\n";
    }
    os << "kaizen_http_request_duration_seconds_bucket{route=\"" << route
       << "\",le=\"+Inf\"} " << h.count << "\n"
       << "kaizen_http_request_duration_seconds_sum{route=\"" << route << "\"} " << h.sum
       << "\n"
       << "kaizen_http_request_duration_seconds_count{route=\"" << route << "\"} " << h.count
       << "\n";
  }
  os << "# HELP kaizen_http_open_connections Connections open now.\n"
     << "# TYPE kaizen_http_open_connections gauge\n"
     << "kaizen_http_open_connections " << open_connections_.load() << "\n"
     << "# HELP kaizen_http_connections_total Connections accepted.\n"
     << "# TYPE kaizen_http_connections_total counter\n"
     << "kaizen_http_connections_total " << accepted_total_.load() << "\n"
     << "# HELP kaizen_http_connections_shed_total Connections refused with 503 over "
        "limits.max_connections.\n"
     << "# TYPE kaizen_http_connections_shed_total counter\n"
     << "kaizen_http_connections_shed_total " << shed_total_.load() << "\n"
     << "# HELP kaizen_http_chats_active Chats handed to the engine now.\n"
     << "# TYPE kaizen_http_chats_active gauge\n"
     << "kaizen_http_chats_active " << (gate_ ? gate_->active() : 0) << "\n"
     << "# HELP kaizen_http_chats_queued Chats waiting for an engine slot now.\n"
     << "# TYPE kaizen_http_chats_queued gauge\n"
     << "kaizen_http_chats_queued " << (gate_ ? gate_->queued() : 0) << "\n"
     << "# HELP kaizen_http_chats_cancelled_total Chats cancelled because the client left.\n"
     << "# TYPE kaizen_http_chats_cancelled_total counter\n"
     << "kaizen_http_chats_cancelled_total " << streams_cancelled_total_.load() << "\n";
  return os.str();
}

}  // namespace kaizen::daemon
