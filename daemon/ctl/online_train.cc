// kaizenctl train now|status|cancel: the running kaizend's learner (POST /admin/train/...).
// The `train` group (train_command.cc) delegates these three here; the rest of `train`
// trains offline.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kTrainUsage =
    std::string(
        "kaizenctl train now [--all-approved]\n"
        "                         start a training run on the approved examples not trained on\n"
        "                         yet (--all-approved: on every approved example)\n"
        "kaizenctl train status   the running or last run\n"
        "kaizenctl train cancel   stop the running run (nothing is published)\n") +
    kCommonUsage;

// train status|cancel in human form: the state, the last run's gate, the recent runs.
void print_train_state(json j) {
  json recent = j.value("recent_runs", json::array());
  j.erase("recent_runs");
  json gate;
  if (j.contains("last") && j["last"].is_object()) {
    gate = j["last"].value("gate", json());
    j["last"].erase("gate");
  }
  print_fields(j);
  print_gate(gate);
  if (recent.is_array() && !recent.empty()) {
    std::printf("\nrecent runs:\n");
    print_runs_table(recent);
  }
}

}  // namespace

int online_train(const std::vector<std::string>& args) {
  return run_online("train", kTrainUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse_online_flags(a, {}, {"all-approved"});
    want_positional(f, 1, 1);
    const std::string sub = f.positional()[0];
    if (sub != "now" && sub != "status" && sub != "cancel")
      throw FlagError("unknown subcommand '" + sub + "'");
    if (f.has("all-approved") && sub != "now") throw FlagError("--all-approved is for `train now`");
    json body = json::object();
    if (f.has("all-approved")) body["all_approved"] = true;
    DaemonClient client = client_from_flags(f);
    json j = call_admin(client, "train/" + sub, body, "train " + sub, f.json());
    if (f.json()) {
      print_json(j);
      return kExitOk;
    }
    if (sub == "now") {
      std::printf("training run %s started; `kaizenctl train status` follows it\n",
                  scalar(j.value("run_id", json())).c_str());
      return kExitOk;
    }
    print_train_state(std::move(j));
    return kExitOk;
  });
}

}  // namespace kaizen::ctl
