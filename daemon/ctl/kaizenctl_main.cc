// kaizenctl: the operator CLI. Offline commands (model, tokenize, train, db) call the
// libraries directly; online ones talk to kaizend over its Unix socket.
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/flags.h"

namespace kaizen::ctl {

std::vector<CommandGroup>& command_groups() {
  static std::vector<CommandGroup> groups;
  return groups;
}

namespace {

// The order `kaizenctl --help` lists the groups in. Each group registers itself from a
// static initialiser in its own file, and the order of those across files is unspecified
// (in practice it is the link order), so the help must not follow command_groups().
// Groups missing here are listed after these, by name. (This is the order the help had
// when the files linked in name order happened to give it.)
const char* const kHelpOrder[] = {
    "adapter", "db",        "demo",     "model", "generate", "chat",       "status", "adapters",
    "review",  "knowledge", "feedback", "runs",  "tokenize", "detokenize", "train",
};

// command_groups() in help order.
std::vector<const CommandGroup*> groups_for_help() {
  auto rank = [](const std::string& name) {
    const size_t n = sizeof(kHelpOrder) / sizeof(kHelpOrder[0]);
    for (size_t i = 0; i < n; ++i) {
      if (name == kHelpOrder[i]) return i;
    }
    return n;
  };
  std::vector<const CommandGroup*> out;
  for (const auto& g : command_groups()) out.push_back(&g);
  std::stable_sort(out.begin(), out.end(), [&](const CommandGroup* a, const CommandGroup* b) {
    const size_t ra = rank(a->name), rb = rank(b->name);
    return ra != rb ? ra < rb : a->name < b->name;
  });
  return out;
}

void print_usage(FILE* out) {
  std::fprintf(
      out,
      "usage: kaizenctl [--socket PATH] [--timeout S] [--json] COMMAND [ARGS...]\n\ncommands:\n");
  for (const CommandGroup* g : groups_for_help()) {
    std::fprintf(out, "  %-12s %s\n", g->name.c_str(), g->summary.c_str());
  }
  std::fprintf(
      out,
      "\nGlobal options go before or after the command: --socket PATH (kaizend's socket, else\n"
      "$KAIZEN_SOCKET, else /run/kaizen/kaizend.sock), --timeout S, --json.\n"
      "`kaizenctl COMMAND --help` describes one command.\n");
}

}  // namespace

GlobalOptions split_global_options(const std::vector<std::string>& argv) {
  GlobalOptions out;
  size_t i = 0;
  for (; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 2 || a[0] != '-') break;  // the command
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    std::string name = a, value;
    const bool inline_value = a.find('=') != std::string::npos;
    if (inline_value) {
      name = a.substr(0, a.find('='));
      value = a.substr(a.find('=') + 1);
    }
    if (name == "--json") {
      if (inline_value) throw FlagError("--json takes no value");
      out.hoisted.push_back("--json");
    } else if (name == "--socket" || name == "--timeout") {
      if (!inline_value) {
        if (i + 1 >= argv.size()) throw FlagError(name + " needs a value");
        value = argv[++i];
      }
      out.hoisted.push_back(name);
      out.hoisted.push_back(value);
    } else {
      throw FlagError("unknown option " + name +
                      " before the command (global options: --socket, --timeout, --json)");
    }
  }
  if (i < argv.size()) {
    out.command = argv[i];
    out.args.assign(argv.begin() + static_cast<std::ptrdiff_t>(i) + 1, argv.end());
    out.args.insert(out.args.end(), out.hoisted.begin(), out.hoisted.end());
  }
  return out;
}
}  // namespace kaizen::ctl

int main(int argc, char** argv) {
  using namespace kaizen::ctl;
  GlobalOptions g;
  try {
    g = split_global_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const FlagError& e) {
    std::fprintf(stderr, "kaizenctl: %s\n\n", e.what());
    print_usage(stderr);
    return kExitUsage;
  }
  if (g.command.empty() || g.command == "help") {
    const bool asked = g.help || g.command == "help";
    print_usage(asked ? stdout : stderr);
    return asked ? kExitOk : kExitUsage;
  }
  for (const auto& grp : command_groups()) {
    if (grp.name != g.command) continue;
    try {
      return grp.run(g.args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kaizenctl %s: %s\n", g.command.c_str(), e.what());
      return kExitFailure;
    }
  }
  std::fprintf(stderr, "kaizenctl: unknown command '%s'\n\n", g.command.c_str());
  print_usage(stderr);
  return kExitUsage;
}
