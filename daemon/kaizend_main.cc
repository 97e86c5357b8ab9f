// kaizend: the chat daemon. Reads the config, builds the Service (engine + storage,
// daemon/kaizen_service.*), serves HTTP until SIGTERM, drains, exits.
//
// Exit codes: 0 clean stop; 1 start-up failure (socket in use, model load failed);
// 2 bad command line or config (systemd: RestartPreventExitStatus=2).
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "daemon/config.h"
#include "daemon/deferred_service.h"
#include "daemon/http/server.h"
#include "daemon/log.h"
#include "daemon/sd_notify.h"
#include "daemon/serve/kaizen_service.h"

namespace {

using namespace kaizen::daemon;

constexpr int kExitStartFailed = 1;
constexpr int kExitBadConfig = 2;

void usage() {
  std::cout << "usage: kaizend [--config PATH] [--check-config] [--KEY=VALUE ...]\n\n"
               "  --config PATH     INI config file (default /etc/kaizen/kaizend.conf)\n"
               "  --check-config    print the effective config and exit (0 ok, 2 bad)\n"
               "  --help, --version\n\n"
               "Every config key is also a flag; flags win over the file:\n"
            << config_help();
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine cl = parse_command_line(argc, argv);
  if (cl.help) {
    usage();
    return 0;
  }
  if (cl.version) {
    std::cout << "kaizend 0.1.0\n";
    return 0;
  }
  Config config;
  std::vector<std::string> errors = cl.errors;
  for (const auto& e : load_config(cl.source, &config)) errors.push_back(e);
  if (cl.check_config) {
    for (const auto& e : errors) std::cerr << "kaizend: config: " << e << "\n";
    if (!errors.empty()) return kExitBadConfig;
    std::cout << describe_config(config);
    return 0;
  }
  if (!errors.empty()) {
    for (const auto& e : errors) logger()->critical("event=bad_config problem=\"{}\"", e);
    sd::status("bad config: " + errors.front());
    return kExitBadConfig;
  }
  set_log_level(config.log_level);
  logger()->info("event=starting config=\"{}\" pid={}", config.config_path, ::getpid());

  // The sockets come up first, answering 503 (/healthz: "loading model ...") while the
  // model loads on its own thread; READY=1 goes to systemd once the service is built.
  auto limits = std::make_shared<ChatLimits>(config.limits.max_active_chats, config.limits.max_queued_chats);
  DeferredService service("loading model " + config.model);
  ServerOptions options;
  options.reload_source = cl.source;
  options.chat_limits = limits;
  Server server(config, service, options);
  std::string err = server.start();
  if (!err.empty()) {
    logger()->critical("event=start_failed error=\"{}\"", err);
    sd::status("start failed: " + err);
    return kExitStartFailed;
  }
  std::atomic<bool> load_failed{false};
  std::thread loader([&] {
    StartupProgress progress;
    progress.status = [&service](const std::string& s) {
      service.set_status(s);
      sd::status(s);
      logger()->info("event=startup status=\"{}\"", s);
    };
    progress.extend_timeout = [](std::chrono::seconds more) {
      sd::extend_timeout(std::chrono::duration_cast<std::chrono::microseconds>(more));
    };
    progress.status("loading");
    Result<std::unique_ptr<Service>> made = make_kaizen_service(config, progress, limits);
    if (!made.ok()) {
      logger()->critical("event=start_failed error=\"{}\"", made.error().message);
      sd::status("start failed: " + made.error().message);
      load_failed.store(true);
      server.stop();
      return;
    }
    service.install(std::move(made.value()));
    sd::ready("serving");
    logger()->info("event=serving");
  });
  const int64_t left = server.run();
  loader.join();  // a stop during the load waits for it: libtorch's load cannot be interrupted
  // The engine drops its callbacks before the server's event loop is destroyed.
  service.reset();
  if (load_failed.load()) return kExitStartFailed;
  logger()->info("event=stopped in_flight_abandoned={}", left);
  return 0;
}
