// Starting and stopping the real kaizend Service + HTTP Server in-process on loopback,
// shared by the e2e fixtures.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "daemon/config.h"
#include "daemon/serve/kaizen_service.h"
#include "daemon/http/server.h"

namespace kaizen::daemon::testing {

// Builds the Service for `config` (which must outlive the server) and serves it on a
// thread. Returns "" on success, else what failed.
inline std::string start_real_server(const Config& config, std::unique_ptr<Service>* service,
                                     std::unique_ptr<Server>* server, std::thread* runner) {
  auto made = make_kaizen_service(config, StartupProgress{});
  if (!made.ok()) return made.error().message;
  *service = std::move(made.value());
  ServerOptions opts;
  opts.use_socket_activation = false;
  opts.handle_signals = false;
  opts.reload_source.path.clear();
  *server = std::make_unique<Server>(config, **service, opts);
  std::string err = (*server)->start();
  if (!err.empty()) return err;
  Server* s = server->get();
  *runner = std::thread([s] { s->run(); });
  return "";
}

// Stops serving, then drops the Service before the Server (its callbacks post to the
// server's event loop).
inline void stop_real_server(std::unique_ptr<Service>* service, std::unique_ptr<Server>* server,
                             std::thread* runner) {
  if (*server) (*server)->stop();
  if (runner->joinable()) runner->join();
  service->reset();
  server->reset();
}

}  // namespace kaizen::daemon::testing
