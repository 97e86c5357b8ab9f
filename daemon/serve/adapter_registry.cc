#include "daemon/serve/adapter_registry.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "daemon/log.h"

namespace kaizen::daemon {

namespace {
constexpr size_t kCachedVersions = 4;
}

std::string adapter_key(uint64_t version) { return version == 0 ? "base" : "v" + std::to_string(version); }

bool servable(const storage::Adapter& record) {
  if (record.state == storage::AdapterState::kPruned) return false;
  return record.state != storage::AdapterState::kRejected || record.pinned;
}

AdapterRegistry::AdapterRegistry(std::string state_dir, model::ModelConfig config,
                                 adapter::PeftLoadOptions options, storage::Store& store)
    : state_dir_(std::move(state_dir)),
      config_(std::move(config)),
      options_(options),
      store_(store),
      cache_(kCachedVersions) {
  auto v = store_.active_adapter_version();
  if (!v.ok() || *v == 0) return;
  auto loaded = load(*v);
  if (!loaded.ok()) {
    load_problem_ = "active adapter v" + std::to_string(*v) + " could not be loaded: " +
                    loaded.status().ToString() + "; serving the base model";
    logger()->error("event=adapter_load_failed version={} error=\"{}\"", *v, loaded.status().ToString());
    return;
  }
  active_ = {*v, *loaded};
}

ActiveAdapter AdapterRegistry::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

std::string AdapterRegistry::absolute_path(const storage::Adapter& record) const {
  std::filesystem::path p(record.path);
  return p.is_absolute() ? p.string() : (std::filesystem::path(state_dir_) / p).string();
}

storage::Result<std::shared_ptr<const adapter::Adapter>> AdapterRegistry::load(uint64_t version) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (const ActiveAdapter* hit = cache_.use_if([&](const ActiveAdapter& a) { return a.version == version; })) {
      return hit->adapter;
    }
  }
  auto record = store_.get_adapter(version);
  if (!record.ok()) return record.status();
  std::shared_ptr<const adapter::Adapter> loaded;
  try {
    loaded = adapter::load_peft_adapter(absolute_path(*record), config_, options_);
  } catch (const std::exception& e) {
    return storage::Status::Corruption(e.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_.push({version, loaded});
  return loaded;
}

storage::Result<std::shared_ptr<const adapter::Adapter>> AdapterRegistry::get(uint64_t version) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (version != 0 && version == active_.version) return active_.adapter;
  }
  auto record = store_.get_adapter(version);
  if (!record.ok()) return record.status();
  if (record->state == storage::AdapterState::kPruned) {
    return storage::Status::NotFound("adapter v" + std::to_string(version) + " was pruned (its files are gone)");
  }
  if (!servable(*record)) {
    return storage::Status::NotFound("adapter v" + std::to_string(version) +
                                     " was rejected by the gate (pin it to serve it)");
  }
  return load(version);
}

void AdapterRegistry::install(uint64_t version, std::shared_ptr<const adapter::Adapter> adapter) {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = {version, std::move(adapter)};
  load_problem_.clear();
}

}  // namespace kaizen::daemon
