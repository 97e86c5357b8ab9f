// The `daemon` spdlog logger (stderr, journald-friendly: no timestamps when run by
// systemd, which stamps lines itself). Fields are key=value.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace kaizen::daemon {

// Created on first use, so tests and tools get it without setup.
std::shared_ptr<spdlog::logger> logger();

// Applies a level name from the config ("info", "debug", ...). Unknown names are ignored
// (config validation already refused them).
void set_log_level(const std::string& level);

}  // namespace kaizen::daemon
