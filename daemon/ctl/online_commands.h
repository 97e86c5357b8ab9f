// kaizenctl's online commands: they talk to a running kaizend over its Unix socket
// (HTTP/1.1, see daemon_client.h). The socket is `--socket PATH`, else $KAIZEN_SOCKET,
// else /run/kaizen/kaizend.sock.
//
// One file per online group: status_command.cc, adapters_command.cc (the online
// `adapters` group; the offline `adapter` group is adapter_command.cc), review_command.cc,
// knowledge_command.cc, feedback_command.cc, runs_command.cc, demo_command.cc. Entry
// points other groups delegate to (they share a name with an offline command):
//   chat without --model          -> online_chat      (online_chat.cc, for model_command.cc)
//   db backup without --state-dir -> online_db_backup (online_db_backup.cc, for db_command.cc)
//   train now|status|cancel       -> online_train     (online_train.cc, for train_command.cc)
// What they share is here (online_commands.cc); the human output helpers are in
// online_format.h.
//
// Exit codes (command.h): 0 ok; 2 usage; 3 not found (HTTP 404, or a local file);
// 4 kaizend unreachable; 5 rejected or unavailable (HTTP 409, 429, 503); 1 anything else.
#pragma once

#include <cstddef>
#include <functional>
#include <set>
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

// The tail of every online command's usage text: the common flags and the exit codes.
inline constexpr char kCommonUsage[] =
    "Common flags: --socket PATH (else $KAIZEN_SOCKET, else /run/kaizen/kaizend.sock),\n"
    "  --timeout S (seconds to wait for kaizend, default 120), --json (print the daemon's JSON).\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 kaizend not reachable,\n"
    "  5 rejected or unavailable.\n";

// Thrown by helpers to end a command with an exit code after printing why.
struct CommandExit {
  int code;
};

// Maps an HTTP status of a failed request to an ExitCode.
int exit_code_for_http(int status);

// Connection settings from the common flags (--socket, --timeout seconds).
DaemonClient client_from_flags(const Flags& f);

// The JSON of a 200 reply to /admin/<op>; otherwise prints the error as call_admin does
// and throws CommandExit. For callers that send the request themselves.
nlohmann::json admin_answer(const HttpReply& r, const std::string& op, const std::string& what,
                            bool as_json);

// POSTs args to /admin/<op> and returns the JSON answer. On an HTTP error prints
// "kaizenctl <what>: <message>" to stderr (and the error body to stdout with --json),
// then throws CommandExit. DaemonUnreachable / DaemonProtocolError propagate.
nlohmann::json call_admin(DaemonClient& client, const std::string& op, const nlohmann::json& args,
                          const std::string& what, bool as_json);

// Pages through an admin list op (cursor/limit) and returns the items of every page, in
// order; `items_key` names the array in each page. *first_page, when given, gets page 1.
nlohmann::json collect_pages(DaemonClient& client, const std::string& op,
                             const std::string& items_key, const std::string& what, bool as_json,
                             nlohmann::json* first_page = nullptr);

// Runs body() with the common error handling: FlagError -> usage (prints `usage`),
// DaemonUnreachable -> "kaizend is not running at PATH ..." and 4, protocol errors -> 1,
// CommandExit -> its code.
int run_online(const std::string& what, const std::string& usage,
               const std::vector<std::string>& args,
               const std::function<int(const std::vector<std::string>&)>& body);

// Parses an online command's args: value_flags and bool_flags plus the common --socket,
// --timeout (and Flags' own --json, --help). Throws FlagError.
Flags parse_online_flags(const std::vector<std::string>& args,
                         std::set<std::string> value_flags = {},
                         std::set<std::string> bool_flags = {});

// Throws FlagError unless min <= positional args <= max.
void want_positional(const Flags& f, size_t min, size_t max);

// Prints j indented by 2, then a newline, to stdout.
void print_json(const nlohmann::json& j);

}  // namespace kaizen::ctl
