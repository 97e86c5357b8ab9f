// The operator API behind /admin/* (Unix socket only; docs/DESIGN.md §APIs): a table of
// (method, path, handler). GET routes read and also accept POST (kaizenctl sends every
// call as POST with a JSON body); POST routes change state and refuse GET. Arguments are
// parsed by type (serve/params.h); handlers return Outcome, and the one mapping of a
// Failure to HTTP is http_error() (daemon/service.h).
//
// Thread-safety: call() may run on several I/O threads at once; each handler does short
// Store work or hands off (the learner starts runs on its own thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/errors.h"
#include "daemon/learn/adapter_lifecycle.h"
#include "daemon/learn/learner.h"
#include "daemon/serve/adapter_registry.h"
#include "daemon/serve/engine.h"
#include "daemon/service.h"
#include "learning/generate/chat_model.h"
#include "storage/store.h"

namespace kaizen::daemon {

// What the handlers read and act on; everything outlives the AdminApi.
struct AdminContext {
  const Config& config;
  const generate::ChatModel& model;
  storage::Store& store;
  const AdapterRegistry& registry;
  AdapterLifecycle& lifecycle;
  Learner& learner;
  const Engine& engine;
  int64_t started_ms = 0;
};

class AdminApi {
 public:
  using Handler = Outcome<nlohmann::json> (AdminApi::*)(const nlohmann::json& args, const PeerInfo& peer);
  struct Route {
    const char* method;  // "GET" (also POST) or "POST"
    const char* path;    // after /admin/, e.g. "adapters/rollback"
    Handler handler;
  };
  // Every operation, in the order `kaizenctl --help` groups them.
  static const std::vector<Route>& routes();

  explicit AdminApi(AdminContext context) : c_(context) {}

  // Runs /admin/<op>. Unknown op -> 404 (code "unknown_op"); GET on a POST route -> 405.
  Result<nlohmann::json> call(const std::string& method, const std::string& op, const nlohmann::json& args,
                              const PeerInfo& peer);

 private:
  Outcome<nlohmann::json> status(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> adapters(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> adapter_show(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> adapter_pin(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> adapter_unpin(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> rollback(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> review(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> review_approve(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> review_reject(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> knowledge_import(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> feedback_export(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> db_backup(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> train_now(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> train_status(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> train_cancel(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> runs(const nlohmann::json& args, const PeerInfo& peer);
  Outcome<nlohmann::json> run_show(const nlohmann::json& args, const PeerInfo& peer);

  Outcome<nlohmann::json> review_decision(const nlohmann::json& args, const PeerInfo& peer, bool approve);
  Outcome<nlohmann::json> set_pinned(const nlohmann::json& args, bool pinned);

  AdminContext c_;
};

}  // namespace kaizen::daemon
