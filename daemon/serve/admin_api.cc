#include "daemon/serve/admin_api.h"

#include <filesystem>
#include <sstream>

#include <spdlog/spdlog.h>

#include "daemon/log.h"
#include "daemon/serve/params.h"
#include "storage/import.h"

namespace kaizen::daemon {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Unwraps a parsed argument or returns its Failure from the enclosing handler.
#define KAIZEN_TRY(var, expr)          \
  auto var##_parsed = (expr);          \
  if (!var##_parsed.ok()) return var##_parsed.error(); \
  auto var = std::move(*var##_parsed)

template <class T>
json items_json(const std::vector<T>& items) {
  json out = json::array();
  for (const auto& x : items) out.push_back(storage::to_json(x));
  return out;
}

}  // namespace

const std::vector<AdminApi::Route>& AdminApi::routes() {
  static const std::vector<Route> table = {
      {"GET", "status", &AdminApi::status},
      {"GET", "adapters", &AdminApi::adapters},
      {"GET", "adapters/show", &AdminApi::adapter_show},
      {"POST", "adapters/pin", &AdminApi::adapter_pin},
      {"POST", "adapters/unpin", &AdminApi::adapter_unpin},
      {"POST", "adapters/rollback", &AdminApi::rollback},
      {"GET", "review", &AdminApi::review},
      {"POST", "review/approve", &AdminApi::review_approve},
      {"POST", "review/reject", &AdminApi::review_reject},
      {"POST", "knowledge/import", &AdminApi::knowledge_import},
      {"GET", "feedback/export", &AdminApi::feedback_export},
      {"POST", "db/backup", &AdminApi::db_backup},
      {"POST", "train/now", &AdminApi::train_now},
      {"GET", "train/status", &AdminApi::train_status},
      {"POST", "train/cancel", &AdminApi::train_cancel},
      {"GET", "runs", &AdminApi::runs},
      {"GET", "runs/show", &AdminApi::run_show},
  };
  return table;
}

Result<json> AdminApi::call(const std::string& method, const std::string& op, const json& args,
                            const PeerInfo& peer) {
  for (const Route& r : routes()) {
    if (op != r.path) continue;
    if (method != "POST" && std::string(r.method) == "POST") {
      Error e = Error::InvalidRequest("/admin/" + op + " changes state: use POST", {}, "method_not_allowed");
      e.http_status = 405;
      return e;
    }
    try {
      Outcome<json> out = (this->*r.handler)(args, peer);
      if (!out.ok()) return http_error(out.error());
      return std::move(*out);
    } catch (const std::exception& e) {  // a JSON argument of the wrong type
      return Error::InvalidRequest(std::string("bad arguments for ") + op + ": " + e.what());
    }
  }
  return Error::NotFound("unknown admin operation '" + op + "'", "unknown_op");
}

// --- state ---

Outcome<json> AdminApi::status(const json&, const PeerInfo&) {
  EngineStats s = c_.engine.stats();
  json j = {{"model", c_.model.dir},
            {"architecture", c_.model.decoder->config().architecture},
            {"device", c_.model.decoder->options().device.str()},
            {"dtype", model::dtype_name(c_.model.decoder->options().dtype)},
            {"active_adapter", c_.registry.active().version},
            {"queue_depth", c_.engine.waiting()},
            {"active_chats", c_.engine.active()},
            {"completed_chats", s.jobs_done},
            {"uptime_s", (storage::now_ms() - c_.started_ms) / 1000},
            {"state_dir", c_.config.state_dir},
            {"training", c_.learner.running() ? "running" : "idle"}};
  if (!c_.registry.load_problem().empty()) j["adapter_problem"] = c_.registry.load_problem();
  auto replay = c_.store.replay_stats();
  j["replay"] = {{"size", replay.size}, {"seen", replay.seen}, {"capacity", replay.capacity}};
  const storage::Status writes = c_.store.write_health();
  j["storage"] = {{"writable", writes.ok()}, {"failed_writes", c_.store.failed_writes()}};
  if (!writes.ok()) j["storage"]["error"] = writes.ToString();
  return j;
}

// --- adapters ---

Outcome<json> AdminApi::adapters(const json& args, const PeerInfo&) {
  KAIZEN_TRY(page, parse_page(args));
  auto got = c_.store.list_adapters(page);
  if (!got.ok()) return failure_from(got.status());
  return json{{"active", c_.registry.active().version}, {"adapters", items_json(got->items)},
              {"next_cursor", got->next_cursor}};
}

Outcome<json> AdminApi::adapter_show(const json& args, const PeerInfo&) {
  KAIZEN_TRY(version, parse_version(args.value("version", json()), "version"));
  auto a = c_.store.get_adapter(version);
  if (!a.ok()) return failure_from(a.status());
  return storage::to_json(*a);
}

Outcome<json> AdminApi::set_pinned(const json& args, bool pinned) {
  KAIZEN_TRY(version, parse_version(args.value("version", json()), "version"));
  auto a = c_.lifecycle.pin(version, pinned);
  if (!a.ok()) return a.error();
  return storage::to_json(*a);
}

Outcome<json> AdminApi::adapter_pin(const json& args, const PeerInfo&) { return set_pinned(args, true); }
Outcome<json> AdminApi::adapter_unpin(const json& args, const PeerInfo&) { return set_pinned(args, false); }

Outcome<json> AdminApi::rollback(const json& args, const PeerInfo& peer) {
  // To VERSION, to "base" (no adapter), or by default to the newest published version
  // older than the active one.
  std::optional<uint64_t> to;
  if (args.contains("version")) {
    const json& want = args["version"];
    if (want.is_string() && want.get<std::string>() == "base") {
      to = 0;
    } else {
      auto v = parse_version(want, "version");
      if (!v.ok()) return Failure::Invalid("give a version (e.g. \"v3\") or \"base\"", "version");
      to = *v;
    }
  }
  auto sw = c_.lifecycle.rollback(to);
  if (!sw.ok()) return sw.error();
  logger()->info("event=rollback from={} to={} uid={}", adapter_key(sw->previous), adapter_key(sw->active), peer.uid);
  return json{{"active", sw->active}, {"previous", sw->previous}};
}

// --- examples ---

Outcome<json> AdminApi::review(const json& args, const PeerInfo&) {
  KAIZEN_TRY(page, parse_page(args));
  auto got = c_.store.list_pending_review(page);
  if (!got.ok()) return failure_from(got.status());
  return json{{"pending", items_json(got->items)}, {"next_cursor", got->next_cursor}};
}

Outcome<json> AdminApi::review_decision(const json& args, const PeerInfo& peer, bool approve) {
  KAIZEN_TRY(id, parse_id(args.value("id", json()), "id"));
  auto st = c_.store.review_example(id, approve, "uid:" + std::to_string(peer.uid));
  if (!st.ok()) return failure_from(st);
  return json{{"id", id}, {"state", approve ? "approved" : "rejected"}};
}

Outcome<json> AdminApi::review_approve(const json& args, const PeerInfo& peer) {
  return review_decision(args, peer, true);
}
Outcome<json> AdminApi::review_reject(const json& args, const PeerInfo& peer) {
  return review_decision(args, peer, false);
}

Outcome<json> AdminApi::knowledge_import(const json& args, const PeerInfo&) {
  storage::ImportReport report;
  storage::Status st;
  if (args.contains("jsonl")) {
    std::istringstream in(args.at("jsonl").get<std::string>());
    st = storage::import_chat_jsonl(c_.store, in, args.value("name", std::string("upload.jsonl")), &report);
  } else if (args.contains("path")) {
    st = storage::import_chat_jsonl_file(c_.store, args.at("path").get<std::string>(), &report);
  } else {
    return Failure::Invalid("give \"path\" (a file kaizend can read) or \"jsonl\" (the contents)");
  }
  if (!st.ok()) return failure_from(st);
  json errors = json::array();
  for (const auto& e : report.errors) errors.push_back({{"line", e.line}, {"reason", e.reason}});
  return json{{"lines", report.lines}, {"imported", report.imported}, {"duplicates", report.duplicates},
              {"errors", errors}};
}

Outcome<json> AdminApi::feedback_export(const json& args, const PeerInfo&) {
  KAIZEN_TRY(page, parse_page(args));
  auto got = c_.store.list_examples(storage::ExampleState::kApproved, page);
  if (!got.ok()) return failure_from(got.status());
  json examples = items_json(got->items);
  // Each with its fine-tuning JSONL line, written here so the tools keep their key order
  // (this JSON reply sorts object keys).
  for (size_t i = 0; i < got->items.size(); ++i) examples[i]["line"] = storage::to_chat_record(got->items[i]);
  return json{{"examples", examples}, {"next_cursor", got->next_cursor}};
}

Outcome<json> AdminApi::db_backup(const json& args, const PeerInfo&) {
  const std::string dir = args.value("dir", (fs::path(c_.config.state_dir) / "backups").string());
  storage::BackupDescription d;
  auto st = c_.store.backup(dir, &d);
  if (!st.ok()) return failure_from(st);
  return json{{"dir", dir}, {"id", d.id}, {"size_bytes", d.size_bytes}, {"files", d.files}};
}

// --- training ---

Outcome<json> AdminApi::train_now(const json& args, const PeerInfo& peer) {
  KAIZEN_TRY(all, parse_flag(args, "all_approved", false));
  auto started = c_.learner.start_run(all);
  if (!started.ok()) return started.error();
  logger()->info("event=train_now run={} uid={}", *started, peer.uid);
  return json{{"run_id", *started}, {"state", "running"}};
}

Outcome<json> AdminApi::train_status(const json&, const PeerInfo&) {
  json j = c_.learner.status();
  storage::PageRequest p;
  p.limit = 5;
  auto recent = c_.store.list_runs(p);
  if (recent.ok()) j["recent_runs"] = items_json(recent->items);
  return j;
}

Outcome<json> AdminApi::train_cancel(const json&, const PeerInfo& peer) {
  const bool cancelled = c_.learner.cancel();
  logger()->info("event=train_cancel cancelled={} uid={}", cancelled, peer.uid);
  return json{{"cancelled", cancelled}};
}

Outcome<json> AdminApi::runs(const json& args, const PeerInfo&) {
  KAIZEN_TRY(page, parse_page(args));
  auto got = c_.store.list_runs(page);
  if (!got.ok()) return failure_from(got.status());
  return json{{"runs", items_json(got->items)}, {"next_cursor", got->next_cursor}};
}

Outcome<json> AdminApi::run_show(const json& args, const PeerInfo&) {
  KAIZEN_TRY(id, parse_id(args.value("id", json()), "id"));
  auto r = c_.store.get_run(id);
  if (!r.ok()) return failure_from(r.status());
  return storage::to_json(*r);
}

#undef KAIZEN_TRY

}  // namespace kaizen::daemon
