#include "daemon/learner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "daemon/log.h"
#include "learning/adapter/peft.h"
#include "learning/eval/gate.h"
#include "learning/eval/metrics.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"

namespace kaizen::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::shared_ptr<spdlog::logger> learner_log() {
  static const auto l = layer_logger("learner");
  return l;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string version_dir_name(uint64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "v%06llu", static_cast<unsigned long long>(version));
  return buf;
}

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + p.string() + " to fsync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("fsync of " + p.string() + " failed");
}

json run_summary(const storage::Run& r) {
  return {{"id", r.id},
          {"state", storage::to_string(r.state)},
          {"trigger", r.trigger},
          {"verdict", r.verdict},
          {"gate", r.gate},
          {"adapter_version", r.adapter_version},
          {"examples", r.example_ids.size()},
          {"replay", r.replay_ids.size()},
          {"metrics", r.metrics},
          {"phase_seconds", r.phase_seconds},
          {"started_ms", r.started_ms},
          {"finished_ms", r.finished_ms}};
}

}  // namespace

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

Learner::Learner(LearnerOptions options, storage::Store& store, AdapterRegistry& registry, Engine& engine,
                 std::shared_ptr<const generate::ChatModel> model)
    : options_(std::move(options)), store_(store), registry_(registry), engine_(engine), model_(std::move(model)) {
  if (options_.canary_prompts.empty()) options_.canary_prompts = eval::default_canary_prompts();
  recover_interrupted_runs();
  clean_adapters_dir();
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

// --- restart ---

void Learner::recover_interrupted_runs() {
  // A run interrupted after its publish batch but before mark_trained: complete it, so
  // its examples are not trained again as if new.
  storage::PageRequest p;
  p.limit = 50;
  auto runs = store_.list_runs(p);
  if (!runs.ok()) return;
  for (storage::Run r : runs->items) {
    if (r.state != storage::RunState::kInterrupted || r.adapter_version == 0) continue;
    auto a = store_.get_adapter(r.adapter_version);
    if (!a.ok() || (a->state != storage::AdapterState::kActive && a->state != storage::AdapterState::kRetired &&
                    a->state != storage::AdapterState::kPruned)) {
      continue;
    }
    auto st = store_.mark_trained(r.example_ids, r.adapter_version);
    if (!st.ok()) {
      learner_log()->error("event=recover_run_failed run={} error=\"{}\"", r.id, st.ToString());
      continue;
    }
    r.state = storage::RunState::kPublished;
    r.verdict = "published v" + std::to_string(r.adapter_version) + " (completed after restart)";
    (void)store_.update_run(r);
    learner_log()->info("event=run_recovered run={} version={}", r.id, r.adapter_version);
  }
}

void Learner::clean_adapters_dir() {
  const fs::path dir = fs::path(options_.state_dir) / "adapters";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    bool remove = name.rfind(".tmp-", 0) == 0;
    if (!remove && name.size() == 7 && name[0] == 'v' && name.find_first_not_of("0123456789", 1) == std::string::npos) {
      // Renamed but never recorded: the crash came before the publish batch.
      auto a = store_.get_adapter(std::stoull(name.substr(1)));
      remove = !a.ok() && a.status().IsNotFound();
    }
    if (remove) {
      fs::remove_all(entry.path(), ec);
      learner_log()->info("event=adapter_dir_cleaned path={}", entry.path().string());
    }
  }
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

std::variant<Learner::Plan, Learner::StartError> Learner::plan_locked(const std::string& trigger,
                                                                      uint64_t from_seq) {
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
    if (!page.ok()) return StartError{500, page.status().ToString()};
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
  if (plan.examples.empty()) return StartError{400, "no new approved examples to train on"};
  storage::Run run;
  run.trigger = trigger;
  for (const auto& e : plan.examples) run.example_ids.push_back(e.id);
  const auto& t = options_.train;
  const eval::GateThresholds g = gate_thresholds(options_.gate, model_->decoder->config());
  run.config = {{"from_state_seq", from_seq},
                {"through_state_seq", plan.through_seq},
                {"max_per_author", t.max_per_author},
                {"deferred_from_author", plan.deferred_author},
                {"replay_ratio", t.replay_ratio},
                {"warm_start", t.warm_start},
                {"retain_holdout", t.retain_holdout},
                {"epochs", t.epochs},
                {"max_steps", t.max_steps},
                {"lr", t.lr},
                {"rank", t.rank},
                {"seed", t.seed},
                {"with_system_prompt", t.with_system_prompt},
                {"gate", {{"learn_min", g.learn_min},
                          {"learn_exact_min", g.learn_exact_min},
                          {"retain_max_drop", g.retain_max_drop},
                          {"canary_max_kl", g.canary_max_kl},
                          {"canary_max_leak", g.canary_max_leak},
                          {"paraphrase_min", g.paraphrase_min}}}};
  auto created = store_.create_run(run);
  if (!created.ok()) return StartError{500, created.status().ToString()};
  plan.run_id = created->id;
  return plan;
}

std::variant<uint64_t, Learner::StartError> Learner::start_run(bool all_approved) {
  if (!options_.train.enabled) return StartError{503, "training is disabled (train.enabled = false)"};
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.load() || pending_) {
    return StartError{409, "a training run is already in progress (run " + std::to_string(progress_.run_id) + ")"};
  }
  auto plan = plan_locked("manual", all_approved ? 0 : consumed_seq());
  if (auto* err = std::get_if<StartError>(&plan)) return *err;
  const uint64_t id = std::get<Plan>(plan).run_id;
  pending_ = std::move(std::get<Plan>(plan));
  running_.store(true);
  cancel_.store(false);
  progress_ = Progress{id, "dataset", 0, 0, 0, storage::now_ms()};
  cv_.notify_all();
  return id;
}

bool Learner::cancel() {
  if (!running_.load()) return false;
  cancel_.store(true);
  return true;
}

void Learner::loop() {
  auto last_interval = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || pending_.has_value(); });
    if (stopping_) break;
    if (!pending_) {
      // Automatic triggers.
      const auto& t = options_.train;
      std::string trigger;
      const uint64_t from = consumed_seq();
      const uint64_t fresh_from = std::max(from, auto_hold_seq_);
      if (t.min_new_examples > 0 && count_new(fresh_from, static_cast<size_t>(t.min_new_examples)) >=
                                        static_cast<size_t>(t.min_new_examples)) {
        trigger = "min_new_examples";
      } else if (t.interval_s > 0 && seconds_since(last_interval) >= static_cast<double>(t.interval_s)) {
        last_interval = Clock::now();
        if (count_new(fresh_from, 1) > 0) trigger = "interval";
      }
      if (trigger.empty()) continue;
      auto plan = plan_locked(trigger, from);
      if (auto* err = std::get_if<StartError>(&plan)) {
        learner_log()->warn("event=run_not_started trigger={} reason=\"{}\"", trigger, err->message);
        continue;
      }
      pending_ = std::move(std::get<Plan>(plan));
      running_.store(true);
      cancel_.store(false);
      progress_ = Progress{pending_->run_id, "dataset", 0, 0, 0, storage::now_ms()};
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

// --- one run ---

void Learner::execute(Plan plan) {
  auto got = store_.get_run(plan.run_id);
  if (!got.ok()) {
    learner_log()->error("event=run_lost run={} error=\"{}\"", plan.run_id, got.status().ToString());
    return;
  }
  storage::Run run = *got;
  const auto& t = options_.train;
  const model::Decoder& decoder = *model_->decoder;
  const auto run_t0 = Clock::now();
  const ActiveAdapter active = registry_.active();
  auto phase_t0 = Clock::now();
  auto finish = [&](storage::RunState state, const std::string& verdict) {
    run.state = state;
    run.verdict = verdict;
    run.finished_ms = storage::now_ms();
    auto st = store_.update_run(run);
    if (!st.ok()) learner_log()->error("event=run_record_failed run={} error=\"{}\"", run.id, st.ToString());
    learner_log()->info("event=run_finished run={} state={} verdict=\"{}\"", run.id, storage::to_string(state), verdict);
    std::lock_guard<std::mutex> lock(mu_);
    last_ = run_summary(run);
    ++runs_by_state_[storage::to_string(state)];
    if (state == storage::RunState::kFailed) auto_hold_seq_ = std::max(auto_hold_seq_, plan.through_seq);
  };
  learner_log()->info("event=run_started run={} trigger={} examples={} active=v{}", run.id, run.trigger,
               plan.examples.size(), active.version);
  try {
    // 1. Dataset: the new examples, a replay sample, and a held-out part of it.
    auto to_train = [&](const storage::Example& e, std::vector<train::Example>* out) {
      std::vector<text::ChatMessage> msgs;
      const bool has_system = !e.messages.empty() && e.messages.front().role == "system";
      if (t.with_system_prompt && !has_system && !options_.system_prompt.empty()) {
        msgs.push_back({"system", options_.system_prompt});
      }
      for (const auto& m : e.messages) msgs.push_back({m.role, m.content});
      try {
        train::Example ex = train::encode_example(msgs, *model_->tokenizer, *model_->chat_template, 2048);
        if (ex.length() >= 2 && ex.target_tokens() > 0) out->push_back(std::move(ex));
      } catch (const std::exception& err) {
        learner_log()->warn("event=example_skipped id={} reason=\"{}\"", e.id, err.what());
      }
    };
    std::vector<train::Example> fresh, replay, holdout, paraphrased;
    for (const auto& e : plan.examples) {
      to_train(e, &fresh);
      // Held-out paraphrases: the same answer to another wording of the last question.
      for (const auto& q : e.paraphrases) {
        storage::Example alt = e;
        for (auto it = alt.messages.rbegin(); it != alt.messages.rend(); ++it) {
          if (it->role == "user") {
            it->content = q;
            break;
          }
        }
        to_train(alt, &paraphrased);
      }
    }
    // Replay: each epoch rehearses replay_ratio x the new examples, in turn from a pool
    // as large as the epochs can cover (train::Rehearsal), so that over the run every
    // pool example is rehearsed while an epoch costs what a fixed sample would.
    train::TrainOptions o = train::TrainOptions::for_model(decoder.config());
    if (t.epochs > 0) o.epochs = t.epochs;
    if (t.max_steps > 0) o.max_steps = t.max_steps;
    const size_t per_epoch = static_cast<size_t>(t.replay_ratio * static_cast<double>(plan.examples.size()) + 0.5);
    const size_t pool_size = per_epoch * static_cast<size_t>(std::max<int64_t>(1, o.epochs));
    std::vector<storage::ReplayEntry> drawn =
        store_.sample_replay(pool_size + static_cast<size_t>(t.retain_holdout), t.seed + run.id);
    // Hold out at most a quarter of the draw so rehearsal keeps most of it.
    const size_t hold = std::min<size_t>(static_cast<size_t>(t.retain_holdout), (drawn.size() + 3) / 4);
    std::set<uint64_t> fresh_ids(run.example_ids.begin(), run.example_ids.end());
    for (size_t i = 0; i < drawn.size(); ++i) {
      if (fresh_ids.count(drawn[i].example_id)) continue;
      auto e = store_.get_example(drawn[i].example_id);
      if (!e.ok()) continue;
      if (i < hold) {
        to_train(*e, &holdout);
      } else {
        run.replay_ids.push_back(e->id);
        to_train(*e, &replay);
      }
    }
    // train.retain_holdout = 0: retention is measured on the rehearsed replay sample
    // (small models forget whatever is not rehearsed; see the README's forgetting table).
    const bool heldout = !holdout.empty();
    if (t.retain_holdout == 0) holdout = replay;
    if (fresh.empty()) throw std::runtime_error("none of the new examples could be encoded");
    run.phase_seconds["dataset"] = seconds_since(phase_t0);
    (void)store_.update_run(run);

    // 2. Train.
    set_phase("train");
    phase_t0 = Clock::now();
    if (t.lr > 0) o.lr = t.lr;
    if (t.rank > 0) {
      o.rank = t.rank;
      o.alpha = 2.0 * static_cast<double>(t.rank);
    }
    o.seed = static_cast<uint64_t>(t.seed) + run.id;
    if (t.warm_start && active.adapter) o.init_from = active.adapter;
    run.config["train_options"] = {{"epochs", o.epochs},   {"max_steps", o.max_steps}, {"lr", o.lr},
                                   {"lr_b_ratio", o.lr_b_ratio}, {"rank", o.init_from ? o.init_from->rank() : o.rank},
                                   {"batch_tokens", o.batch_tokens}, {"parent", o.init_from ? active.version : 0}};
    train::Trainer trainer(model_->decoder, o);
    double yielded_s = 0;
    auto progress = [&](const train::TrainProgress& p) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        progress_.step = p.step;
        progress_.total_steps = p.total_steps;
        progress_.loss = p.loss;
      }
      // Serving goes first: wait while chats are queued or being decoded.
      const auto y0 = Clock::now();
      while (engine_.busy() && !cancel_.load() &&
             seconds_since(y0) * 1000.0 < static_cast<double>(t.max_yield_ms)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      yielded_s += seconds_since(y0);
      return !cancel_.load();
    };
    train::Rehearsal rehearsal{replay, std::min(per_epoch, replay.size())};
    train::TrainResult tr = trainer.train(fresh, rehearsal, progress);
    for (double l : tr.step_losses) run.loss_curve.push_back(static_cast<float>(l));
    run.phase_seconds["train"] = seconds_since(phase_t0);
    run.metrics["train_steps"] = static_cast<double>(tr.steps);
    run.metrics["train_seconds"] = tr.seconds;
    run.metrics["train_yield_seconds"] = yielded_s;
    run.metrics["train_tokens_per_s"] = tr.tokens_per_s;
    {  // Serving goes first: what chats finished while this run trained saw.
      std::vector<double> lat = engine_.latencies_since(run_t0);
      run.metrics["chat_during_train_n"] = static_cast<double>(lat.size());
      if (!lat.empty()) {
        std::sort(lat.begin(), lat.end());
        auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<size_t>(p * (lat.size() - 1) + 0.5))]; };
        run.metrics["chat_during_train_p50_ms"] = pct(0.5);
        run.metrics["chat_during_train_p99_ms"] = pct(0.99);
        learner_log()->info("event=chat_during_train run={} chats={} p50_ms={:.0f} p99_ms={:.0f}", run.id, lat.size(),
                     pct(0.5), pct(0.99));
      }
    }
    run.metrics["examples_new"] = static_cast<double>(fresh.size());
    run.metrics["examples_replay"] = static_cast<double>(replay.size());
    run.metrics["replay_per_epoch"] = static_cast<double>(rehearsal.per_epoch);
    run.metrics["examples_holdout"] = static_cast<double>(holdout.size());
    run.metrics["retain_heldout"] = heldout ? 1.0 : 0.0;
    if (tr.cancelled || cancel_.load()) {
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping = stopping_;
      }
      finish(storage::RunState::kFailed, stopping ? "stopped: shutting down" : "cancelled by the operator");
      return;
    }

    // 3. Validate against the active adapter.
    set_phase("validate");
    phase_t0 = Clock::now();
    const adapter::Adapter* cand = tr.adapter.get();
    const adapter::Adapter* act = active.adapter.get();
    eval::GateMetrics m;
    auto learn_c = eval::answer_token_accuracy(decoder, cand, fresh, o.batch_tokens);
    auto learn_a = eval::answer_token_accuracy(decoder, act, fresh, o.batch_tokens);
    m.learn_n = static_cast<int64_t>(fresh.size());
    m.learn_acc = learn_c.accuracy();
    m.learn_acc_active = learn_a.accuracy();
    // Greedy exact match on the first train.exact_match_max examples of a set.
    auto exact_on = [&](const std::vector<train::Example>& set, const adapter::Adapter* a) {
      std::vector<train::Example> subset(
          set.begin(), set.begin() + std::min<size_t>(set.size(), static_cast<size_t>(t.exact_match_max)));
      eval::ExactMatchOptions eo;
      eo.eos_token_ids = model_->eos_token_ids;
      return eval::greedy_exact_match(decoder, model_->tokenizer, *model_->chat_template, a, subset, eo);
    };
    if (t.exact_match_max > 0) {
      auto em = exact_on(fresh, cand);
      m.learn_exact_n = em.total;
      m.learn_exact = em.rate();
    }
    if (!holdout.empty()) {
      m.retain_n = static_cast<int64_t>(holdout.size());
      m.retain_acc = eval::answer_token_accuracy(decoder, cand, holdout, o.batch_tokens).accuracy();
      m.retain_acc_active = eval::answer_token_accuracy(decoder, act, holdout, o.batch_tokens).accuracy();
      if (t.exact_match_max > 0) {
        auto ec = exact_on(holdout, cand);
        auto ea = exact_on(holdout, act);
        m.retain_exact_n = ec.total;
        m.retain_exact = ec.rate();
        m.retain_exact_active = ea.rate();
      }
    }
    if (!paraphrased.empty()) {
      m.paraphrase_n = static_cast<int64_t>(paraphrased.size());
      m.paraphrase_acc = eval::answer_token_accuracy(decoder, cand, paraphrased, o.batch_tokens).accuracy();
      if (t.exact_match_max > 0) {
        auto ep = exact_on(paraphrased, cand);
        m.paraphrase_exact_n = ep.total;
        m.paraphrase_exact = ep.rate();
      }
    }
    // Canary: the base model's own answers to general prompts keep their probability,
    // and the candidate does not answer them with what it was just taught.
    eval::CanaryOptions canary;
    canary.eos_token_ids = model_->eos_token_ids;
    for (const auto* set : {&fresh, &replay})
      for (const auto& e : *set) canary.trained_answers.push_back(e.answer);
    // The base model's answers are the same for every run: computed at the first one.
    if (!canary_reference_) {
      canary_reference_ = eval::canary_reference(decoder, model_->tokenizer, *model_->chat_template,
                                                 options_.canary_prompts, canary);
    }
    const eval::CanaryResult cr = eval::measure_canary(decoder, model_->tokenizer, *canary_reference_, cand, canary);
    m.set_canary(cr);
    if (act) m.canary_kl_active = eval::measure_canary(decoder, model_->tokenizer, *canary_reference_, act, canary).kl;
    for (const auto& [k, v] : m.to_map()) run.metrics[k] = v;
    const eval::GateThresholds th = gate_thresholds(options_.gate, decoder.config());
    eval::GateVerdict verdict = eval::judge(m, th);
    if (verdict.pass && registry_.active().version != active.version) {
      verdict.pass = false;
      verdict.failures.push_back("the active adapter changed during the run (v" + std::to_string(active.version) +
                                 " -> v" + std::to_string(registry_.active().version) + ")");
    }
    run.gate = eval::to_json(verdict);
    for (const auto& c : verdict.checks) {
      if (!c.pass) {
        learner_log()->warn("event=gate_check_failed run={} check={} value={:.4g} threshold={:.4g} key={}", run.id, c.name,
                     c.value, c.threshold, c.key);
      }
    }
    run.phase_seconds["validate"] = seconds_since(phase_t0);

    // 4. Publish (or record the rejection).
    set_phase("publish");
    phase_t0 = Clock::now();
    auto version = store_.allocate_adapter_version();
    if (!version.ok()) throw std::runtime_error(version.status().ToString());
    run.adapter_version = *version;
    (void)store_.update_run(run);
    storage::Adapter record;
    record.version = *version;
    record.parent = o.init_from ? active.version : 0;
    record.metrics = m.to_map();
    record.run_id = run.id;
    record.path = write_adapter(*tr.adapter, *version);
    if (!verdict.pass) {
      record.state = storage::AdapterState::kRejected;
      auto st = store_.put_adapter(record);
      if (!st.ok()) throw std::runtime_error(st.ToString());
      run.phase_seconds["publish"] = seconds_since(phase_t0);
      finish(storage::RunState::kRejected, "rejected v" + std::to_string(*version) + ": " + verdict.summary());
      prune_versions();
      return;
    }
    if (t.publish_pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(t.publish_pause_ms));
    record.state = storage::AdapterState::kActive;
    auto st = store_.publish_adapter(record);
    if (!st.ok()) throw std::runtime_error("publish batch failed: " + st.ToString());
    // The DB says the new version is active: swap it in, loaded back from what was written.
    auto loaded = registry_.get(*version);
    if (!loaded.ok()) throw std::runtime_error("published v" + std::to_string(*version) + " does not load: " +
                                               loaded.status().ToString());
    registry_.install(*version, *loaded);
    engine_.drop_prefixes(active.version ? "v" + std::to_string(active.version) : "base");
    st = store_.mark_trained(run.example_ids, *version);
    if (!st.ok()) learner_log()->error("event=mark_trained_failed run={} error=\"{}\"", run.id, st.ToString());
    run.phase_seconds["publish"] = seconds_since(phase_t0);
    finish(storage::RunState::kPublished, "published v" + std::to_string(*version));
    prune_versions();
  } catch (const std::exception& e) {
    finish(storage::RunState::kFailed, std::string("error: ") + e.what());
  }
}

std::string Learner::write_adapter(const adapter::Adapter& adapter, uint64_t version) {
  const fs::path dir = fs::path(options_.state_dir) / "adapters";
  const std::string name = version_dir_name(version);
  const fs::path tmp = dir / (".tmp-" + name + "-" + std::to_string(::getpid()));
  const fs::path final_dir = dir / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::remove_all(tmp, ec);
  adapter::save_peft_adapter(adapter, tmp.string());  // each file fsync'd
  fsync_path(tmp, true);
  fs::remove_all(final_dir, ec);  // an orphan of an earlier crash with this version
  fs::rename(tmp, final_dir, ec);
  if (ec) throw std::runtime_error("rename " + tmp.string() + " -> " + final_dir.string() + ": " + ec.message());
  fsync_path(dir, true);
  return "adapters/" + name;
}

void Learner::prune_versions() {
  const int64_t keep = options_.train.keep_versions;
  storage::PageRequest p;
  p.limit = 1000;
  auto page = store_.list_adapters(p);  // newest first
  if (!page.ok()) return;
  const uint64_t active = registry_.active().version;
  int64_t kept = 0;
  for (const auto& a : page->items) {
    if (a.version == active || a.pinned || a.state == storage::AdapterState::kPruned) continue;
    if (kept < keep) {
      ++kept;
      continue;
    }
    const fs::path d = fs::path(options_.state_dir) / a.path;
    std::error_code ec;
    if (!a.path.empty() && fs::exists(d, ec)) {
      fs::remove_all(d, ec);
      if (ec) {
        learner_log()->warn("event=adapter_prune_failed version={} path={} error=\"{}\"", a.version, d.string(), ec.message());
        continue;
      }
      learner_log()->info("event=adapter_pruned version={} path={}", a.version, d.string());
    }
    // The record stays (its run and metrics are history) but says the files are gone.
    auto st = store_.mark_adapter_pruned(a.version);
    if (!st.ok()) learner_log()->warn("event=adapter_prune_record_failed version={} error=\"{}\"", a.version, st.ToString());
  }
}

// --- status ---

json Learner::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"enabled", options_.train.enabled}, {"state", running_.load() ? "running" : "idle"}, {"last", last_}};
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
