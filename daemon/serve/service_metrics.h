// The serving side's Prometheus lines (appended to the HTTP layer's own at /metrics).
#pragma once

#include <cstdint>
#include <string>

#include "daemon/serve/engine.h"
#include "storage/store.h"

namespace kaizen::daemon {

// Queue depth, active chats, tokens, jobs, batched decode forwards and rows, prefill
// chunks, prefix and conversation cache hits and bytes, the active adapter version.
std::string engine_metrics_text(const Engine& engine, uint64_t active_adapter_version);

// Whether the store takes writes, writes the disk refused, chats answered unlogged.
std::string store_metrics_text(const storage::Store& store, uint64_t unlogged_chats);

}  // namespace kaizen::daemon
