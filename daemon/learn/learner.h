// The learner: kaizend's continual-learning thread (docs/DESIGN.md §Continual learning
// loop, decisions 6 and 7). It schedules and runs training + evaluation; what happens to
// the candidate afterwards is the adapter lifecycle's (learn/adapter_lifecycle.h).
//
// A run (learn/training_run.cc): the approved examples not yet consumed by a finished run
// (+ a replay sample of earlier examples from the store's reservoir, train.replay_ratio
// per new example, part of it held out to measure retention) -> LoRA training
// warm-started from the active adapter on the shared, frozen base model -> the gate
// (learning/eval/gate.h) against the active adapter -> pass: AdapterLifecycle::publish
// (files, batch, swap, caches, examples marked trained); fail: AdapterLifecycle::reject
// (the candidate's record is rejected with every number; nothing changes for users).
// Every run is a Store Run record (trigger, dataset ids, config, loss curve, metrics,
// phase times, verdict; learn/run_record.h).
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
// Restart: the lifecycle's recover() (called by whoever builds the learner, before it)
// completes interrupted runs whose adapter reached the DB.
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
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/errors.h"
#include "daemon/learn/adapter_lifecycle.h"
#include "daemon/serve/adapter_registry.h"
#include "daemon/serve/engine.h"
#include "learning/eval/gate.h"
#include "learning/generate/chat_model.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"
#include "storage/store.h"

namespace kaizen::daemon {

struct LearnerOptions {
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
  // Starts the thread when options.train.enabled. The references must outlive the Learner.
  Learner(LearnerOptions options, storage::Store& store, AdapterLifecycle& lifecycle,
          const AdapterRegistry& registry, Engine& engine, std::shared_ptr<const generate::ChatModel> model);
  // Cancels a run in progress (it ends as failed: "stopped: shutting down") and joins.
  ~Learner();
  Learner(const Learner&) = delete;
  Learner& operator=(const Learner&) = delete;

  // Starts a run now (trigger "manual"). all_approved: train on every approved example,
  // also those a rejected run consumed. Returns the run id, or why not: Conflict (a run
  // is in progress), NothingToDo (no new approved examples), Unavailable (training is
  // disabled), Internal (the store).
  Outcome<uint64_t> start_run(bool all_approved = false);
  // Asks the run in progress to stop after its current optimizer step. false when idle.
  bool cancel();

  bool running() const { return running_.load(); }
  // {"state": "idle"|"running", "checks": N (loop passes that looked for a trigger), "run": {id, phase, step, total_steps, loss, elapsed_s,
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

  // The example sets of one run (learn/training_run.cc).
  struct RunSets {
    std::vector<train::Example> fresh, replay, holdout, paraphrased;
    size_t replay_per_epoch = 0;
    bool heldout = false;  // holdout is a held-out sample (false: the rehearsed replay)
  };

  void loop();
  // The trigger due now ("" = none), for the automatic part of loop(); mu_ held.
  std::string due_trigger_locked(std::chrono::steady_clock::time_point* last_interval);
  // Builds the plan and creates the run record; caller holds mu_ and checked !running_.
  Outcome<Plan> plan_locked(const std::string& trigger, uint64_t from_seq);
  void begin_locked(Plan plan);
  uint64_t consumed_seq();  // newest state_seq a published or rejected run consumed
  size_t count_new(uint64_t from_seq, size_t enough);
  void set_phase(const std::string& phase);

  // One run, in phases (learn/training_run.cc). Throw on failure; execute() records it.
  void execute(Plan plan);
  train::TrainOptions train_options(uint64_t run_id, const ActiveAdapter& active) const;
  // The gate's verdict (+ "the active adapter changed during the run"), recorded on the
  // run and each failed check logged.
  eval::GateVerdict judge(const eval::GateMetrics& m, uint64_t active_version, storage::Run& run) const;
  RunSets build_dataset(const Plan& plan, storage::Run& run, const train::TrainOptions& o);
  train::TrainResult train_candidate(const RunSets& sets, storage::Run& run, const train::TrainOptions& o);
  eval::GateMetrics validate(const RunSets& sets, const adapter::Adapter* candidate,
                             const adapter::Adapter* active, const train::TrainOptions& o);
  // Retries what a full disk refused at a run's end: trained marks (lifecycle), then the
  // final run records. false while something still waits; mu_ held.
  bool complete_pending_locked();
  // Records the run's end (state, verdict, finish time) and updates the counters; a
  // record the store refuses is kept and retried by complete_pending_locked().
  void finish(storage::Run& run, const Plan& plan, storage::RunState state, const std::string& verdict);
  // Encodes one stored example for training (with the configured system message when
  // train.with_system_prompt); skips and logs one that cannot be encoded.
  void encode_into(const storage::Example& e, std::vector<train::Example>* out) const;

  LearnerOptions options_;
  storage::Store& store_;
  AdapterLifecycle& lifecycle_;
  const AdapterRegistry& registry_;
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
  // Passes of the loop that looked for a due automatic trigger (status() "checks": a test
  // that asserts a run did NOT start waits for the loop to have looked). Guarded by mu_.
  uint64_t trigger_checks_ = 0;
  // Final run records the store refused (a full disk), oldest first. Guarded by mu_.
  std::vector<storage::Run> unsaved_runs_;
  std::thread thread_;
};

}  // namespace kaizen::daemon
