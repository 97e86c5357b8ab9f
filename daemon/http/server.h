// kaizend's HTTP front end: a Unix-socket listener (all routes, admin included) and a
// TCP listener (chat routes, bearer token, Host allow-list), served by `io_threads`
// Asio threads that only parse, validate and write. Requests go to a Service.
//
// Lifecycle: construct -> start() (binds or adopts systemd sockets) -> run() blocks,
// handling SIGTERM/SIGINT (drain, then return), SIGHUP (reload the config source) and
// watchdog pings -> destroy. stop() may be called from any thread to end run() the same
// way as SIGTERM. This header stays free of Boost.Asio/Beast on purpose.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/config.h"
#include "daemon/serve/chat_admission.h"
#include "daemon/service.h"

namespace kaizen::daemon {

struct ServerOptions {
  // Adopt sockets passed by systemd (LISTEN_FDS) instead of binding. Tests turn it off.
  bool use_socket_activation = true;
  // Handle SIGTERM/SIGINT/SIGHUP in run(). Tests that run several servers turn it off.
  bool handle_signals = true;
  // SIGHUP: where to re-read the config. Empty path = no reload from disk.
  ConfigSource reload_source;
  // The chat limits the server's admission gate and the engine both read (kaizend makes
  // one and hands it to both, so a reload reaches both); null = the server's own.
  std::shared_ptr<ChatLimits> chat_limits;
};

class Server {
 public:
  // `service` must outlive the Server.
  Server(const Config& config, Service& service, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listeners and starts the I/O threads. Returns an error message naming the
  // socket/address on failure (e.g. "listen 127.0.0.1:8088: Address already in use").
  [[nodiscard]] std::string start();

  // Blocks until SIGTERM/SIGINT or stop(), drains in-flight requests for up to
  // limits.drain_timeout_s, then stops the I/O threads. Returns the number of requests
  // still in flight when it gave up (0 after a clean drain).
  int64_t run();

  // Thread-safe; makes run() drain and return.
  void stop();

  // Applies the reloadable parts of `config` (bearer token, allowed hosts, limits, log
  // level) and returns a one-line summary of what changed. Thread-safe.
  std::string reload(const Config& config);

  // The bound TCP port (useful with listen = 127.0.0.1:0), 0 if TCP is off.
  uint16_t tcp_port() const;
  // The HTTP layer's own metrics text (also served at /metrics).
  std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kaizen::daemon
