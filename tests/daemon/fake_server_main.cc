// Test-only: the real kaizend Server (config, listeners, socket activation, sd_notify,
// signals) in front of FakeService. Used by the Node OpenAI-client test and the process
// tests (SIGTERM drain, SIGHUP reload, READY=1, socket activation). Never installed.
//
// Prints "kaizen-fake-server tcp_port=N" on stdout once listening.
#include <unistd.h>

#include <iostream>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/sd_notify.h"
#include "daemon/http/server.h"
#include "fake_service.h"

using namespace kaizen::daemon;

int main(int argc, char** argv) {
  CommandLine cl = parse_command_line(argc, argv);
  Config config;
  std::vector<std::string> errors = cl.errors;
  for (const auto& e : load_config(cl.source, &config)) errors.push_back(e);
  if (!errors.empty()) {
    for (const auto& e : errors) std::cerr << "config: " << e << "\n";
    return 2;
  }
  testing::FakeService::Options fo;
  if (const char* d = std::getenv("KAIZEN_FAKE_TOKEN_DELAY_MS")) fo.token_delay = std::chrono::milliseconds(std::atoi(d));
  auto service = std::make_unique<testing::FakeService>(fo);
  int64_t left = 0;
  {
    ServerOptions options;
    options.reload_source = cl.source;
    Server server(config, *service, options);
    std::string err = server.start();
    if (!err.empty()) {
      std::cerr << "start: " << err << "\n";
      return 1;
    }
    std::cout << "kaizen-fake-server tcp_port=" << server.tcp_port() << std::endl;
    sd::ready("serving (fake service)");
    left = server.run();
    service->shutdown();
  }
  service.reset();
  return left == 0 ? 0 : 3;
}
