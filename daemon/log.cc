#include "daemon/log.h"

#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace kaizen::daemon {

namespace {

// Under systemd the journal adds time and unit; keep lines short there.
std::string pattern() {
  if (std::getenv("JOURNAL_STREAM") || std::getenv("INVOCATION_ID")) return "%l %n %v";
  return "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n %v";
}

// Creates the layer loggers (one stderr sink shared by all) and makes `learning` the
// default logger, so that learning/'s plain spdlog:: calls print in the same pattern.
void init_loggers() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    for (const char* name : kLayers) {
      if (spdlog::get(name)) continue;
      auto l = std::make_shared<spdlog::logger>(name, sink);
      spdlog::register_logger(l);
    }
    spdlog::set_default_logger(spdlog::get("learning"));
    spdlog::set_pattern(pattern());  // every registered logger, the default one included
  });
}

}  // namespace

std::shared_ptr<spdlog::logger> layer_logger(const std::string& name) {
  init_loggers();
  auto l = spdlog::get(name);
  return l ? l : spdlog::default_logger();
}

std::shared_ptr<spdlog::logger> logger() {
  static const std::shared_ptr<spdlog::logger> instance = layer_logger("daemon");
  return instance;
}

void set_log_level(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return;
  init_loggers();
  spdlog::set_level(lvl);  // every layer
}

}  // namespace kaizen::daemon
