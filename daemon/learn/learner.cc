#include "daemon/learn/learner.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "daemon/learn/run_record.h"
#include "daemon/learn/learner_log.h"

namespace kaizen::daemon {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

eval::GateThresholds gate_thresholds(const GateConfig& g, const model::ModelConfig& model) {
  eval::GateThresholds t = eval::GateThresholds::for_model(model);
  t.learn_min = g.learn_min;
  t.learn_exact_min = g.learn_exact_min;
  t.retain_max_drop = g.retain_max_drop;
  if (g.canary_max_kl > 0) t.canary_max_kl = g.canary_max_kl;
  if (g.canary_max_leak > 0) t.canary_max_leak = g.canary_max_leak;
  t.paraphrase_min = g.paraphrase_min;
  return t;
}

Learner::Learner(LearnerOptions options, storage::Store& store, AdapterLifecycle& lifecycle,
                 const AdapterRegistry& registry, Engine& engine, std::shared_ptr<const generate::ChatModel> model)
    : options_(std::move(options)),
      store_(store),
      lifecycle_(lifecycle),
      registry_(registry),
      engine_(engine),
      model_(std::move(model)) {
  if (options_.canary_prompts.empty()) options_.canary_prompts = eval::default_canary_prompts();
  storage::PageRequest p;
  p.limit = 1;
  auto runs = store_.list_runs(p);
  if (runs.ok() && !runs->items.empty()) last_ = run_summary(runs->items.front());
  if (options_.train.enabled) thread_ = std::thread([this] { loop(); });
}

Learner::~Learner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cancel_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// --- triggers ---

uint64_t Learner::consumed_seq() {
  storage::PageRequest p;
  p.limit = 100;
  auto runs = store_.list_runs(p);
  if (!runs.ok()) return 0;
  for (const auto& r : runs->items) {
    if (r.state == storage::RunState::kPublished || r.state == storage::RunState::kRejected) {
      return r.config.value("through_state_seq", uint64_t{0});
    }
  }
  return 0;
}

size_t Learner::count_new(uint64_t from_seq, size_t enough) {
  size_t n = 0;
  storage::PageRequest p;
  p.cursor = from_seq;
  p.limit = 1000;
  while (n < enough) {
    auto page = store_.list_examples(storage::ExampleState::kApproved, p);
    if (!page.ok()) return n;
    n += page->items.size();
    if (page->next_cursor == 0) break;
    p.cursor = page->next_cursor;
  }
  return n;
}

Outcome<Learner::Plan> Learner::plan_locked(const std::string& trigger, uint64_t from_seq) {
  if (!complete_pending_locked()) {
    // The last run's examples must be marked trained before they can be told from new ones.
    const storage::Status w = store_.write_health();
    if (!w.ok()) return failure_from(w);
    return Failure::Unavailable("the last run's results are not stored yet; retry shortly");
  }
  Plan plan;
  plan.trigger = trigger;
  storage::PageRequest p;
  p.cursor = from_seq;
  p.limit = 1000;
  // train.max_per_author: in approval order, stop at the first example over its author's
  // share; it and everything approved after it wait for the next run (the consumed
  // cursor is a state_seq, so nothing is skipped for good).
  std::map<std::string, int64_t> per_author;
  const int64_t cap = options_.train.max_per_author;
  bool capped = false;
  while (!capped) {
    auto page = store_.list_examples(storage::ExampleState::kApproved, p);
    if (!page.ok()) return failure_from(page.status());
    for (auto& e : page->items) {
      if (cap > 0 && !e.author.empty() && ++per_author[e.author] > cap) {
        plan.deferred_author = e.author;
        capped = true;
        break;
      }
      plan.through_seq = std::max(plan.through_seq, e.state_seq);
      plan.examples.push_back(std::move(e));
    }
    if (page->next_cursor == 0) break;
    p.cursor = page->next_cursor;
  }
  if (plan.examples.empty()) return Failure::NothingToDo("no new approved examples to train on");
  storage::Run run;
  run.trigger = trigger;
  for (const auto& e : plan.examples) run.example_ids.push_back(e.id);
  run.config = run_config(options_.train, gate_thresholds(options_.gate, model_->decoder->config()), from_seq,
                          plan.through_seq, plan.deferred_author);
  auto created = store_.create_run(run);
  if (!created.ok()) return failure_from(created.status());
  plan.run_id = created->id;
  return plan;
}

void Learner::begin_locked(Plan plan) {
  progress_ = Progress{plan.run_id, "dataset", 0, 0, 0, storage::now_ms()};
  pending_ = std::move(plan);
  running_.store(true);
  cancel_.store(false);
}

Outcome<uint64_t> Learner::start_run(bool all_approved) {
  if (!options_.train.enabled) return Failure::Unavailable("training is disabled (train.enabled = false)");
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.load() || pending_) {
    return Failure::Conflict("a training run is already in progress (run " + std::to_string(progress_.run_id) + ")");
  }
  auto plan = plan_locked("manual", all_approved ? 0 : consumed_seq());
  if (!plan.ok()) return plan.error();
  const uint64_t id = plan->run_id;
  begin_locked(std::move(*plan));
  cv_.notify_all();
  return id;
}

bool Learner::cancel() {
  if (!running_.load()) return false;
  cancel_.store(true);
  return true;
}

std::string Learner::due_trigger_locked(Clock::time_point* last_interval) {
  ++trigger_checks_;
  const auto& t = options_.train;
  const uint64_t fresh_from = std::max(consumed_seq(), auto_hold_seq_);
  if (t.min_new_examples > 0 &&
      count_new(fresh_from, static_cast<size_t>(t.min_new_examples)) >= static_cast<size_t>(t.min_new_examples)) {
    return "min_new_examples";
  }
  if (t.interval_s > 0 && seconds_since(*last_interval) >= static_cast<double>(t.interval_s)) {
    *last_interval = Clock::now();
    if (count_new(fresh_from, 1) > 0) return "interval";
  }
  return "";
}

void Learner::loop() {
  auto last_interval = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || pending_.has_value(); });
    if (stopping_) break;
    complete_pending_locked();
    if (!pending_) {  // automatic triggers
      const std::string trigger = due_trigger_locked(&last_interval);
      if (trigger.empty()) continue;
      auto plan = plan_locked(trigger, consumed_seq());
      if (!plan.ok()) {
        learner_log()->warn("event=run_not_started trigger={} reason=\"{}\"", trigger, plan.error().message);
        continue;
      }
      begin_locked(std::move(*plan));
    }
    Plan plan = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    execute(std::move(plan));
    lock.lock();
    running_.store(false);
    last_interval = Clock::now();
  }
}

void Learner::set_phase(const std::string& phase) {
  std::lock_guard<std::mutex> lock(mu_);
  progress_.phase = phase;
}

bool Learner::complete_pending_locked() {
  if (!lifecycle_.complete_pending_marks()) return false;
  while (!unsaved_runs_.empty()) {
    const storage::Run& r = unsaved_runs_.front();
    if (!store_.update_run(r).ok()) return false;
    learner_log()->info("event=run_record_saved run={} state={}", r.id,
                        storage::to_string(r.state));
    unsaved_runs_.erase(unsaved_runs_.begin());
  }
  return true;
}

void Learner::finish(storage::Run& run, const Plan& plan, storage::RunState state, const std::string& verdict) {
  run.state = state;
  run.verdict = verdict;
  run.finished_ms = storage::now_ms();
  // A published run is recorded only once its examples are marked trained: until then
  // its record says running (interrupted after a crash), which recover() completes.
  storage::Status st =
      storage::Status::IOError("the published run's examples are not marked trained yet");
  if (lifecycle_.complete_pending_marks()) st = store_.update_run(run);
  if (!st.ok())
    learner_log()->error("event=run_record_failed run={} error=\"{}\" retry=each_tick", run.id,
                         st.ToString());
  learner_log()->info("event=run_finished run={} state={} verdict=\"{}\"", run.id, storage::to_string(state), verdict);
  std::lock_guard<std::mutex> lock(mu_);
  if (!st.ok()) unsaved_runs_.push_back(run);
  last_ = run_summary(run);
  ++runs_by_state_[storage::to_string(state)];
  if (state == storage::RunState::kFailed) auto_hold_seq_ = std::max(auto_hold_seq_, plan.through_seq);
}

// --- status ---

json Learner::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"enabled", options_.train.enabled},
            {"state", running_.load() ? "running" : "idle"},
            {"checks", trigger_checks_},
            {"last", last_}};
  if (running_.load()) {
    j["run"] = {{"id", progress_.run_id},
                {"phase", progress_.phase},
                {"step", progress_.step},
                {"total_steps", progress_.total_steps},
                {"loss", progress_.loss},
                {"elapsed_s", static_cast<double>(storage::now_ms() - progress_.started_ms) / 1000.0}};
  }
  return j;
}

std::string Learner::metrics_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  o << "# HELP kaizen_training_running 1 while a training run is in progress.\n"
    << "# TYPE kaizen_training_running gauge\nkaizen_training_running " << (running_.load() ? 1 : 0) << "\n"
    << "# TYPE kaizen_training_step gauge\nkaizen_training_step " << (running_.load() ? progress_.step : 0) << "\n"
    << "# HELP kaizen_training_runs_total Training runs finished since start, by final state.\n"
    << "# TYPE kaizen_training_runs_total counter\n";
  for (const char* s : {"published", "rejected", "failed"}) {
    auto it = runs_by_state_.find(s);
    o << "kaizen_training_runs_total{state=\"" << s << "\"} " << (it == runs_by_state_.end() ? 0 : it->second)
      << "\n";
  }
  if (last_.is_object()) {
    o << "# HELP kaizen_training_last_run The last finished run (id as value), labelled by its state.\n"
      << "# TYPE kaizen_training_last_run gauge\nkaizen_training_last_run{state=\""
      << last_.value("state", std::string()) << "\"} " << last_.value("id", uint64_t{0}) << "\n";
  }
  return o.str();
}

}  // namespace kaizen::daemon
