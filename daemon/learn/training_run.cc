// One training run of the Learner (learn/learner.h): dataset -> train -> validate ->
// hand the candidate to the adapter lifecycle (publish or reject).
#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "daemon/learn/learner.h"
#include "daemon/learn/run_record.h"
#include "daemon/learn/learner_log.h"
#include "learning/eval/gate.h"
#include "learning/eval/metrics.h"

namespace kaizen::daemon {

using Clock = std::chrono::steady_clock;

namespace {

// The example with its last user turn reworded: a held-out paraphrase of its question.
storage::Example reworded(storage::Example e, const std::string& question) {
  for (auto it = e.messages.rbegin(); it != e.messages.rend(); ++it) {
    if (it->role == "user") {
      it->content = question;
      break;
    }
  }
  return e;
}

}  // namespace

void Learner::encode_into(const storage::Example& e, std::vector<train::Example>* out) const {
  std::vector<text::ChatMessage> msgs;
  const bool has_system = !e.messages.empty() && e.messages.front().role == "system";
  if (options_.train.with_system_prompt && !has_system && !options_.system_prompt.empty()) {
    msgs.push_back({"system", options_.system_prompt});
  }
  for (const auto& m : e.messages) {
    text::ChatMessage t{m.role, m.content};
    for (const auto& c : m.tool_calls) t.tool_calls.push_back({c.id, c.name, c.arguments, c.arguments_is_object});
    t.tool_call_id = m.tool_call_id;
    msgs.push_back(std::move(t));
  }
  try {
    std::vector<nlohmann::ordered_json> tools;
    if (!e.tools_json.empty()) {  // key order kept: the template prints the tools as stored
      for (auto& t : nlohmann::ordered_json::parse(e.tools_json)) tools.push_back(std::move(t));
    }
    train::Example ex = train::encode_example(msgs, *model_->tokenizer, *model_->chat_template, 2048,
                                              /*truncated=*/nullptr, tools);
    if (ex.length() >= 2 && ex.target_tokens() > 0) out->push_back(std::move(ex));
  } catch (const std::exception& err) {
    learner_log()->warn("event=example_skipped id={} reason=\"{}\"", e.id, err.what());
  }
}

Learner::RunSets Learner::build_dataset(const Plan& plan, storage::Run& run, const train::TrainOptions& o) {
  const auto& t = options_.train;
  RunSets s;
  for (const auto& e : plan.examples) {
    encode_into(e, &s.fresh);
    // Held-out paraphrases: the same answer to another wording of the last question.
    for (const auto& q : e.paraphrases) encode_into(reworded(e, q), &s.paraphrased);
  }
  // Replay: each epoch rehearses replay_ratio x the new examples, in turn from a pool
  // as large as the epochs can cover (train::Rehearsal), so that over the run every
  // pool example is rehearsed while an epoch costs what a fixed sample would.
  s.replay_per_epoch = static_cast<size_t>(t.replay_ratio * static_cast<double>(plan.examples.size()) + 0.5);
  const size_t pool_size = s.replay_per_epoch * static_cast<size_t>(std::max<int64_t>(1, o.epochs));
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
      encode_into(*e, &s.holdout);
    } else {
      run.replay_ids.push_back(e->id);
      encode_into(*e, &s.replay);
    }
  }
  // train.retain_holdout = 0: retention is measured on the rehearsed replay sample
  // (small models forget whatever is not rehearsed; see the README's forgetting table).
  s.heldout = !s.holdout.empty();
  if (t.retain_holdout == 0) s.holdout = s.replay;
  if (s.fresh.empty()) throw std::runtime_error("none of the new examples could be encoded");
  return s;
}

train::TrainResult Learner::train_candidate(const RunSets& s, storage::Run& run, const train::TrainOptions& o) {
  const auto& t = options_.train;
  const auto run_t0 = Clock::now();
  run.config["train_options"] = {{"epochs", o.epochs},
                                 {"max_steps", o.max_steps},
                                 {"lr", o.lr},
                                 {"lr_b_ratio", o.lr_b_ratio},
                                 {"rank", o.init_from ? o.init_from->rank() : o.rank},
                                 {"batch_tokens", o.batch_tokens},
                                 {"parent", o.init_from ? registry_.active().version : 0}};
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
    while (engine_.busy() && !cancel_.load() && seconds_since(y0) * 1000.0 < static_cast<double>(t.max_yield_ms)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    yielded_s += seconds_since(y0);
    return !cancel_.load();
  };
  train::Rehearsal rehearsal{s.replay, std::min(s.replay_per_epoch, s.replay.size())};
  train::TrainResult tr = trainer.train(s.fresh, rehearsal, progress);
  for (double l : tr.step_losses) run.loss_curve.push_back(static_cast<float>(l));
  run.metrics["train_steps"] = static_cast<double>(tr.steps);
  run.metrics["train_seconds"] = tr.seconds;
  run.metrics["train_yield_seconds"] = yielded_s;
  run.metrics["train_tokens_per_s"] = tr.tokens_per_s;
  // Serving goes first: what chats finished while this run trained saw.
  std::vector<double> lat = engine_.latencies_since(run_t0);
  run.metrics["chat_during_train_n"] = static_cast<double>(lat.size());
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    run.metrics["chat_during_train_p50_ms"] = quantile_sorted(lat, 0.5);
    run.metrics["chat_during_train_p99_ms"] = quantile_sorted(lat, 0.99);
    learner_log()->info("event=chat_during_train run={} chats={} p50_ms={:.0f} p99_ms={:.0f}", run.id, lat.size(),
                        quantile_sorted(lat, 0.5), quantile_sorted(lat, 0.99));
  }
  run.metrics["examples_new"] = static_cast<double>(s.fresh.size());
  run.metrics["examples_replay"] = static_cast<double>(s.replay.size());
  run.metrics["replay_per_epoch"] = static_cast<double>(rehearsal.per_epoch);
  run.metrics["examples_holdout"] = static_cast<double>(s.holdout.size());
  run.metrics["retain_heldout"] = s.heldout ? 1.0 : 0.0;
  return tr;
}

eval::GateMetrics Learner::validate(const RunSets& s, const adapter::Adapter* cand, const adapter::Adapter* act,
                                    const train::TrainOptions& o) {
  const auto& t = options_.train;
  const model::Decoder& decoder = *model_->decoder;
  auto accuracy = [&](const adapter::Adapter* a, const std::vector<train::Example>& set) {
    return eval::answer_token_accuracy(decoder, a, set, o.batch_tokens).accuracy();
  };
  // Greedy exact match on the first train.exact_match_max examples of a set.
  auto exact_on = [&](const std::vector<train::Example>& set, const adapter::Adapter* a) {
    std::vector<train::Example> subset(
        set.begin(), set.begin() + std::min<size_t>(set.size(), static_cast<size_t>(t.exact_match_max)));
    eval::ExactMatchOptions eo;
    eo.eos_token_ids = model_->eos_token_ids;
    return eval::greedy_exact_match(decoder, model_->tokenizer, *model_->chat_template, a, subset, eo);
  };
  const bool exact = t.exact_match_max > 0;
  eval::GateMetrics m;
  m.learn_n = static_cast<int64_t>(s.fresh.size());
  m.learn_acc = accuracy(cand, s.fresh);
  m.learn_acc_active = accuracy(act, s.fresh);
  if (exact) {
    auto em = exact_on(s.fresh, cand);
    m.learn_exact_n = em.total;
    m.learn_exact = em.rate();
  }
  if (!s.holdout.empty()) {
    m.retain_n = static_cast<int64_t>(s.holdout.size());
    m.retain_acc = accuracy(cand, s.holdout);
    m.retain_acc_active = accuracy(act, s.holdout);
    if (exact) {
      auto ec = exact_on(s.holdout, cand);
      m.retain_exact_n = ec.total;
      m.retain_exact = ec.rate();
      m.retain_exact_active = exact_on(s.holdout, act).rate();
    }
  }
  if (!s.paraphrased.empty()) {
    m.paraphrase_n = static_cast<int64_t>(s.paraphrased.size());
    m.paraphrase_acc = accuracy(cand, s.paraphrased);
    if (exact) {
      auto ep = exact_on(s.paraphrased, cand);
      m.paraphrase_exact_n = ep.total;
      m.paraphrase_exact = ep.rate();
    }
  }
  // Canary: the base model's own answers to general prompts keep their probability,
  // and the candidate does not answer them with what it was just taught.
  eval::CanaryOptions canary;
  canary.eos_token_ids = model_->eos_token_ids;
  for (const auto* set : {&s.fresh, &s.replay})
    for (const auto& e : *set) canary.trained_answers.push_back(e.answer);
  // The base model's answers are the same for every run: computed at the first one.
  if (!canary_reference_) {
    canary_reference_ = eval::canary_reference(decoder, model_->tokenizer, *model_->chat_template,
                                               options_.canary_prompts, canary);
  }
  m.set_canary(eval::measure_canary(decoder, model_->tokenizer, *canary_reference_, cand, canary));
  if (act) m.canary_kl_active = eval::measure_canary(decoder, model_->tokenizer, *canary_reference_, act, canary).kl;
  return m;
}

train::TrainOptions Learner::train_options(uint64_t run_id, const ActiveAdapter& active) const {
  const auto& t = options_.train;
  train::TrainOptions o = train::TrainOptions::for_model(model_->decoder->config());
  if (t.epochs > 0) o.epochs = t.epochs;
  if (t.max_steps > 0) o.max_steps = t.max_steps;
  if (t.lr > 0) o.lr = t.lr;
  if (t.rank > 0) {
    o.rank = t.rank;
    o.alpha = 2.0 * static_cast<double>(t.rank);
  }
  o.seed = static_cast<uint64_t>(t.seed) + run_id;
  if (t.warm_start && active.adapter) o.init_from = active.adapter;
  return o;
}

eval::GateVerdict Learner::judge(const eval::GateMetrics& m, uint64_t active_version, storage::Run& run) const {
  eval::GateVerdict verdict = eval::judge(m, gate_thresholds(options_.gate, model_->decoder->config()));
  if (verdict.pass && registry_.active().version != active_version) {
    verdict.pass = false;
    verdict.failures.push_back("the active adapter changed during the run (" + adapter_key(active_version) + " -> " +
                               adapter_key(registry_.active().version) + ")");
  }
  run.gate = eval::to_json(verdict);
  for (const auto& c : verdict.checks) {
    if (c.pass) continue;
    learner_log()->warn("event=gate_check_failed run={} check={} value={:.4g} threshold={:.4g} key={}", run.id, c.name,
                        c.value, c.threshold, c.key);
  }
  return verdict;
}

void Learner::execute(Plan plan) {
  auto got = store_.get_run(plan.run_id);
  if (!got.ok()) {
    learner_log()->error("event=run_lost run={} error=\"{}\"", plan.run_id, got.status().ToString());
    return;
  }
  storage::Run run = *got;
  const ActiveAdapter active = registry_.active();
  learner_log()->info("event=run_started run={} trigger={} examples={} active={}", run.id, run.trigger,
                      plan.examples.size(), adapter_key(active.version));
  auto phase_t0 = Clock::now();
  auto phase_done = [&](const char* phase) {
    run.phase_seconds[phase] = seconds_since(phase_t0);
    phase_t0 = Clock::now();
  };
  try {
    const train::TrainOptions o = train_options(run.id, active);
    const RunSets sets = build_dataset(plan, run, o);
    phase_done("dataset");
    (void)store_.update_run(run);

    set_phase("train");
    train::TrainResult tr = train_candidate(sets, run, o);
    phase_done("train");
    if (tr.cancelled || cancel_.load()) {
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping = stopping_;
      }
      finish(run, plan, storage::RunState::kFailed, stopping ? "stopped: shutting down" : "cancelled by the operator");
      return;
    }

    set_phase("validate");
    eval::GateMetrics m = validate(sets, tr.adapter.get(), active.adapter.get(), o);
    for (const auto& [k, v] : m.to_map()) run.metrics[k] = v;
    const eval::GateVerdict verdict = judge(m, active.version, run);
    phase_done("validate");

    // Hand the candidate over: the lifecycle publishes it, or records the rejection.
    set_phase("publish");
    auto version = lifecycle_.allocate_version();
    if (!version.ok()) throw std::runtime_error(version.error().message);
    run.adapter_version = *version;
    (void)store_.update_run(run);  // recover() completes the run if a crash follows the batch
    Candidate c{tr.adapter, o.init_from ? active.version : 0, run.id, m.to_map(), run.example_ids};
    if (!verdict.pass) {
      auto rejected = lifecycle_.reject(*version, c);
      if (!rejected.ok()) throw std::runtime_error(rejected.error().message);
      phase_done("publish");
      finish(run, plan, storage::RunState::kRejected,
             "rejected v" + std::to_string(*version) + ": " + verdict.summary());
      return;
    }
    auto published = lifecycle_.publish(*version, c);
    if (!published.ok()) throw std::runtime_error(published.error().message);
    phase_done("publish");
    finish(run, plan, storage::RunState::kPublished, "published v" + std::to_string(*version));
  } catch (const std::exception& e) {
    finish(run, plan, storage::RunState::kFailed, std::string("error: ") + e.what());
  }
}

}  // namespace kaizen::daemon
