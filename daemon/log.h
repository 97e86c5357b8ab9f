// kaizend's loggers: one named spdlog logger per layer (daemon, engine, learner,
// storage, learning), all on one stderr sink with one pattern —
// `2026-12-01T10:00:00.123 info learner event=run_started run=1 ...` — and, under systemd
// (which stamps lines itself), `info learner event=...`. Fields are key=value.
// `learning` is also spdlog's default logger, for learning/'s plain spdlog:: calls.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace kaizen::daemon {

inline constexpr const char* kLayers[] = {"daemon", "engine", "learner", "storage", "learning"};

// The logger of one layer (a name from kLayers; another name gets the default logger).
// Created on first use, so tests and tools get them without setup. Thread-safe.
std::shared_ptr<spdlog::logger> layer_logger(const std::string& name);
// layer_logger("daemon").
std::shared_ptr<spdlog::logger> logger();

// Applies a level name from the config ("info", "debug", ...) to every layer. Unknown
// names are ignored (config validation already refused them).
void set_log_level(const std::string& level);

}  // namespace kaizen::daemon
