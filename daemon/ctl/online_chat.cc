// kaizenctl chat (without --model): a streaming REPL against the running kaizend.
// Each line from stdin is a user turn; the answer is streamed from
// POST /v1/chat/completions (stream: true) and printed as it arrives, then kept in the
// conversation. /reset forgets the conversation, /quit (or end of input) ends.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kUsage =
    "kaizenctl chat [--model-name kaizen|base|kaizen@vN] [--system S] [--temperature T]\n"
    "               [--top-p P] [--max-tokens N] [--seed N] [--think] [--socket PATH] [--json]\n"
    "  Streaming chat with the running kaizend. Type a message and Enter; /reset starts over;\n"
    "  /quit or Ctrl-D ends. --json prints one JSON object per answer instead of the text.\n"
    "  (kaizenctl chat --model DIR ... chats with a model directory in-process, no daemon.)\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 unknown model, 4 kaizend not reachable,\n"
    "  5 busy or unavailable (the code of the last failed turn).\n";

struct Turn {
  std::string text;
  std::string id, model, finish_reason;
  json usage;
  std::string error;  // an error event inside the stream
};

// Streams one answer; prints deltas unless as_json. Returns 0 or an exit code.
int ask(DaemonClient& client, const json& request, bool as_json, Turn* turn) {
  bool done = false;
  HttpReply r = client.stream(
      "POST", "/v1/chat/completions", request.dump(-1, ' ', false, json::error_handler_t::replace),
      [&](std::string_view data) {
        if (data == "[DONE]") {
          done = true;
          return false;
        }
        json chunk = json::parse(data, nullptr, false);
        if (chunk.is_discarded()) return true;
        if (chunk.contains("error")) {
          HttpReply e;
          e.body = std::string(data);
          turn->error = e.error_message();
          return true;
        }
        if (turn->id.empty()) turn->id = chunk.value("id", "");
        if (turn->model.empty()) turn->model = chunk.value("model", "");
        if (chunk.contains("usage") && chunk["usage"].is_object()) turn->usage = chunk["usage"];
        const json choices = chunk.value("choices", json::array());
        if (!choices.is_array() || choices.empty()) return true;
        const json& c = choices[0];
        if (c.contains("delta") && c["delta"].is_object()) {
          const json& content = c["delta"].value("content", json());
          if (content.is_string()) {
            const std::string& piece = content.get_ref<const std::string&>();
            turn->text += piece;
            if (!as_json) {
              std::fwrite(piece.data(), 1, piece.size(), stdout);
              std::fflush(stdout);
            }
          }
        }
        if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
          turn->finish_reason = c["finish_reason"].get<std::string>();
        }
        return true;
      });
  if (r.status != 200) {
    std::fprintf(stderr, "kaizenctl chat: %s (HTTP %d)\n", r.error_message().c_str(), r.status);
    return exit_code_for_http(r.status);
  }
  if (!as_json && !turn->text.empty()) std::fputs("\n", stdout);
  if (!turn->error.empty()) {
    std::fprintf(stderr, "kaizenctl chat: the answer stopped: %s\n", turn->error.c_str());
    return kExitFailure;
  }
  if (!done && turn->finish_reason.empty()) {
    std::fprintf(stderr, "kaizenctl chat: the stream ended before the answer was complete\n");
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

int online_chat(const std::vector<std::string>& args) {
  return run_online("chat", kUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f(
        a,
        {"socket", "timeout", "model-name", "system", "temperature", "top-p", "max-tokens", "seed"},
        {"think"});
    if (!f.positional().empty()) throw FlagError("unexpected argument '" + f.positional()[0] + "'");
    json base = {{"model", f.get("model-name", "kaizen")},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}},
                 {"chat_template_kwargs", {{"enable_thinking", f.has("think")}}}};
    if (f.has("temperature")) base["temperature"] = f.get_double("temperature", 0);
    if (f.has("top-p")) base["top_p"] = f.get_double("top-p", 1);
    if (f.has("max-tokens")) base["max_tokens"] = f.get_int("max-tokens", 0);
    if (f.has("seed")) base["seed"] = f.get_int("seed", 0);
    DaemonClient client = client_from_flags(f);

    json history = json::array();
    if (f.has("system")) history.push_back({{"role", "system"}, {"content", f.get("system")}});
    const size_t fixed = history.size();
    const bool interactive = isatty(STDIN_FILENO);
    int last_error = kExitOk;
    std::string line;
    while (true) {
      if (interactive && !f.json()) {
        std::fputs("> ", stdout);
        std::fflush(stdout);
      }
      if (!std::getline(std::cin, line)) break;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line == "/quit" || line == "/exit") break;
      if (line == "/reset") {
        history.erase(history.begin() + static_cast<std::ptrdiff_t>(fixed), history.end());
        if (!f.json()) std::puts("(conversation reset)");
        continue;
      }
      history.push_back({{"role", "user"}, {"content", line}});
      json request = base;
      request["messages"] = history;
      Turn turn;
      int rc;
      try {
        rc = ask(client, request, f.json(), &turn);
      } catch (const DaemonProtocolError& e) {
        std::fprintf(stderr, "\nkaizenctl chat: %s\n", e.what());
        rc = kExitFailure;
      }
      if (rc != kExitOk) {
        history.erase(history.end() -
                      1);  // the unanswered question is not part of the conversation
        last_error = rc;
        continue;
      }
      history.push_back({{"role", "assistant"}, {"content", turn.text}});
      if (f.json()) {
        std::cout << json{{"id", turn.id},
                          {"model", turn.model},
                          {"content", turn.text},
                          {"finish_reason", turn.finish_reason},
                          {"usage", turn.usage}}
                         .dump(-1, ' ', false, json::error_handler_t::replace)
                  << std::endl;
      }
    }
    if (interactive && !f.json()) std::puts("");
    return last_error;
  });
}

}  // namespace kaizen::ctl
