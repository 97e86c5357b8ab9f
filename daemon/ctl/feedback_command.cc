// kaizenctl feedback export: the running kaizend's approved examples as OpenAI chat JSONL
// (POST /admin/feedback/export, paged).
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "learning/model/durable_file.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kFeedbackUsage =
    std::string(
        "kaizenctl feedback export [--out FILE.jsonl]\n"
        "  Approved examples (knowledge, rated answers, corrections) as OpenAI chat JSONL,\n"
        "  one {\"messages\":[...]} per line (with \"tools\" and \"tool_calls\" for function\n"
        "  calling), to FILE or stdout. --json adds each example's\n"
        "  id, source and provenance to its line.\n") +
    kCommonUsage;

int feedback_command(const std::vector<std::string>& args) {
  return run_online("feedback", kFeedbackUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse_online_flags(a, {"out"});
    if (f.positional().empty() || f.positional()[0] != "export")
      throw FlagError("give a subcommand: export");
    want_positional(f, 1, 1);
    DaemonClient client = client_from_flags(f);
    json all = collect_pages(client, "feedback/export", "examples", "feedback export", false);
    std::string text;
    for (const auto& e : all) {
      // The daemon writes each line (OpenAI's fine-tuning format, tools in their order);
      // --json appends kaizen's fields after them.
      std::string line = e.value("line", "");
      if (line.size() < 2 || line.back() != '}') {
        throw DaemonProtocolError("kaizend sent an example without its line (an older kaizend?)");
      }
      if (f.json()) {
        json extra = {{"id", e.value("id", json())},
                      {"source", e.value("source", json())},
                      {"provenance", e.value("provenance", json())}};
        const std::string fields = extra.dump(-1, ' ', false, json::error_handler_t::replace);
        line.pop_back();
        line += "," + fields.substr(1);
      }
      text += line + "\n";
    }
    if (!f.has("out")) {
      std::cout << text;
      return kExitOk;
    }
    try {
      model::atomic_write_file(f.get("out"), text);  // the old file stays whole on failure
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kaizenctl feedback export: cannot write %s: %s\n", f.get("out").c_str(), e.what());
      return kExitFailure;
    }
    std::fprintf(stderr, "exported %zu examples to %s\n", all.size(), f.get("out").c_str());
    return kExitOk;
  });
}

}  // namespace

KAIZEN_CTL_COMMAND("feedback", "export: approved examples as OpenAI chat JSONL (online)",
                   feedback_command);

}  // namespace kaizen::ctl
