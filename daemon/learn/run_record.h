// How a training run is written down (storage::Run): the summary `train status` shows,
// the config a run records at its start, and the latency percentiles it keeps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "learning/eval/gate.h"
#include "storage/records.h"

namespace kaizen::daemon {

// id, state, trigger, verdict, gate checks, adapter version, dataset sizes, metrics,
// phase times, start and finish.
nlohmann::json run_summary(const storage::Run& run);

// The knobs a run was planned with: the state_seq window of its examples, the train.*
// keys and the gate thresholds in force (so a run's record explains its verdict).
nlohmann::json run_config(const TrainConfig& train, const eval::GateThresholds& gate, uint64_t from_seq,
                          uint64_t through_seq, const std::string& deferred_author);

// The p-quantile (0..1) of sorted values, nearest rank; 0 when empty.
double quantile_sorted(const std::vector<double>& sorted, double p);

}  // namespace kaizen::daemon
