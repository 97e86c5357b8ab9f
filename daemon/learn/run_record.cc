#include "daemon/learn/run_record.h"

#include <algorithm>

namespace kaizen::daemon {

using nlohmann::json;

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

json run_config(const TrainConfig& t, const eval::GateThresholds& g, uint64_t from_seq, uint64_t through_seq,
                const std::string& deferred_author) {
  return {{"from_state_seq", from_seq},
          {"through_state_seq", through_seq},
          {"max_per_author", t.max_per_author},
          {"deferred_from_author", deferred_author},
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
}

double quantile_sorted(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

}  // namespace kaizen::daemon
