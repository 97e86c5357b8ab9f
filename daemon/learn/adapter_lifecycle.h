// An adapter version's life after training (docs/DESIGN.md §Adapter lifecycle, with the
// state diagram): publish or reject -> activate / rollback -> pin -> prune, and recover()
// at start. One component owns every step that changes which adapter serves:
//
//  - the on-disk publish protocol (decision 5): adapters/.tmp-vNNNNNN-<pid> written and
//    fsync'd, renamed to adapters/vNNNNNN, the directory fsync'd;
//  - the store's one synced batch (Store::publish_adapter / set_active_adapter);
//  - the RCU swap in the registry (chats in flight finish on the adapter they began with);
//  - the cache-invalidation hook (the engine drops the old version's prefix and
//    conversation KV; the base model's stay, `model: base` still uses them).
//
// Crash points, and what recover() does about each (the previous active adapter is
// intact in every case):
//   1. during .tmp-* writing             -> the .tmp-* directory is removed
//   2. renamed, no record yet            -> the unrecorded vNNNNNN directory is removed
//   3. after the publish batch, before the examples are marked trained
//                                        -> the run is completed (examples marked trained)
//   4. after mark_trained                -> nothing to do
//
// The learner trains and judges; it hands a candidate over and reads back a version or a
// Failure (daemon/errors.h). KaizenService calls activate/rollback/pin for the operator.
//
// Thread-safety: every method may be called from any thread; changes of the active
// version (publish, activate, rollback) are serialised by one mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/errors.h"
#include "daemon/serve/adapter_registry.h"
#include "daemon/serve/store_failure.h"
#include "learning/adapter/adapter.h"
#include "storage/store.h"

namespace kaizen::daemon {

struct LifecycleOptions {
  std::string state_dir;         // adapters/ lives here
  int64_t keep_versions = 5;     // unpinned inactive versions kept on disk (train.keep_versions)
  int64_t publish_pause_ms = 0;  // test hook: pause between the files and the batch, ms
};

// What training produced, handed to publish() or reject().
struct Candidate {
  std::shared_ptr<const adapter::Adapter> adapter;
  uint64_t parent = 0;  // the version it was warm-started from; 0 = a fresh LoRA
  uint64_t run_id = 0;
  std::map<std::string, double> metrics;  // the gate's numbers, kept on the record
  std::vector<uint64_t> example_ids;      // marked trained once the version is active
};

// Which version serves after activate()/rollback(), and which served before.
struct Switch {
  uint64_t active = 0;    // 0 = the base model
  uint64_t previous = 0;
};

class AdapterLifecycle {
 public:
  // Called with the adapter_key() of a version that stopped serving as `kaizen`.
  using DropCaches = std::function<void(const std::string& adapter_key)>;

  // The references must outlive the lifecycle.
  AdapterLifecycle(LifecycleOptions options, storage::Store& store, AdapterRegistry& registry,
                   DropCaches drop_caches);

  // At start, before anything serves a new version: completes runs interrupted after
  // their publish batch (crash point 3) and removes .tmp-* and unrecorded directories
  // (crash points 1 and 2).
  void recover();

  // Reserves the next version number (durable: never handed out twice). The learner
  // records it on the run before publishing, so recover() can complete the run.
  Outcome<uint64_t> allocate_version();

  // Writes the candidate as `version`, records it active in one synced batch, swaps it
  // in, drops the previous version's caches, marks the examples trained and prunes.
  // A Failure leaves the previous version serving (the record may say otherwise only if
  // the batch landed and the files then failed to load back: the message says which).
  Outcome<Switch> publish(uint64_t version, const Candidate& candidate);

  // Writes the candidate's files as `version` and records it rejected: never served
  // unless an operator pins it. Prunes.
  Outcome<uint64_t> reject(uint64_t version, const Candidate& candidate);

  // Makes `version` (0 = the base model) the one `kaizen` answers with. Conflict when
  // the record's state forbids it (rejected, even pinned: pinning serves it only as
  // `kaizen@vN`; pruned: its files are gone). The files load before the DB changes, so
  // a broken version changes nothing.
  Outcome<Switch> activate(uint64_t version);

  // To `to` (0 = the base model), or without it to the newest published version older
  // than the active one (the base model when there is none). NotFound when the base
  // model is already serving and no target is given.
  Outcome<Switch> rollback(std::optional<uint64_t> to);

  // Pinned versions are never pruned; a pinned rejected version can be served.
  Outcome<storage::Adapter> pin(uint64_t version, bool pinned);

  // Removes the files of unpinned inactive versions beyond keep_versions; their records
  // stay (state pruned: history keeps its run and metrics).
  void prune();

  // Publishes whose examples could not be marked trained (the disk filled right after
  // the publish batch) are kept and retried here, so the examples are not trained again
  // as new. Returns true when none is left waiting. The learner calls it every tick and
  // before planning a run.
  bool complete_pending_marks();

 private:
  // The publish protocol's file half; returns the state-dir-relative path.
  Outcome<std::string> write_files(const adapter::Adapter& adapter, uint64_t version);
  // write_files(), then the record for them in `state` (not stored yet).
  Outcome<storage::Adapter> written_record(uint64_t version, const Candidate& candidate,
                                           storage::AdapterState state);
  void recover_interrupted_runs();
  void clean_adapters_dir();
  // Swaps `version` in and drops the caches of the one it replaces; mu_ held.
  Switch swap_locked(uint64_t version, std::shared_ptr<const adapter::Adapter> adapter);

  LifecycleOptions options_;
  storage::Store& store_;
  AdapterRegistry& registry_;
  DropCaches drop_caches_;
  std::mutex mu_;  // serialises changes of the active version (publish, activate, rollback)
  struct PendingMark {
    std::vector<uint64_t> example_ids;
    uint64_t version = 0;
  };
  std::mutex pending_mu_;
  std::vector<PendingMark> pending_marks_;  // guarded by pending_mu_
};

}  // namespace kaizen::daemon
