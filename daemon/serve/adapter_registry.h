// Which LoRA adapter answers `kaizen`, and the published versions `kaizen@vN` can pin.
// The active adapter is an RCU pointer (DESIGN.md decision 2): readers take a
// shared_ptr copy at request start; activate() swaps it, and the old adapter is freed
// when its last request ends. Loaded versions are cached (small LRU).
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "learning/adapter/adapter.h"
#include "learning/adapter/peft.h"
#include "learning/model/config.h"
#include "storage/store.h"

namespace kaizen::daemon {

struct ActiveAdapter {
  uint64_t version = 0;                            // 0 = none: `kaizen` is the base model
  std::shared_ptr<const adapter::Adapter> adapter;  // null when version == 0
};

class AdapterRegistry {
 public:
  // Reads the active version from the store and loads it. A recorded active adapter
  // whose directory is missing or invalid is logged and serving falls back to the base
  // model (the daemon must come up), visible in status().
  AdapterRegistry(std::string state_dir, model::ModelConfig config, adapter::PeftLoadOptions options,
                  storage::Store& store);

  ActiveAdapter active() const;
  // A published version (any state but rejected unless pinned). NotFound when unknown.
  storage::Result<std::shared_ptr<const adapter::Adapter>> get(uint64_t version);
  // Makes `version` active on disk (one synced batch) and then in memory.
  storage::Status activate(uint64_t version);
  // Installs an already-loaded adapter as active in memory (after the learner published it).
  void install(uint64_t version, std::shared_ptr<const adapter::Adapter> adapter);
  std::string absolute_path(const storage::Adapter& record) const;
  const std::string& load_problem() const { return load_problem_; }

 private:
  storage::Result<std::shared_ptr<const adapter::Adapter>> load(uint64_t version);

  std::string state_dir_;
  model::ModelConfig config_;
  adapter::PeftLoadOptions options_;
  storage::Store& store_;
  mutable std::mutex mu_;  // guards active_, cache_, load_problem_
  ActiveAdapter active_;
  std::list<std::pair<uint64_t, std::shared_ptr<const adapter::Adapter>>> cache_;  // MRU first
  std::string load_problem_;
};

}  // namespace kaizen::daemon
