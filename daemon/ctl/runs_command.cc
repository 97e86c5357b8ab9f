// kaizenctl runs list|show ID: the running kaizend's training runs (POST /admin/runs...).
// `train status` (online_train.cc) shows the running or last one.
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kRunsUsage =
    std::string(
        "kaizenctl runs list      training runs, newest first: state, adapter, verdict\n"
        "kaizenctl runs show ID   one run: examples, loss curve, gate metrics, phase times\n") +
    kCommonUsage;

// runs show ID
int runs_show(const Flags& f, DaemonClient& client) {
  want_positional(f, 2, 2);
  json j = call_admin(client, "runs/show", {{"id", f.positional()[1]}}, "runs show", f.json());
  if (f.json()) {
    print_json(j);
    return kExitOk;
  }
  json shown = j;
  for (const char* k : {"example_ids", "replay_ids", "loss_curve"}) {
    if (shown.contains(k) && shown[k].is_array()) {
      const size_t n = shown[k].size();
      std::string v = std::to_string(n) + (std::string(k) == "loss_curve" ? " steps" : "");
      if (std::string(k) == "loss_curve" && n > 0) {
        v += ", first " + scalar(shown[k].front()) + ", last " + scalar(shown[k].back());
      }
      shown[k] = v;
    }
  }
  if (shown.contains("adapter_version")) {
    shown["adapter_version"] = version_name(shown["adapter_version"]);
  }
  if (shown.contains("config")) shown["config"] = clip(shown["config"].dump(), 200);
  shown.erase("gate");
  print_fields(shown);
  print_gate(j.value("gate", json()));
  return kExitOk;
}

// runs list
int runs_list(const Flags& f, DaemonClient& client) {
  want_positional(f, 1, 1);
  json all = collect_pages(client, "runs", "runs", "runs list", f.json());
  if (f.json()) {
    print_json({{"runs", all}});
    return kExitOk;
  }
  if (all.empty()) {
    std::printf("no training runs yet\n");
    return kExitOk;
  }
  print_runs_table(all);
  return kExitOk;
}

int runs_command(const std::vector<std::string>& args) {
  return run_online("runs", kRunsUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse_online_flags(a);
    if (f.positional().empty()) throw FlagError("give a subcommand: list, show ID");
    const std::string sub = f.positional()[0];
    DaemonClient client = client_from_flags(f);
    if (sub == "show") return runs_show(f, client);
    if (sub != "list") throw FlagError("unknown subcommand '" + sub + "'");
    return runs_list(f, client);
  });
}

}  // namespace

KAIZEN_CTL_COMMAND("runs", "list | show ID: training runs (online)", runs_command);

}  // namespace kaizen::ctl
