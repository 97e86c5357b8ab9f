// kaizenctl: the operator CLI. Offline commands (model, tokenize, train, db) call the
// libraries directly; online ones talk to kaizend over its Unix socket.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"

namespace kaizen::ctl {

std::vector<CommandGroup>& command_groups() {
  static std::vector<CommandGroup> groups;
  return groups;
}

namespace {

void print_usage(FILE* out) {
  std::fprintf(out, "usage: kaizenctl COMMAND [ARGS...] [--json]\n\ncommands:\n");
  for (const auto& g : command_groups()) {
    std::fprintf(out, "  %-12s %s\n", g.name.c_str(), g.summary.c_str());
  }
  std::fprintf(out, "\n`kaizenctl COMMAND --help` describes one command.\n");
}

}  // namespace
}  // namespace kaizen::ctl

int main(int argc, char** argv) {
  using namespace kaizen::ctl;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& g : command_groups()) {
    if (g.name != name) continue;
    try {
      return g.run(args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kaizenctl %s: %s\n", name.c_str(), e.what());
      return kExitFailure;
    }
  }
  std::fprintf(stderr, "kaizenctl: unknown command '%s'\n\n", name.c_str());
  print_usage(stderr);
  return kExitUsage;
}
