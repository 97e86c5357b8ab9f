// A small blocking HTTP/1.1 client on raw POSIX sockets for the daemon tests: the test
// side must not share code (or bugs) with the Beast server it checks.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/http/server.h"
#include "fake_service.h"

namespace kaizen::daemon::testing {

int connect_tcp(uint16_t port);             // -1 on failure
int connect_unix(const std::string& path);  // -1 on failure
void set_timeout(int fd, int ms);           // SO_RCVTIMEO/SO_SNDTIMEO
bool send_all(int fd, const std::string& data);

struct HttpResponse {
  int status = 0;  // 0: no (complete) response
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // de-chunked
  bool closed = false;                         // server closed after this response
  nlohmann::json json() const;                 // body as JSON (discarded when not JSON)
  std::string header(const std::string& lower_name) const;
};

// Reads one response from fd (handles Content-Length and chunked).
HttpResponse read_response(int fd);

std::string make_request(const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::vector<std::string>& headers = {},
                         const std::string& host = "localhost");

// Connects, sends, reads one response, closes.
HttpResponse tcp_request(uint16_t port, const std::string& raw);
HttpResponse unix_request(const std::string& path, const std::string& raw);

// SSE "data: X\n\n" payloads, in order.
std::vector<std::string> sse_events(const std::string& body);

std::string chat_body(const std::string& user_text, bool stream = false,
                      const std::string& model = "kaizen", const nlohmann::json& extra = {});

constexpr const char* kToken = "test-token-123";

// A Server on 127.0.0.1:<ephemeral> and a temp Unix socket, backed by a FakeService,
// running until destruction.
class TestServer {
 public:
  explicit TestServer(Config config = default_config(),
                      FakeService::Options service_options = FakeService::Options{});
  ~TestServer();
  static Config default_config();  // token kToken, short timeouts, temp socket path

  uint16_t port() const { return port_; }
  const std::string& socket_path() const { return config_.socket; }
  FakeService& service() { return *service_; }
  Server& server() { return *server_; }
  // Stops like SIGTERM; returns run()'s result.
  int64_t stop();

  HttpResponse chat(const std::string& body, bool unix_socket = false);

 private:
  Config config_;
  std::unique_ptr<FakeService> service_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
  int64_t run_result_ = -1;
  bool stopped_ = false;
  uint16_t port_ = 0;
};

}  // namespace kaizen::daemon::testing
