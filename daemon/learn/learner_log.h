// The learner layer's logger ("learner") and its one clock helper, for learn/*.cc.
#pragma once

#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "daemon/log.h"

namespace kaizen::daemon {

inline std::shared_ptr<spdlog::logger> learner_log() {
  static const auto l = layer_logger("learner");
  return l;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace kaizen::daemon
