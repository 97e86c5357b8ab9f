#include "daemon/http/router.h"

#include "daemon/log.h"

#include <algorithm>
#include <cctype>

#include "daemon/http/json_fields.h"
#include "daemon/http/openai_json.h"

namespace kaizen::daemon {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Splits "host:port" / "[v6]:port" / "host" into host and port ("" when absent).
void split_host(std::string_view s, std::string* host, std::string* port) {
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    *host = std::string(s.substr(0, close == std::string_view::npos ? s.size() : close + 1));
    *port = close != std::string_view::npos && close + 1 < s.size() && s[close + 1] == ':'
                ? std::string(s.substr(close + 2))
                : "";
    return;
  }
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || s.find(':') != colon) {
    *host = std::string(s);
    port->clear();
  } else {
    *host = std::string(s.substr(0, colon));
    *port = std::string(s.substr(colon + 1));
  }
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string peer_text(const PeerInfo& p) {
  if (p.transport == PeerInfo::Transport::kTcp) return "tcp:" + p.address;
  return "unix uid=" + std::to_string(p.uid) + " gid=" + std::to_string(p.gid) +
         " pid=" + std::to_string(p.pid);
}

}  // namespace

RouteMatch match_route(std::string_view method, std::string_view target,
                       PeerInfo::Transport transport) {
  RouteMatch m;
  std::string_view path = target;
  size_t q = target.find('?');
  if (q != std::string_view::npos) {
    path = target.substr(0, q);
    m.query = std::string(target.substr(q + 1));
  }
  auto set = [&](Route r, const char* name, const char* allow, bool token) {
    m.route = r;
    m.name = name;
    m.allow = allow;
    m.method_ok = method == allow;
    m.needs_token = token;
    m.has_body = method == "POST";
  };
  if (path == "/v1/chat/completions") set(Route::kChat, "chat", "POST", true);
  else if (path == "/v1/completions") set(Route::kCompletions, "completions", "POST", true);
  else if (path == "/v1/models") set(Route::kModels, "models", "GET", true);
  else if (path == "/v1/feedback") set(Route::kFeedback, "feedback", "POST", true);
  else if (path == "/healthz") set(Route::kHealth, "healthz", "GET", false);
  else if (path == "/metrics") set(Route::kMetrics, "metrics", "GET", true);
  else if (transport == PeerInfo::Transport::kUnix && path.rfind("/admin/", 0) == 0 &&
           path.size() > 7) {
    m.route = Route::kAdmin;
    m.name = "admin";
    m.allow = "GET, POST";
    m.method_ok = method == "GET" || method == "POST";
    m.has_body = method == "POST";
    m.admin_op = std::string(path.substr(7));
  }
  return m;
}

bool host_allowed(std::string_view host_header, const std::vector<std::string>& allowed) {
  if (host_header.empty()) return false;
  std::string host, port;
  split_host(lower(host_header), &host, &port);
  for (const std::string& entry : allowed) {
    std::string ahost, aport;
    split_host(lower(entry), &ahost, &aport);
    if (ahost == host && (aport.empty() || aport == port)) return true;
  }
  return false;
}

std::optional<Error> check_bearer(std::string_view authorization, const std::string& token) {
  if (token.empty()) {
    return Error::Forbidden(
        "chat over TCP is disabled because no API key is configured: set api_key_file in "
        "kaizend.conf, or use the Unix socket");
  }
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      lower(authorization.substr(0, kScheme.size())) != kScheme) {
    return Error::Unauthorized(
        "missing API key: send 'Authorization: Bearer <key>' (the key in api_key_file)");
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  // Constant-time in the token length: no early exit on the first differing byte.
  unsigned diff = given.size() != token.size();
  for (size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(token[i]) ^
            static_cast<unsigned char>(i < given.size() ? given[i] : 0);
  if (diff != 0) return Error::Unauthorized("incorrect API key");
  return std::nullopt;
}

Reply error_reply(const Error& error) {
  Reply r;
  r.status = error.http_status;
  r.body = error_body(error);
  r.retry_after_s = error.retry_after_s;
  return r;
}

nlohmann::json parse_query(std::string_view query) {
  nlohmann::json args = nlohmann::json::object();
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key = url_decode(pair.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
      // Query strings are not guaranteed UTF-8; keep only valid text.
      args[key] = value;
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return args;
}

Reply handle_simple(const RouteMatch& match, std::string_view method, std::string_view body,
                    const PeerInfo& peer, Service& service, const HttpMetrics& metrics) {
  try {
    switch (match.route) {
      case Route::kModels:
        // While the model loads there is no list to give (not an empty one).
        if (!service.health().ready) return error_reply(Error::Unavailable("kaizend is starting; retry shortly", 5));
        return Reply{200, models_body(service.list_models())};
      case Route::kHealth: {
        Health h = service.health();
        nlohmann::json j = {{"status", !h.ready                  ? "starting"
                                       : h.storage_error.empty() ? "ok"
                                                                 : "degraded"},
                            {"detail", h.detail}};
        if (!h.storage_error.empty()) j["storage"] = h.storage_error;
        return Reply{h.ready ? 200 : 503,
                     j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
      }
      case Route::kMetrics:
        return Reply{200, metrics.render() + service.metrics_text(),
                     "text/plain; version=0.0.4; charset=utf-8"};
      case Route::kFeedback: {
        Result<FeedbackRequest> req = parse_feedback_request(body);
        if (!req.ok()) return error_reply(req.error());
        req.value().peer = peer;
        Result<FeedbackAck> ack = service.submit_feedback(std::move(req.value()));
        if (!ack.ok()) return error_reply(ack.error());
        nlohmann::json j = {{"id", ack.value().feedback_id},
                            {"object", "feedback"},
                            {"status", ack.value().status}};
        return Reply{200, j.dump()};
      }
      case Route::kAdmin: {
        nlohmann::json args;
        if (method == "POST" && !body.empty()) {
          Result<nlohmann::json> parsed = parse_body(body);
          if (!parsed.ok()) return error_reply(parsed.error());
          args = std::move(parsed.value());
        } else {
          args = parse_query(match.query);
        }
        logger()->info("event=admin op={} method={} peer=\"{}\"", match.admin_op, std::string(method),
                       peer_text(peer));
        Result<nlohmann::json> out = service.admin(std::string(method), match.admin_op, args, peer);
        if (!out.ok()) return error_reply(out.error());
        return Reply{200, out.value().dump(-1, ' ', false,
                                           nlohmann::json::error_handler_t::replace)};
      }
      case Route::kChat:
      case Route::kCompletions:
      case Route::kNotFound:
        break;
    }
    return error_reply(Error::NotFound("no route for this path", "not_found"));
  } catch (const std::exception& e) {
    logger()->error("route={} error=\"{}\"", match.name, e.what());
    return error_reply(Error::Internal(std::string("internal error: ") + e.what()));
  }
}

}  // namespace kaizen::daemon
