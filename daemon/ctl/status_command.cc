// kaizenctl status: the running kaizend's model, active adapter, queue and training state
// (POST /admin/status).
#include <cstdio>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kStatusUsage =
    std::string("kaizenctl status [--json]   model, active adapter, queue, training state\n") +
    kCommonUsage;

int status_command(const std::vector<std::string>& args) {
  return run_online("status", kStatusUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse_online_flags(a);
    want_positional(f, 0, 0);
    DaemonClient client = client_from_flags(f);
    json j = call_admin(client, "status", json::object(), "status", f.json());
    if (f.json()) {
      print_json(j);
      return kExitOk;
    }
    std::printf("kaizend at %s\n", client.options().socket_path.c_str());
    if (j.contains("active_adapter")) j["active_adapter"] = version_name(j["active_adapter"]);
    print_fields(j);
    return kExitOk;
  });
}

}  // namespace

KAIZEN_CTL_COMMAND("status", "kaizend status: model, active adapter, queue (online)",
                   status_command);

}  // namespace kaizen::ctl
