#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

namespace kaizen::daemon::testing {

namespace {
void forget_pending(int fd);  // a new socket may reuse a closed one's fd
}  // namespace

int connect_tcp(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  forget_pending(fd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  set_timeout(fd, 10000);
  return fd;
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  forget_pending(fd);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  set_timeout(fd, 10000);
  return fd;
}

void set_timeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

namespace {

// Buffered reader over a socket.
// Bytes read past the end of one response (pipelining) belong to the next one on the
// same connection: keep them per fd between read_response() calls.
std::mutex g_pending_mu;  // guards g_pending
std::map<int, std::string> g_pending;

void forget_pending(int fd) {
  std::lock_guard<std::mutex> lock(g_pending_mu);
  g_pending.erase(fd);
}

std::string take_pending(int fd) {
  std::lock_guard<std::mutex> lock(g_pending_mu);
  auto it = g_pending.find(fd);
  if (it == g_pending.end()) return {};
  std::string out = std::move(it->second);
  g_pending.erase(it);
  return out;
}

struct Reader {
  int fd;
  std::string buf;
  bool eof = false;
  bool fill() {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      eof = true;
      return false;
    }
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }
  bool line(std::string* out) {
    while (true) {
      size_t p = buf.find("\r\n");
      if (p != std::string::npos) {
        *out = buf.substr(0, p);
        buf.erase(0, p + 2);
        return true;
      }
      if (!fill()) return false;
    }
  }
  bool exactly(size_t n, std::string* out) {
    while (buf.size() < n)
      if (!fill()) return false;
    out->append(buf, 0, n);
    buf.erase(0, n);
    return true;
  }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

}  // namespace

nlohmann::json HttpResponse::json() const {
  return nlohmann::json::parse(body, nullptr, false);
}

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpResponse read_response(int fd) {
  HttpResponse r;
  Reader rd{fd, take_pending(fd)};
  struct KeepLeftover {
    Reader& rd;
    ~KeepLeftover() {
      if (rd.buf.empty()) return;
      std::lock_guard<std::mutex> lock(g_pending_mu);
      g_pending[rd.fd] = std::move(rd.buf);
    }
  } keep{rd};
  std::string line;
  do {  // skip 100 Continue
    if (!rd.line(&line)) return r;
    if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) return r;
    int status = std::atoi(line.c_str() + 9);
    r.headers.clear();
    while (rd.line(&line) && !line.empty()) {
      size_t c = line.find(':');
      if (c == std::string::npos) continue;
      std::string v = line.substr(c + 1);
      v.erase(0, v.find_first_not_of(' '));
      r.headers[lower(line.substr(0, c))] = v;
    }
    r.status = status;
  } while (r.status == 100);
  if (lower(r.header("transfer-encoding")) == "chunked") {
    while (true) {
      if (!rd.line(&line)) {
        r.status = 0;
        return r;
      }
      size_t n = std::stoul(line, nullptr, 16);
      if (n == 0) {
        rd.line(&line);
        break;
      }
      if (!rd.exactly(n, &r.body) || !rd.line(&line)) {
        r.status = 0;
        return r;
      }
    }
  } else if (!r.header("content-length").empty()) {
    if (!rd.exactly(std::stoul(r.header("content-length")), &r.body)) r.status = 0;
  }
  r.closed = lower(r.header("connection")) == "close";
  return r;
}

std::string make_request(const std::string& method, const std::string& target,
                         const std::string& body, const std::vector<std::string>& headers,
                         const std::string& host) {
  std::string r = method + " " + target + " HTTP/1.1\r\n";
  if (!host.empty()) r += "Host: " + host + "\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST") {
    r += "Content-Type: application/json\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  r += "\r\n" + body;
  return r;
}

HttpResponse tcp_request(uint16_t port, const std::string& raw) {
  int fd = connect_tcp(port);
  if (fd < 0) return {};
  HttpResponse r;
  if (send_all(fd, raw)) r = read_response(fd);
  ::close(fd);
  return r;
}

HttpResponse unix_request(const std::string& path, const std::string& raw) {
  int fd = connect_unix(path);
  if (fd < 0) return {};
  HttpResponse r;
  if (send_all(fd, raw)) r = read_response(fd);
  ::close(fd);
  return r;
}

std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string ev = body.substr(pos, end - pos);
    if (ev.rfind("data: ", 0) == 0) out.push_back(ev.substr(6));
    pos = end + 2;
  }
  return out;
}

std::string chat_body(const std::string& user_text, bool stream, const std::string& model,
                      const nlohmann::json& extra) {
  nlohmann::json j = {{"model", model},
                      {"messages", {{{"role", "user"}, {"content", user_text}}}},
                      {"stream", stream}};
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j.dump();
}

Config TestServer::default_config() {
  static std::atomic<int> counter{0};
  Config c;
  c.listen = "127.0.0.1:0";
  c.listen_host = "127.0.0.1";
  c.listen_port = 0;
  c.socket = "/tmp/kaizen-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter++) + ".sock";
  c.bearer_token = kToken;
  c.io_threads = 2;
  c.log_level = "warn";
  c.limits.header_timeout_s = 2;
  c.limits.body_timeout_s = 2;
  c.limits.idle_timeout_s = 5;
  c.limits.drain_timeout_s = 5;
  return c;
}

TestServer::TestServer(Config config, FakeService::Options service_options)
    : config_(std::move(config)), service_(std::make_unique<FakeService>(service_options)) {
  ServerOptions opts;
  opts.use_socket_activation = false;
  opts.handle_signals = false;
  opts.reload_source.path.clear();
  server_ = std::make_unique<Server>(config_, *service_, opts);
  std::string err = server_->start();
  if (!err.empty()) throw std::runtime_error("server start: " + err);
  port_ = server_->tcp_port();
  runner_ = std::thread([this] { run_result_ = server_->run(); });
}

int64_t TestServer::stop() {
  if (!stopped_) {
    stopped_ = true;
    server_->stop();
    runner_.join();
  }
  return run_result_;
}

TestServer::~TestServer() {
  stop();
  // The engine must drop its callbacks before the server's io_context goes away.
  service_->shutdown();
  server_.reset();
}

HttpResponse TestServer::chat(const std::string& body, bool unix_socket) {
  if (unix_socket) return unix_request(socket_path(), make_request("POST", "/v1/chat/completions", body));
  return tcp_request(port_, make_request("POST", "/v1/chat/completions", body,
                                         {std::string("Authorization: Bearer ") + kToken}));
}

}  // namespace kaizen::daemon::testing
