// kaizenctl feedback export: the running kaizend's approved examples as OpenAI chat JSONL
// (POST /admin/feedback/export, paged).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"

namespace kaizen::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kFeedbackUsage =
    std::string(
        "kaizenctl feedback export [--out FILE.jsonl]\n"
        "  Approved examples (knowledge, rated answers, corrections) as OpenAI chat JSONL,\n"
        "  one {\"messages\":[...]} per line, to FILE or stdout. --json adds each example's\n"
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
    std::ofstream file;
    const bool to_file = f.has("out");
    if (to_file) {
      const std::string tmp = f.get("out") + ".tmp";
      file.open(tmp, std::ios::binary | std::ios::trunc);
      if (!file) {
        std::fprintf(stderr, "kaizenctl feedback export: cannot write %s: %s\n", tmp.c_str(),
                     std::strerror(errno));
        return kExitFailure;
      }
    }
    std::ostream& out = to_file ? static_cast<std::ostream&>(file) : std::cout;
    for (const auto& e : all) {
      json line = {{"messages", e.value("messages", json::array())}};
      if (f.json()) {
        line["id"] = e.value("id", json());
        line["source"] = e.value("source", json());
        line["provenance"] = e.value("provenance", json());
      }
      out << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
    if (to_file) {
      file.close();
      std::error_code ec;
      if (!file || (fs::rename(f.get("out") + ".tmp", f.get("out"), ec), ec)) {
        std::fprintf(stderr, "kaizenctl feedback export: cannot write %s\n", f.get("out").c_str());
        return kExitFailure;
      }
      std::fprintf(stderr, "exported %zu examples to %s\n", all.size(), f.get("out").c_str());
    }
    return kExitOk;
  });
}

}  // namespace

KAIZEN_CTL_COMMAND("feedback", "export: approved examples as OpenAI chat JSONL (online)",
                   feedback_command);

}  // namespace kaizen::ctl
