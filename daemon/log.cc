#include "daemon/log.h"

#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace kaizen::daemon {

std::shared_ptr<spdlog::logger> logger() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> instance;
  std::call_once(once, [] {
    instance = spdlog::get("daemon");
    if (!instance) {
      instance = spdlog::stderr_color_mt("daemon");
      // Under systemd the journal adds time and unit; keep lines short there.
      if (std::getenv("JOURNAL_STREAM") || std::getenv("INVOCATION_ID"))
        instance->set_pattern("%l %v");
      else
        instance->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ daemon %v");
    }
  });
  return instance;
}

void set_log_level(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return;
  logger()->set_level(lvl);
}

}  // namespace kaizen::daemon
