// kaizenctl command registry. Each command group (model, tokenize, db, adapters, ...)
// lives in its own file under daemon/ctl/ and registers itself with
// KAIZEN_CTL_COMMAND; kaizenctl_main.cc dispatches on the first word.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace kaizen::ctl {

// Exit codes that mean something to scripts.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // the command ran and failed (I/O error, bad file contents, ...)
  kExitUsage = 2,        // bad flags or arguments; usage was printed
  kExitNotFound = 3,     // the named thing (adapter version, record, file) does not exist
  kExitUnavailable = 4,  // the daemon could not be reached
  kExitRejected = 5,     // the request was valid but refused (e.g. gate rejected a run)
};

// args: everything after the group name, e.g. for `kaizenctl db backup --out D`
// args = {"backup", "--out", "D"}. Returns an ExitCode.
using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct CommandGroup {
  std::string name;     // first word on the command line
  std::string summary;  // one line for `kaizenctl --help`
  CommandFn run;
};

// All registered groups, in registration order: static-initialiser order, unspecified across
// files, so nothing may depend on it (`kaizenctl --help` lists groups in kaizenctl_main.cc's
// kHelpOrder; a new group goes there too). Thread-unsafe; used from main only.
std::vector<CommandGroup>& command_groups();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, CommandFn run) {
    command_groups().push_back({std::move(name), std::move(summary), std::move(run)});
  }
};

// kaizenctl's global options may come before the command (`kaizenctl --socket P status`)
// as well as after it: split_global_options() takes the leading ones (--socket PATH,
// --socket=PATH, --timeout S, --json, --help) and appends them to the command's args,
// where every online command's flag parser reads them. Throws FlagError for an unknown
// leading option or a missing value.
struct GlobalOptions {
  bool help = false;                  // --help / -h before any command
  std::string command;                // first word that is not a global option ("" = none)
  std::vector<std::string> args;      // the command's args, then the hoisted options
  std::vector<std::string> hoisted;   // the global options as given, e.g. {"--socket", "P"}
};
GlobalOptions split_global_options(const std::vector<std::string>& argv);

}  // namespace kaizen::ctl

#define KAIZEN_CTL_CONCAT2(a, b) a##b
#define KAIZEN_CTL_CONCAT(a, b) KAIZEN_CTL_CONCAT2(a, b)
#define KAIZEN_CTL_COMMAND(name, summary, fn)                                              \
  static ::kaizen::ctl::CommandRegistrar KAIZEN_CTL_CONCAT(kaizen_ctl_registrar_, __LINE__)( \
      name, summary, fn)
