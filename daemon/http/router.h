// Which route a request goes to, who may call it, and the answers of the simple
// (non-streaming, non-chat) routes. Beast-free: the session (http_session.cc) reads and
// writes, this file decides (docs/DESIGN.md §Request path step 3, §APIs).
//
// Policy:
//  - Unix socket: every route, no token (the socket's mode/group is the access control);
//    /admin/* only here, each call logged with the peer's uid/gid/pid.
//  - TCP: Host must be in allowed_hosts (DNS rebinding) -> else 403; /admin/* does not
//    exist (404); /healthz is open; everything else needs `Authorization: Bearer <token>`
//    -> 401 when missing/wrong, 403 when the server has no token configured.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/http/http_metrics.h"
#include "daemon/service.h"

namespace kaizen::daemon {

enum class Route { kChat, kCompletions, kModels, kFeedback, kHealth, kMetrics, kAdmin, kNotFound };

struct RouteMatch {
  Route route = Route::kNotFound;
  const char* name = "other";  // metrics label
  bool method_ok = false;      // false -> 405
  const char* allow = "";      // Allow header value for 405
  bool needs_token = false;    // on TCP
  bool has_body = false;       // POST routes read a body
  std::string admin_op;        // path after /admin/
  std::string query;           // raw query string, without '?'
};

RouteMatch match_route(std::string_view method, std::string_view target,
                       PeerInfo::Transport transport);

// Host header check for TCP. `host` may carry a port; entries in `allowed` may too
// (then the port must match). Case-insensitive. An empty Host is refused.
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

// Checks "Authorization: Bearer <token>" in constant time. Returns nothing when allowed.
std::optional<Error> check_bearer(std::string_view authorization, const std::string& token);

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  int retry_after_s = 0;
};

Reply error_reply(const Error& error);

// Answers /v1/models, /v1/feedback, /healthz, /metrics and /admin/*. Catches every
// exception from the Service and turns it into a 500 with a clear message.
Reply handle_simple(const RouteMatch& match, std::string_view method, std::string_view body,
                    const PeerInfo& peer, Service& service, const HttpMetrics& metrics);

// "a=1&b=x%20y" -> {"a":"1","b":"x y"}
nlohmann::json parse_query(std::string_view query);

}  // namespace kaizen::daemon
