// kaizenctl knowledge import FILE.jsonl: sends approved knowledge to the running kaizend
// (POST /admin/knowledge/import). The offline import is `kaizenctl db import`.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kKnowledgeUsage =
    std::string(
        "kaizenctl knowledge import FILE.jsonl\n"
        "  Sends OpenAI chat JSONL ({\"messages\":[...]} per line) to kaizend as approved "
        "knowledge.\n"
        "  Idempotent: lines already imported count as duplicates. Bad lines are listed with\n"
        "  their line numbers; the good ones are stored anyway (exit 1 when any line was bad).\n") +
    kCommonUsage;

// Prints the import's counts (or its JSON) and each bad line; exit 1 when any was bad.
int report_import(const std::string& path, const json& j, bool as_json) {
  const json errors = j.value("errors", json::array());
  if (as_json) {
    print_json(j);
  } else {
    std::printf("%s: %s lines, %s imported, %s duplicates, %zu bad\n", path.c_str(),
                scalar(j.value("lines", json(0))).c_str(),
                scalar(j.value("imported", json(0))).c_str(),
                scalar(j.value("duplicates", json(0))).c_str(), errors.size());
  }
  for (const auto& e : errors) {
    std::fprintf(stderr, "%s:%s: %s\n", path.c_str(), scalar(e.value("line", json())).c_str(),
                 e.value("reason", std::string("bad line")).c_str());
  }
  return errors.empty() ? kExitOk : kExitFailure;
}

int knowledge_command(const std::vector<std::string>& args) {
  return run_online(
      "knowledge", kKnowledgeUsage, args, [](const std::vector<std::string>& a) -> int {
        Flags f = parse_online_flags(a);
        if (f.positional().empty() || f.positional()[0] != "import")
          throw FlagError("give a subcommand: import FILE.jsonl");
        want_positional(f, 2, 2);
        const std::string path = f.positional()[1];
        std::ifstream in(path, std::ios::binary);
        if (!in) {
          std::fprintf(stderr, "kaizenctl knowledge import: cannot read %s: %s\n", path.c_str(),
                       std::strerror(errno));
          return fs::exists(path) ? static_cast<int>(kExitFailure)
                                  : static_cast<int>(kExitNotFound);
        }
        std::ostringstream content;
        content << in.rdbuf();
        DaemonClient client = client_from_flags(f);
        const json body = {{"jsonl", content.str()}, {"name", fs::path(path).filename().string()}};
        HttpReply r = client.request("POST", "/admin/knowledge/import",
                                     body.dump(-1, ' ', false, json::error_handler_t::replace));
        if (r.status == 413) {
          std::fprintf(
              stderr,
              "kaizenctl knowledge import: %s is larger than kaizend accepts in one request (%s); "
              "split the file, raise the daemon's body limit, or import offline with "
              "`kaizenctl db import` while kaizend is stopped\n",
              path.c_str(), r.error_message().c_str());
          return kExitRejected;
        }
        const json j = admin_answer(r, "knowledge/import", "knowledge import", f.json());
        return report_import(path, j, f.json());
      });
}

}  // namespace

KAIZEN_CTL_COMMAND("knowledge", "import FILE.jsonl: add knowledge through kaizend (online)",
                   knowledge_command);

}  // namespace kaizen::ctl
