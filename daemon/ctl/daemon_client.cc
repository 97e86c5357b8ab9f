#include "daemon/ctl/daemon_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

namespace kaizen::ctl {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

// Owns the connected socket; closes it on every exit path.
class Connection {
 public:
  Connection(const DaemonClientOptions& o) : read_timeout_(o.read_timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (o.socket_path.empty() || o.socket_path.size() >= sizeof(addr.sun_path)) {
      throw DaemonUnreachable(o.socket_path,
                              "socket path '" + o.socket_path + "' is empty or too long");
    }
    std::memcpy(addr.sun_path, o.socket_path.c_str(), o.socket_path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      throw DaemonUnreachable(o.socket_path, std::string("socket(): ") + std::strerror(errno));
    // Linux bounds a blocking AF_UNIX connect (full backlog) by SO_SNDTIMEO.
    timeval tv{};
    tv.tv_sec = o.connect_timeout.count() / 1000;
    tv.tv_usec = (o.connect_timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      throw DaemonUnreachable(o.socket_path,
                              "connect " + o.socket_path + ": " + std::strerror(err));
    }
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends everything; false when the peer closed early (it may still have answered,
  // e.g. 413 before reading a large body, so the caller goes on to read the response).
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return false;
      if (n < 0) throw DaemonProtocolError(std::string("send: ") + std::strerror(errno));
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Appends what arrives next to buf_; false at end of stream.
  bool fill() {
    if (read_timeout_.count() > 0) {
      pollfd p{fd_, POLLIN, 0};
      int r;
      do {
        r = ::poll(&p, 1, static_cast<int>(read_timeout_.count()));
      } while (r < 0 && errno == EINTR);
      if (r == 0) {
        throw DaemonProtocolError("no answer from kaizend within " +
                                  std::to_string(read_timeout_.count() / 1000) + " s");
      }
    }
    char tmp[16384];
    ssize_t n;
    do {
      n = ::recv(fd_, tmp, sizeof(tmp), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ECONNRESET) return false;
    if (n < 0) throw DaemonProtocolError(std::string("recv: ") + std::strerror(errno));
    if (n == 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  // One line without its CRLF (or LF).
  std::string read_line() {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buf_.size() > 64 * 1024) throw DaemonProtocolError("response header line too long");
      if (!fill()) throw DaemonProtocolError("kaizend closed the connection mid-response");
    }
  }

  // Hands exactly n body bytes to sink as they arrive; false if sink asked to stop.
  bool read_exact(size_t n, const std::function<bool(std::string_view)>& sink) {
    while (n > 0) {
      if (buf_.empty() && !fill())
        throw DaemonProtocolError("kaizend closed the connection mid-body");
      const size_t take = std::min(n, buf_.size());
      const bool go_on = sink(std::string_view(buf_).substr(0, take));
      buf_.erase(0, take);
      n -= take;
      if (!go_on) return false;
    }
    return true;
  }

  void read_to_eof(const std::function<bool(std::string_view)>& sink) {
    while (true) {
      if (!buf_.empty()) {
        const bool go_on = sink(buf_);
        buf_.clear();
        if (!go_on) return;
      }
      if (!fill()) return;
    }
  }

 private:
  int fd_ = -1;
  std::chrono::milliseconds read_timeout_;
  std::string buf_;  // received, not yet consumed
};

std::string format_request(const std::string& method, const std::string& path,
                           const std::string& body, bool want_sse) {
  std::string r = method + " " + path + " HTTP/1.1\r\n";
  r += "Host: localhost\r\nUser-Agent: kaizenctl\r\nConnection: close\r\n";
  r += want_sse ? "Accept: text/event-stream\r\n" : "Accept: application/json\r\n";
  if (!body.empty() || method == "POST") {
    r +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  r += "\r\n";
  r += body;
  return r;
}

void read_head(Connection& c, HttpReply* reply) {
  const std::string status_line = c.read_line();
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    throw DaemonProtocolError("not an HTTP response: '" + status_line.substr(0, 80) + "'");
  }
  reply->status = std::atoi(status_line.c_str() + 9);
  if (reply->status < 100 || reply->status > 599) {
    throw DaemonProtocolError("bad HTTP status line: '" + status_line.substr(0, 80) + "'");
  }
  while (true) {
    std::string line = c.read_line();
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos)
      throw DaemonProtocolError("bad header line: '" + line.substr(0, 80) + "'");
    reply->headers[lower(trim(std::string_view(line).substr(0, colon)))] =
        trim(std::string_view(line).substr(colon + 1));
  }
}

// Reads the body as framed by the headers, handing bytes to sink as they arrive.
void read_body(Connection& c, const HttpReply& head,
               const std::function<bool(std::string_view)>& sink) {
  auto te = head.headers.find("transfer-encoding");
  if (te != head.headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    while (true) {
      const std::string size_line = c.read_line();
      char* end = nullptr;
      const unsigned long long n = std::strtoull(size_line.c_str(), &end, 16);
      if (end == size_line.c_str())
        throw DaemonProtocolError("bad chunk size line: '" + size_line.substr(0, 40) + "'");
      if (n == 0) {
        while (!c.read_line().empty()) {  // trailers
        }
        return;
      }
      if (!c.read_exact(static_cast<size_t>(n), sink)) return;
      if (!c.read_line().empty()) throw DaemonProtocolError("chunk not followed by CRLF");
    }
  }
  auto cl = head.headers.find("content-length");
  if (cl != head.headers.end()) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(cl->second.c_str(), &end, 10);
    if (end == cl->second.c_str())
      throw DaemonProtocolError("bad Content-Length '" + cl->second + "'");
    c.read_exact(static_cast<size_t>(n), sink);
    return;
  }
  if (head.status == 204 || head.status == 304) return;
  c.read_to_eof(sink);
}

// Splits an event stream into events and calls on_data with each event's data
// (multiple data: lines joined by "\n"). Comments and other fields are ignored.
class SseParser {
 public:
  explicit SseParser(const std::function<bool(std::string_view)>& on_data) : on_data_(on_data) {}

  bool feed(std::string_view bytes) {
    pending_.append(bytes.data(), bytes.size());
    size_t nl;
    while ((nl = pending_.find('\n')) != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!handle_line(line)) return false;
    }
    return true;
  }
  // End of stream: an event without its blank line still counts.
  void finish() {
    if (!pending_.empty()) handle_line(pending_);
    if (has_data_) on_data_(data_);
  }

 private:
  bool handle_line(const std::string& line) {
    if (line.empty()) {
      if (!has_data_) return true;
      const bool go_on = on_data_(data_);
      data_.clear();
      has_data_ = false;
      return go_on;
    }
    if (line.rfind("data:", 0) == 0) {
      std::string_view v = std::string_view(line).substr(5);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (has_data_) data_ += '\n';
      data_.append(v.data(), v.size());
      has_data_ = true;
    }
    return true;
  }

  const std::function<bool(std::string_view)>& on_data_;
  std::string pending_;  // bytes after the last complete line
  std::string data_;     // data of the event being read
  bool has_data_ = false;
};

}  // namespace

std::string resolve_socket_path(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* env = std::getenv("KAIZEN_SOCKET"); env && *env) return env;
  return kDefaultSocketPath;
}

std::string HttpReply::error_message() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  std::string t = trim(body);
  if (t.size() > 300) t = t.substr(0, 300) + "...";
  return t.empty() ? "HTTP " + std::to_string(status) : t;
}

HttpReply DaemonClient::request(const std::string& method, const std::string& path,
                                const std::string& body) {
  Connection c(options_);
  c.send_all(format_request(method, path, body, false));
  HttpReply reply;
  read_head(c, &reply);
  read_body(c, reply, [&](std::string_view b) {
    reply.body.append(b.data(), b.size());
    return true;
  });
  return reply;
}

HttpReply DaemonClient::stream(const std::string& method, const std::string& path,
                               const std::string& body,
                               const std::function<bool(std::string_view data)>& on_data) {
  Connection c(options_);
  c.send_all(format_request(method, path, body, true));
  HttpReply reply;
  read_head(c, &reply);
  auto ct = reply.headers.find("content-type");
  const bool sse = reply.status == 200 && ct != reply.headers.end() &&
                   lower(ct->second).rfind("text/event-stream", 0) == 0;
  if (!sse) {
    read_body(c, reply, [&](std::string_view b) {
      reply.body.append(b.data(), b.size());
      return true;
    });
    return reply;
  }
  SseParser parser(on_data);
  bool stopped = false;
  read_body(c, reply, [&](std::string_view b) {
    stopped = !parser.feed(b);
    return !stopped;
  });
  if (!stopped) parser.finish();
  return reply;
}

}  // namespace kaizen::ctl
