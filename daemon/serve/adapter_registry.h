// Which LoRA adapter answers `kaizen`, and the published versions `kaizen@vN` can pin.
// The active adapter is an RCU pointer (docs/DESIGN.md decision 2): readers take a
// shared_ptr copy at request start; activate() swaps it, and the old adapter is freed
// when its last request ends. Loaded versions are cached (serve/lru.h). Which version is
// active on disk and when it changes is the adapter lifecycle's business
// (learn/adapter_lifecycle.h); the registry holds what serves.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/serve/lru.h"
#include "learning/adapter/adapter.h"
#include "learning/adapter/peft.h"
#include "learning/model/config.h"
#include "storage/store.h"

namespace kaizen::daemon {

struct ActiveAdapter {
  uint64_t version = 0;                            // 0 = none: `kaizen` is the base model
  std::shared_ptr<const adapter::Adapter> adapter;  // null when version == 0
};

// The name of an adapter's contents in the engine's caches and logs: "v7", or "base" for
// version 0 (no adapter).
std::string adapter_key(uint64_t version);

// Whether a recorded version may answer `kaizen@vN` and is listed by /v1/models: its
// files exist (not pruned) and the gate passed it, or an operator pinned it.
bool servable(const storage::Adapter& record);

class AdapterRegistry {
 public:
  // Reads the active version from the store and loads it. A recorded active adapter
  // whose directory is missing or invalid is logged and serving falls back to the base
  // model (the daemon must come up), visible in status().
  AdapterRegistry(std::string state_dir, model::ModelConfig config, adapter::PeftLoadOptions options,
                  storage::Store& store);

  ActiveAdapter active() const;
  // A servable version (see servable()). NotFound when unknown or not servable.
  storage::Result<std::shared_ptr<const adapter::Adapter>> get(uint64_t version);
  // Loads any recorded version's files (cached), whatever its state.
  storage::Result<std::shared_ptr<const adapter::Adapter>> load(uint64_t version);
  // Makes `adapter` the active one in memory (RCU swap); version 0 / nullptr = base.
  void install(uint64_t version, std::shared_ptr<const adapter::Adapter> adapter);
  std::string absolute_path(const storage::Adapter& record) const;
  const std::string& load_problem() const { return load_problem_; }

 private:
  std::string state_dir_;
  model::ModelConfig config_;
  adapter::PeftLoadOptions options_;
  storage::Store& store_;
  mutable std::mutex mu_;  // guards active_, cache_, load_problem_
  ActiveAdapter active_;
  Lru<ActiveAdapter> cache_;  // loaded versions
  std::string load_problem_;
};

}  // namespace kaizen::daemon
