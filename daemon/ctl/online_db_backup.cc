// kaizenctl db backup without --state-dir: asks the running kaizend for an online backup
// (POST /admin/db/backup). The `db` group (db_command.cc) delegates here; with
// --state-dir it backs up offline itself.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kDbBackupUsage =
    std::string(
        "kaizenctl db backup [--dir D]   ask the running kaizend for an online backup into D\n"
        "  (default: STATE_DIR/backups). D is a path on the daemon's machine; relative paths are\n"
        "  made absolute here. With --state-dir, `db backup` is the offline backup instead.\n") +
    kCommonUsage;

}  // namespace

int online_db_backup(const std::vector<std::string>& args) {
  return run_online(
      "db backup", kDbBackupUsage, args, [](const std::vector<std::string>& a) -> int {
        Flags f = parse_online_flags(a, {"dir"});
        want_positional(f, 1, 1);
        if (f.positional()[0] != "backup") throw FlagError("only `db backup` talks to the daemon");
        json body = json::object();
        if (f.has("dir")) body["dir"] = fs::absolute(f.get("dir")).lexically_normal().string();
        DaemonClient client = client_from_flags(f);
        json j = call_admin(client, "db/backup", body, "db backup", f.json());
        if (f.json()) {
          print_json(j);
        } else {
          std::printf("backup %s written to %s (%s bytes in %s files)\n",
                      scalar(j.value("id", json())).c_str(), scalar(j.value("dir", json())).c_str(),
                      scalar(j.value("size_bytes", json())).c_str(),
                      scalar(j.value("files", json())).c_str());
        }
        return kExitOk;
      });
}

}  // namespace kaizen::ctl
