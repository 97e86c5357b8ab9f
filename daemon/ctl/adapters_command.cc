// kaizenctl adapters list|show|rollback|pin|unpin: the running kaizend's published
// adapters (POST /admin/adapters...). This is the online `adapters` group; the offline
// `adapter merge|info` on PEFT directories is adapter_command.cc.
#include <cstdio>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kAdaptersUsage =
    std::string(
        "kaizenctl adapters list             published and candidate adapters (* = active)\n"
        "kaizenctl adapters show V           one adapter (V: v7 or 7)\n"
        "kaizenctl adapters rollback [V]     activate V (v7, 7 or base = no adapter), or the newest "
        "version before the active one (base when there is none)\n"
        "kaizenctl adapters pin V | unpin V  keep V through garbage collection, or stop keeping "
        "it\n") +
    kCommonUsage;

void print_adapter(const json& a) {
  json shown = a;
  if (shown.contains("version")) shown["version"] = version_name(shown["version"]);
  if (shown.contains("parent")) shown["parent"] = version_name(shown["parent"]);
  print_fields(shown);
}

// adapters list
int adapters_list(const Flags& f, DaemonClient& client, const std::string& what) {
  want_positional(f, 1, 1);
  json first;
  json all = collect_pages(client, "adapters", "adapters", what, f.json(), &first);
  if (f.json()) {
    print_json({{"active", first.value("active", json(0))}, {"adapters", all}});
    return kExitOk;
  }
  const json active = first.value("active", json(0));
  std::printf("active: %s\n", version_name(active).c_str());
  Table t({"", "VERSION", "STATE", "PINNED", "PARENT", "RUN", "CREATED", "METRICS"});
  for (const auto& ad : all) {
    const bool is_active = ad.value("version", json(0)) == active;
    t.add({is_active ? "*" : " ", version_name(ad.value("version", json(0))),
           scalar(ad.value("state", json())), ad.value("pinned", false) ? "yes" : "no",
           version_name(ad.value("parent", json(0))), scalar(ad.value("run_id", json(0))),
           when(ad.value("created_ms", json(0))),
           clip(metrics_text(ad.value("metrics", json::object())), 60)});
  }
  if (t.size() == 0) {
    std::printf("no adapters yet: `kaizen` answers with the base model\n");
  } else {
    t.print();
  }
  return kExitOk;
}

// adapters show|pin|unpin V (sub says which)
int adapters_one(const Flags& f, DaemonClient& client, const std::string& sub,
                 const std::string& what) {
  want_positional(f, 2, 2);
  json j = call_admin(client, "adapters/" + sub, {{"version", f.positional()[1]}}, what, f.json());
  if (f.json()) {
    print_json(j);
  } else {
    if (sub != "show") {
      std::printf("%s %s\n", version_name(j.value("version", json(0))).c_str(),
                  sub == "pin" ? "pinned" : "unpinned");
    }
    print_adapter(j);
  }
  return kExitOk;
}

// adapters rollback [V]
int adapters_rollback(const Flags& f, DaemonClient& client, const std::string& what) {
  want_positional(f, 1, 2);
  json body = json::object();
  if (f.positional().size() == 2) body["version"] = f.positional()[1];
  json j = call_admin(client, "adapters/rollback", body, what, f.json());
  if (f.json()) {
    print_json(j);
  } else {
    std::printf("active adapter is now %s (was %s)\n",
                version_name(j.value("active", json(0))).c_str(),
                version_name(j.value("previous", json(0))).c_str());
  }
  return kExitOk;
}

int adapters_command(const std::vector<std::string>& args) {
  return run_online("adapters", kAdaptersUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse_online_flags(a);
    if (f.positional().empty())
      throw FlagError("give a subcommand: list, show, rollback, pin, unpin");
    const std::string sub = f.positional()[0];
    const std::string what = "adapters " + sub;
    DaemonClient client = client_from_flags(f);
    if (sub == "list") return adapters_list(f, client, what);
    if (sub == "show" || sub == "pin" || sub == "unpin") return adapters_one(f, client, sub, what);
    if (sub == "rollback") return adapters_rollback(f, client, what);
    throw FlagError("unknown subcommand '" + sub + "'");
  });
}

}  // namespace

KAIZEN_CTL_COMMAND("adapters", "list | show | rollback | pin | unpin published adapters (online)",
                   adapters_command);

}  // namespace kaizen::ctl
