// kaizenctl's online commands: they talk to a running kaizend over its Unix socket
// (HTTP/1.1, see daemon_client.h). The socket is `--socket PATH`, else $KAIZEN_SOCKET,
// else /run/kaizen/kaizend.sock.
//
// Groups registered in online_commands.cc: status, adapters, review, knowledge,
// feedback, runs. Entry points other groups delegate to (they share a name with an
// offline command):
//   chat without --model       -> online_chat        (model_command.cc)
//   db backup without --state-dir -> online_db_backup (db_command.cc)
//   train now|status|cancel     -> online_train       (the `train` group's owner)
//
// Exit codes (command.h): 0 ok; 2 usage; 3 not found (HTTP 404, or a local file);
// 4 kaizend unreachable; 5 rejected or unavailable (HTTP 409, 429, 503); 1 anything else.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/ctl/daemon_client.h"
#include "daemon/ctl/flags.h"

namespace kaizen::ctl {

// Streaming chat REPL against kaizend: reads lines from stdin, keeps the conversation,
// prints answer tokens as they arrive. args as for the `chat` group.
int online_chat(const std::vector<std::string>& args);
// args = {"backup", ...} as given to the `db` group.
int online_db_backup(const std::vector<std::string>& args);
// args = {"now"|"status"|"cancel", ...} as given to the `train` group.
int online_train(const std::vector<std::string>& args);

// --- shared by the online commands ---

// Thrown by helpers to end a command with an exit code after printing why.
struct CommandExit {
  int code;
};

// Maps an HTTP status of a failed request to an ExitCode.
int exit_code_for_http(int status);

// Connection settings from the common flags (--socket, --timeout seconds).
DaemonClient client_from_flags(const Flags& f);

// POSTs args to /admin/<op> and returns the JSON answer. On an HTTP error prints
// "kaizenctl <what>: <message>" to stderr (and the error body to stdout with --json),
// then throws CommandExit. DaemonUnreachable / DaemonProtocolError propagate.
nlohmann::json call_admin(DaemonClient& client, const std::string& op, const nlohmann::json& args,
                          const std::string& what, bool as_json);

// Runs body() with the common error handling: FlagError -> usage (prints `usage`),
// DaemonUnreachable -> "kaizend is not running at PATH ..." and 4, protocol errors -> 1,
// CommandExit -> its code.
int run_online(const std::string& what, const std::string& usage,
               const std::vector<std::string>& args,
               const std::function<int(const std::vector<std::string>&)>& body);

}  // namespace kaizen::ctl
