// kaizenctl review list|approve|reject: examples waiting for an operator's decision
// before they may be trained on (POST /admin/review...).
#include <cstdio>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"
#include "daemon/ctl/online_format.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

const std::string kReviewUsage =
    std::string(
        "kaizenctl review list          examples waiting for review (from feedback and "
        "corrections)\n"
        "kaizenctl review approve ID    approve: the example joins the training set\n"
        "kaizenctl review reject ID     reject: it is never trained on\n") +
    kCommonUsage;

// The last message with this role as a reviewer reads it ("" when none): its content,
// then its tool calls as name(arguments).
std::string last_of_role(const json& messages, const std::string& role) {
  std::string out;
  if (!messages.is_array()) return out;
  for (const auto& m : messages) {
    if (!m.is_object() || m.value("role", "") != role) continue;
    out = m.value("content", "");
    for (const auto& c : m.value("tool_calls", json::array())) {
      const json fn = c.is_object() ? c.value("function", json::object()) : json::object();
      if (!out.empty()) out += " ";
      out += "→ " + fn.value("name", "?") + "(" + fn.value("arguments", "") + ")";
    }
  }
  return out;
}

// review list
int review_list(const Flags& f, DaemonClient& client, const std::string& what) {
  want_positional(f, 1, 1);
  json all = collect_pages(client, "review", "pending", what, f.json());
  if (f.json()) {
    print_json({{"pending", all}});
    return kExitOk;
  }
  if (all.empty()) {
    std::printf("nothing waiting for review\n");
    return kExitOk;
  }
  Table t({"ID", "SOURCE", "CREATED", "QUESTION", "ANSWER", "PROVENANCE"});
  for (const auto& e : all) {
    const json msgs = e.value("messages", json::array());
    t.add({scalar(e.value("id", json())), scalar(e.value("source", json())),
           when(e.value("created_ms", json(0))), clip(last_of_role(msgs, "user"), 40),
           clip(last_of_role(msgs, "assistant"), 40), clip(e.value("provenance", ""), 40)});
  }
  t.print();
  std::printf("%zu waiting; `kaizenctl review approve ID` or `reject ID`\n", t.size());
  return kExitOk;
}

// review approve|reject ID (sub says which)
int review_decide(const Flags& f, DaemonClient& client, const std::string& sub,
                  const std::string& what) {
  want_positional(f, 2, 2);
  json j = call_admin(client, "review/" + sub, {{"id", f.positional()[1]}}, what, f.json());
  if (f.json()) {
    print_json(j);
  } else {
    std::printf("example %s %s\n", scalar(j.value("id", json())).c_str(),
                scalar(j.value("state", json())).c_str());
  }
  return kExitOk;
}

int review_command(const std::vector<std::string>& args) {
  return run_online("review", kReviewUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse_online_flags(a);
    if (f.positional().empty()) throw FlagError("give a subcommand: list, approve, reject");
    const std::string sub = f.positional()[0];
    const std::string what = "review " + sub;
    DaemonClient client = client_from_flags(f);
    if (sub == "list") return review_list(f, client, what);
    if (sub == "approve" || sub == "reject") return review_decide(f, client, sub, what);
    throw FlagError("unknown subcommand '" + sub + "'");
  });
}

}  // namespace

KAIZEN_CTL_COMMAND("review", "list | approve | reject examples waiting for review (online)",
                   review_command);

}  // namespace kaizen::ctl
