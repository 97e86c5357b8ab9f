// A small blocking HTTP/1.1 client for kaizenctl's online commands: one request per
// connection to kaizend's Unix socket ("Connection: close"), response bodies framed by
// Content-Length, chunked transfer encoding or end of stream, and Server-Sent Events read
// incrementally for streaming chat.
//
// Errors: connect() failing (no socket file, nobody listening, permission) throws
// DaemonUnreachable; a timeout, a reset connection or a malformed response throws
// DaemonProtocolError. HTTP error statuses are not exceptions: the caller reads
// HttpReply::status and error_message(). Not thread-safe; one client per thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kaizen::ctl {

struct DaemonUnreachable : std::runtime_error {
  DaemonUnreachable(std::string path, const std::string& why)
      : std::runtime_error(why), socket_path(std::move(path)) {}
  std::string socket_path;  // the path that could not be reached
};
struct DaemonProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where kaizenctl looks for kaizend: --socket, else $KAIZEN_SOCKET, else this.
inline constexpr const char* kDefaultSocketPath = "/run/kaizen/kaizend.sock";
// flag_value: the --socket flag ("" when absent).
std::string resolve_socket_path(const std::string& flag_value);

struct DaemonClientOptions {
  std::string socket_path;                          // AF_UNIX path of kaizend's socket
  std::chrono::milliseconds connect_timeout{5000};  // connect(); default 5 s
  // Longest wait for the next bytes of a response (headers, body or one SSE event);
  // default 120 s, enough for a slow first token on CPU. 0 = wait forever.
  std::chrono::milliseconds read_timeout{120000};
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // whole body (for SSE: only on non-200)

  // The "message" of an OpenAI-shaped error body {"error":{"message":...}}, else the
  // body itself (trimmed, at most a few hundred bytes), else "HTTP <status>".
  std::string error_message() const;
};

class DaemonClient {
 public:
  explicit DaemonClient(DaemonClientOptions options) : options_(std::move(options)) {}

  // Sends `method path` with a JSON body (empty: no body) and reads the whole response.
  HttpReply request(const std::string& method, const std::string& path,
                    const std::string& body = "");

  // Like request(), but when the response is 200 text/event-stream, calls on_data with
  // the payload of each "data:" event as it arrives (the "[DONE]" sentinel included) and
  // leaves HttpReply::body empty. on_data returning false closes the connection early.
  // Any other response is read whole into HttpReply as in request().
  HttpReply stream(const std::string& method, const std::string& path, const std::string& body,
                   const std::function<bool(std::string_view data)>& on_data);

  const DaemonClientOptions& options() const { return options_; }

 private:
  DaemonClientOptions options_;
};

}  // namespace kaizen::ctl
