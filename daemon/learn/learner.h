// The learner: kaizend's continual-learning thread (DESIGN.md "Continual learning loop",
// decisions 2, 5, 6 and 7).
//
// A run: the approved examples not yet consumed by a finished run (+ a replay sample of
// earlier examples from the store's reservoir, train.replay_ratio per new example, part
// of it held out to measure retention) -> LoRA training warm-started from the active
// adapter on the shared, frozen base model -> the gate (learning/eval/gate.h) against
// the active adapter -> pass: the adapter is written to adapters/.tmp-*, fsync'd,
// renamed to adapters/vNNNNNN, the directory fsync'd, then one synced RocksDB batch
// makes it active (Store::publish_adapter), then the registry swaps it in (RCU: chats
// in flight finish on the adapter they began with) and the engine drops the old
// version's prefix KV; the examples are marked trained (and enter the reservoir).
// Fail: the run and the candidate's record are rejected with every number; nothing
// changes for users. Every run is a Store Run record (trigger, dataset ids, config,
// loss curve, metrics, phase times, verdict).
//
// Triggers: train.min_new_examples new approved examples, train.interval_s (when any is
// new), or start_run() (kaizenctl train now). One run at a time. "New" means approved
// after the newest state_seq a published or rejected run consumed, so a rejected batch
// is not retried on its own; an interrupted, failed or cancelled run leaves its
// examples new (nothing is lost).
//
// Serving goes first: between optimizer steps the learner waits while the engine has
// chats (up to train.max_yield_ms per step, so training still progresses under
// constant load).
//
// Restart: at construction, half-written adapters/.tmp-* directories and adapter
// directories no record names are removed; a run the Store marked interrupted whose
// adapter did reach the DB is completed (its examples marked trained), so no example
// is trained twice as if new.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/adapter_registry.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "learning/eval/gate.h"
#include "learning/generate/chat_model.h"
#include "storage/store.h"

namespace kaizen::daemon {

struct LearnerOptions {
  std::string state_dir;      // adapters/ lives here
  std::string system_prompt;  // prepended to examples without one (train.with_system_prompt)
  TrainConfig train;
  GateConfig gate;
  std::vector<std::string> canary_prompts;  // empty = eval::default_canary_prompts()
};

// The gate's thresholds for this model: the config's values, with gate.canary_max_kl = 0
// meaning the model's default (eval::GateThresholds::for_model).
eval::GateThresholds gate_thresholds(const GateConfig& gate, const model::ModelConfig& model);

class Learner {
 public:
  // Cleans the adapters directory and recovers interrupted runs (see above); starts the
  // thread when options.train.enabled. The references must outlive the Learner.
  Learner(LearnerOptions options, storage::Store& store, AdapterRegistry& registry, Engine& engine,
          std::shared_ptr<const generate::ChatModel> model);
  // Cancels a run in progress (it ends as failed: "stopped: shutting down") and joins.
  ~Learner();
  Learner(const Learner&) = delete;
  Learner& operator=(const Learner&) = delete;

  struct StartError {
    int http_status;  // 409 a run is in progress, 400 nothing to train, 503 disabled, 500 store
    std::string message;
  };
  // Starts a run now (trigger "manual"). all_approved: train on every approved example,
  // also those a rejected run consumed. Returns the run id, or why not.
  std::variant<uint64_t, StartError> start_run(bool all_approved = false);
  // Asks the run in progress to stop after its current optimizer step. false when idle.
  bool cancel();

  bool running() const { return running_.load(); }
  // {"state": "idle"|"running", "run": {id, phase, step, total_steps, loss, elapsed_s,
  //  ...} (while running), "last": {...} (the last finished run: id, state, verdict)}
  nlohmann::json status() const;
  // Prometheus lines: kaizen_training_running, kaizen_training_step, runs by state,
  // the last run's state.
  std::string metrics_text() const;

 private:
  struct Plan {
    uint64_t run_id = 0;
    std::string trigger;
    std::vector<storage::Example> examples;
    uint64_t through_seq = 0;
    std::string deferred_author;  // train.max_per_author stopped the plan at this author
  };
  struct Progress {
    uint64_t run_id = 0;
    std::string phase;  // dataset | train | validate | publish
    int64_t step = 0, total_steps = 0;
    double loss = 0;
    int64_t started_ms = 0;
  };

  void loop();
  // Builds the plan and creates the run record; caller holds mu_ and checked !running_.
  std::variant<Plan, StartError> plan_locked(const std::string& trigger, uint64_t from_seq);
  void execute(Plan plan);
  uint64_t consumed_seq();  // newest state_seq a published or rejected run consumed
  size_t count_new(uint64_t from_seq, size_t enough);
  void clean_adapters_dir();
  void recover_interrupted_runs();
  void prune_versions();
  // Writes .tmp-*, fsyncs, renames to adapters/vNNNNNN, fsyncs the directory. Returns the
  // state-dir-relative path. Throws std::runtime_error naming the failing step.
  std::string write_adapter(const adapter::Adapter& adapter, uint64_t version);
  void set_phase(const std::string& phase);

  LearnerOptions options_;
  storage::Store& store_;
  AdapterRegistry& registry_;
  Engine& engine_;
  std::shared_ptr<const generate::ChatModel> model_;
  // The canary's base answers (eval::canary_reference), made by the first run's
  // validation and reused: the base model and the prompts never change. Learner thread only.
  std::optional<eval::CanaryReference> canary_reference_;

  mutable std::mutex mu_;  // guards pending_, progress_, last_, stopping_, counters below
  std::condition_variable cv_;
  std::optional<Plan> pending_;  // a run start_run() planned, for the thread to execute
  bool stopping_ = false;
  Progress progress_;
  nlohmann::json last_ = nullptr;
  std::map<std::string, uint64_t> runs_by_state_;
  std::atomic<bool> running_{false};
  std::atomic<bool> cancel_{false};
  // After a run failed or was cancelled, automatic triggers count new examples from here
  // (the failed run's through_state_seq), so they do not restart the same run every
  // second; its examples stay new for the next run (`train now`, or once more arrive).
  uint64_t auto_hold_seq_ = 0;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kaizen::daemon
