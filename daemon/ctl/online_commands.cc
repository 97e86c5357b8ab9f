// kaizenctl status | adapters | review | knowledge | feedback | runs, and the online
// halves of `db backup` and `train`: thin clients of kaizend's /admin/<op> routes.
// Human-readable tables by default; --json prints the daemon's JSON unchanged.
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/ctl/command.h"
#include "daemon/ctl/online_commands.h"

namespace kaizen::ctl {

namespace fs = std::filesystem;
using nlohmann::json;

int exit_code_for_http(int status) {
  if (status == 404) return kExitNotFound;
  if (status == 409 || status == 429 || status == 503) return kExitRejected;
  return kExitFailure;
}

DaemonClient client_from_flags(const Flags& f) {
  DaemonClientOptions o;
  o.socket_path = resolve_socket_path(f.get("socket"));
  const double timeout_s = f.get_double("timeout", 120);
  if (timeout_s < 0) throw FlagError("--timeout must be >= 0 seconds");
  o.read_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return DaemonClient(o);
}

namespace {

// The JSON of a 200 reply; otherwise prints the error and throws CommandExit.
json admin_answer(const HttpReply& r, const std::string& op, const std::string& what,
                  bool as_json) {
  if (r.status == 200) {
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded())
      throw DaemonProtocolError("kaizend answered /admin/" + op + " with non-JSON");
    return j;
  }
  if (as_json) {
    json j = json::parse(r.body, nullptr, false);
    std::cout << (j.is_discarded() ? json{{"error", {{"message", r.error_message()}}}} : j).dump(2)
              << "\n";
  }
  std::string message = r.error_message();
  if (r.status == 404 && message.rfind("unknown admin operation", 0) == 0) {
    message += " (this kaizend is older than kaizenctl?)";
  }
  std::fprintf(stderr, "kaizenctl %s: %s (HTTP %d)\n", what.c_str(), message.c_str(), r.status);
  throw CommandExit{exit_code_for_http(r.status)};
}

}  // namespace

json call_admin(DaemonClient& client, const std::string& op, const json& args,
                const std::string& what, bool as_json) {
  return admin_answer(client.request("POST", "/admin/" + op,
                                     args.dump(-1, ' ', false, json::error_handler_t::replace)),
                      op, what, as_json);
}

int run_online(const std::string& what, const std::string& usage,
               const std::vector<std::string>& args,
               const std::function<int(const std::vector<std::string>&)>& body) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(usage.c_str(), stdout);
      return kExitOk;
    }
  }
  try {
    return body(args);
  } catch (const FlagError& e) {
    std::fprintf(stderr, "kaizenctl %s: %s\n\n%s", what.c_str(), e.what(), usage.c_str());
    return kExitUsage;
  } catch (const DaemonUnreachable& e) {
    std::fprintf(
        stderr,
        "kaizenctl %s: kaizend is not running at %s (is the service started? --socket?)\n  %s\n",
        what.c_str(), e.socket_path.c_str(), e.what());
    return kExitUnavailable;
  } catch (const DaemonProtocolError& e) {
    std::fprintf(stderr, "kaizenctl %s: %s\n", what.c_str(), e.what());
    return kExitFailure;
  } catch (const CommandExit& e) {
    return e.code;
  }
}

namespace {

const std::set<std::string> kCommonFlags = {"socket", "timeout"};
const char* kCommonUsage =
    "Common flags: --socket PATH (else $KAIZEN_SOCKET, else /run/kaizen/kaizend.sock),\n"
    "  --timeout S (seconds to wait for kaizend, default 120), --json (print the daemon's JSON).\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 kaizend not reachable,\n"
    "  5 rejected or unavailable.\n";

Flags parse(const std::vector<std::string>& args, std::set<std::string> value_flags = {},
            std::set<std::string> bool_flags = {}) {
  value_flags.insert(kCommonFlags.begin(), kCommonFlags.end());
  return Flags(args, std::move(value_flags), std::move(bool_flags));
}

void want_positional(const Flags& f, size_t min, size_t max) {
  const auto& p = f.positional();
  if (p.size() < min) throw FlagError("missing argument");
  if (p.size() > max) throw FlagError("unexpected argument '" + p[max] + "'");
}

void print_json(const json& j) {
  std::cout << j.dump(2) << "\n";
}

// --- human formatting ---

std::string when(const json& ms) {
  if (!ms.is_number() || ms.get<int64_t>() <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms.get<int64_t>() / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  if (v.is_number_float()) {
    std::ostringstream o;
    o.precision(4);
    o << v.get<double>();
    return o.str();
  }
  return v.dump();
}

std::string version_name(const json& v) {
  if (!v.is_number() || v.get<int64_t>() <= 0) return "base";
  return "v" + std::to_string(v.get<int64_t>());
}

// One line, at most n characters (UTF-8 safe: never cuts inside a sequence).
std::string clip(std::string s, size_t n) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() <= n) return s;
  size_t cut = n - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

// A text table: columns padded to their widest cell (counting UTF-8 code points).
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }
  void print() const {
    std::vector<size_t> w(rows_[0].size(), 0);
    for (const auto& r : rows_)
      for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(w[i] - width(r[i]) + 2, ' ');
      }
      std::cout << line << "\n";
    }
  }

 private:
  static size_t width(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }
  std::vector<std::vector<std::string>> rows_;
};

// key: value lines for an object; nested objects become "key.sub".
void print_fields(const json& j, const std::string& prefix = "") {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_object() && !it.value().empty()) {
      print_fields(it.value(), prefix + it.key() + ".");
      continue;
    }
    std::string v = scalar(it.value());
    const std::string& k = it.key();
    if (k.size() > 3 && k.compare(k.size() - 3, 3, "_ms") == 0 && it.value().is_number() &&
        it.value().get<int64_t>() > 1000000000000) {
      v = when(it.value());
    }
    std::printf("%-24s %s\n", (prefix + k + ":").c_str(), v.c_str());
  }
}

// The gate's checks of a run ({"checks": [...]}, see storage::Run::gate) as a table, with
// the config key that moves each threshold; nothing when the run was not validated.
void print_gate(const json& gate) {
  if (!gate.is_object() || !gate.contains("checks") || !gate["checks"].is_array()) return;
  std::printf("\ngate: %s\n", gate.value("pass", false) ? "pass" : "REJECTED");
  Table t({"  CHECK", "VALUE", "LIMIT", "RESULT", "THRESHOLD KEY"});
  for (const auto& c : gate["checks"]) {
    t.add({"  " + c.value("check", std::string("?")), scalar(c.value("value", json())),
           std::string(c.value("at_most", false) ? "<= " : ">= ") + scalar(c.value("threshold", json())),
           c.value("pass", false) ? "pass" : "FAIL", c.value("key", std::string())});
  }
  t.print();
  for (const auto& f : gate.value("failures", json::array())) {
    if (f.is_string() && f.get<std::string>().find("(gate.") == std::string::npos)
      std::printf("  %s\n", f.get<std::string>().c_str());
  }
}

// Pages through an admin list op; `items_key` names the array in each page.
json collect_pages(DaemonClient& client, const std::string& op, const std::string& items_key,
                   const std::string& what, bool as_json, json* first_page = nullptr) {
  json all = json::array();
  uint64_t cursor = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    json page = call_admin(client, op, {{"cursor", cursor}, {"limit", 500}}, what, as_json);
    if (first_page && guard == 0) *first_page = page;
    if (page.contains(items_key) && page[items_key].is_array()) {
      for (auto& e : page[items_key]) all.push_back(std::move(e));
    }
    const json next = page.value("next_cursor", json(0));
    const uint64_t n = next.is_number_unsigned() ? next.get<uint64_t>() : 0;
    if (n == 0 || n == cursor) break;
    cursor = n;
  }
  return all;
}

std::string metrics_text(const json& m) {
  if (!m.is_object()) return "";
  std::string out;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!out.empty()) out += " ";
    out += it.key() + "=" + scalar(it.value());
  }
  return out;
}

// --- status ---

const std::string kStatusUsage =
    std::string("kaizenctl status [--json]   model, active adapter, queue, training state\n") +
    kCommonUsage;

int status_command(const std::vector<std::string>& args) {
  return run_online("status", kStatusUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse(a);
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

// --- adapters ---

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

int adapters_command(const std::vector<std::string>& args) {
  return run_online("adapters", kAdaptersUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse(a);
    if (f.positional().empty())
      throw FlagError("give a subcommand: list, show, rollback, pin, unpin");
    const std::string sub = f.positional()[0];
    const std::string what = "adapters " + sub;
    DaemonClient client = client_from_flags(f);
    if (sub == "list") {
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
    if (sub == "show" || sub == "pin" || sub == "unpin") {
      want_positional(f, 2, 2);
      json j =
          call_admin(client, "adapters/" + sub, {{"version", f.positional()[1]}}, what, f.json());
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
    if (sub == "rollback") {
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
    throw FlagError("unknown subcommand '" + sub + "'");
  });
}

// --- review ---

const std::string kReviewUsage =
    std::string(
        "kaizenctl review list          examples waiting for review (from feedback and "
        "corrections)\n"
        "kaizenctl review approve ID    approve: the example joins the training set\n"
        "kaizenctl review reject ID     reject: it is never trained on\n") +
    kCommonUsage;

std::string last_of_role(const json& messages, const std::string& role) {
  std::string out;
  if (!messages.is_array()) return out;
  for (const auto& m : messages) {
    if (m.value("role", "") == role) out = m.value("content", "");
  }
  return out;
}

int review_command(const std::vector<std::string>& args) {
  return run_online("review", kReviewUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse(a);
    if (f.positional().empty()) throw FlagError("give a subcommand: list, approve, reject");
    const std::string sub = f.positional()[0];
    const std::string what = "review " + sub;
    DaemonClient client = client_from_flags(f);
    if (sub == "list") {
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
    if (sub == "approve" || sub == "reject") {
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
    throw FlagError("unknown subcommand '" + sub + "'");
  });
}

// --- knowledge ---

const std::string kKnowledgeUsage =
    std::string(
        "kaizenctl knowledge import FILE.jsonl\n"
        "  Sends OpenAI chat JSONL ({\"messages\":[...]} per line) to kaizend as approved "
        "knowledge.\n"
        "  Idempotent: lines already imported count as duplicates. Bad lines are listed with\n"
        "  their line numbers; the good ones are stored anyway (exit 1 when any line was bad).\n") +
    kCommonUsage;

int knowledge_command(const std::vector<std::string>& args) {
  return run_online(
      "knowledge", kKnowledgeUsage, args, [](const std::vector<std::string>& a) -> int {
        Flags f = parse(a);
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
        const json errors = j.value("errors", json::array());
        if (f.json()) {
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
      });
}

// --- feedback ---

const std::string kFeedbackUsage =
    std::string(
        "kaizenctl feedback export [--out FILE.jsonl]\n"
        "  Approved examples (knowledge, rated answers, corrections) as OpenAI chat JSONL,\n"
        "  one {\"messages\":[...]} per line, to FILE or stdout. --json adds each example's\n"
        "  id, source and provenance to its line.\n") +
    kCommonUsage;

int feedback_command(const std::vector<std::string>& args) {
  return run_online("feedback", kFeedbackUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse(a, {"out"});
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

// --- runs ---

const std::string kRunsUsage =
    std::string(
        "kaizenctl runs list      training runs, newest first: state, adapter, verdict\n"
        "kaizenctl runs show ID   one run: examples, loss curve, gate metrics, phase times\n") +
    kCommonUsage;

void print_runs_table(const json& runs) {
  Table t({"RUN", "STATE", "TRIGGER", "EXAMPLES", "ADAPTER", "STARTED", "SECONDS", "VERDICT"});
  for (const auto& r : runs) {
    const int64_t started = r.value("started_ms", int64_t{0}),
                  finished = r.value("finished_ms", int64_t{0});
    t.add({scalar(r.value("id", json())), scalar(r.value("state", json())),
           scalar(r.value("trigger", json())),
           std::to_string(r.value("example_ids", json::array()).size()),
           r.value("adapter_version", int64_t{0}) ? version_name(r["adapter_version"]) : "-",
           when(r.value("started_ms", json(0))),
           finished > 0 && started > 0 ? std::to_string((finished - started) / 1000) : "-",
           clip(r.value("verdict", ""), 50)});
  }
  t.print();
}

int runs_command(const std::vector<std::string>& args) {
  return run_online("runs", kRunsUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse(a);
    if (f.positional().empty()) throw FlagError("give a subcommand: list, show ID");
    const std::string sub = f.positional()[0];
    DaemonClient client = client_from_flags(f);
    if (sub == "show") {
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
    if (sub != "list") throw FlagError("unknown subcommand '" + sub + "'");
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
  });
}

const std::string kTrainUsage =
    std::string(
        "kaizenctl train now [--all-approved]\n"
        "                         start a training run on the approved examples not trained on\n"
        "                         yet (--all-approved: on every approved example)\n"
        "kaizenctl train status   the running or last run\n"
        "kaizenctl train cancel   stop the running run (nothing is published)\n") +
    kCommonUsage;

const std::string kDbBackupUsage =
    std::string(
        "kaizenctl db backup [--dir D]   ask the running kaizend for an online backup into D\n"
        "  (default: STATE_DIR/backups). D is a path on the daemon's machine; relative paths are\n"
        "  made absolute here. With --state-dir, `db backup` is the offline backup instead.\n") +
    kCommonUsage;

}  // namespace

int online_train(const std::vector<std::string>& args) {
  return run_online("train", kTrainUsage, args, [](const std::vector<std::string>& a) -> int {
    Flags f = parse(a, {}, {"all-approved"});
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
    return kExitOk;
  });
}

int online_db_backup(const std::vector<std::string>& args) {
  return run_online(
      "db backup", kDbBackupUsage, args, [](const std::vector<std::string>& a) -> int {
        Flags f = parse(a, {"dir"});
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

KAIZEN_CTL_COMMAND("status", "kaizend status: model, active adapter, queue (online)",
                   status_command);
KAIZEN_CTL_COMMAND("adapters", "list | show | rollback | pin | unpin published adapters (online)",
                   adapters_command);
KAIZEN_CTL_COMMAND("review", "list | approve | reject examples waiting for review (online)",
                   review_command);
KAIZEN_CTL_COMMAND("knowledge", "import FILE.jsonl: add knowledge through kaizend (online)",
                   knowledge_command);
KAIZEN_CTL_COMMAND("feedback", "export: approved examples as OpenAI chat JSONL (online)",
                   feedback_command);
KAIZEN_CTL_COMMAND("runs", "list | show ID: training runs (online)", runs_command);

}  // namespace kaizen::ctl
