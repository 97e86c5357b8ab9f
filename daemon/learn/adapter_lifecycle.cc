#include "daemon/learn/adapter_lifecycle.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "daemon/learn/learner_log.h"
#include "learning/adapter/peft.h"
#include "learning/model/durable_file.h"

namespace kaizen::daemon {

namespace fs = std::filesystem;

namespace {

std::string version_dir_name(uint64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "v%06llu", static_cast<unsigned long long>(version));
  return buf;
}

// "v0000042" -> 42; 0 when the name is not a version directory.
uint64_t version_of_dir(const std::string& name) {
  if (name.size() != 7 || name[0] != 'v' || name.find_first_not_of("0123456789", 1) != std::string::npos) return 0;
  return std::stoull(name.substr(1));
}

// A failed adapter write as a domain failure: NoSpace when the disk is full (the errno
// text is all that survives the safetensors and PEFT writers' exceptions), else Internal.
Failure write_failure(const std::string& what) {
  if (what.find(std::strerror(ENOSPC)) != std::string::npos) {
    return Failure::NoSpace("the disk holding kaizen's state is full: " + what);
  }
  return Failure::Internal(what);
}

}  // namespace

AdapterLifecycle::AdapterLifecycle(LifecycleOptions options, storage::Store& store, AdapterRegistry& registry,
                                   DropCaches drop_caches)
    : options_(std::move(options)), store_(store), registry_(registry), drop_caches_(std::move(drop_caches)) {}

// --- start ---

void AdapterLifecycle::recover() {
  recover_interrupted_runs();
  clean_adapters_dir();
}

void AdapterLifecycle::recover_interrupted_runs() {
  // Crash point 3: the publish batch landed, mark_trained did not. Complete the run so
  // its examples are not trained again as if new.
  storage::PageRequest p;
  p.limit = 50;
  auto runs = store_.list_runs(p);
  if (!runs.ok()) return;
  for (storage::Run r : runs->items) {
    if (r.state != storage::RunState::kInterrupted || r.adapter_version == 0) continue;
    auto a = store_.get_adapter(r.adapter_version);
    if (!a.ok() || (a->state != storage::AdapterState::kActive && a->state != storage::AdapterState::kRetired &&
                    a->state != storage::AdapterState::kPruned)) {
      continue;
    }
    auto st = store_.mark_trained(r.example_ids, r.adapter_version);
    if (!st.ok()) {
      learner_log()->error("event=recover_run_failed run={} error=\"{}\"", r.id, st.ToString());
      continue;
    }
    r.state = storage::RunState::kPublished;
    r.verdict = "published v" + std::to_string(r.adapter_version) + " (completed after restart)";
    (void)store_.update_run(r);
    learner_log()->info("event=run_recovered run={} version={}", r.id, r.adapter_version);
  }
}

void AdapterLifecycle::clean_adapters_dir() {
  const fs::path dir = fs::path(options_.state_dir) / "adapters";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    bool remove = name.rfind(".tmp-", 0) == 0;  // crash point 1
    if (const uint64_t v = version_of_dir(name)) {
      // Crash point 2: renamed but never recorded.
      auto a = store_.get_adapter(v);
      remove = !a.ok() && a.status().IsNotFound();
    }
    if (remove) {
      fs::remove_all(entry.path(), ec);
      learner_log()->info("event=adapter_dir_cleaned path={}", entry.path().string());
    }
  }
}

// --- publish / reject ---

Outcome<uint64_t> AdapterLifecycle::allocate_version() {
  auto v = store_.allocate_adapter_version();
  if (!v.ok()) return failure_from(v.status());
  return *v;
}

Outcome<std::string> AdapterLifecycle::write_files(const adapter::Adapter& adapter, uint64_t version) {
  const fs::path dir = fs::path(options_.state_dir) / "adapters";
  const std::string name = version_dir_name(version);
  const fs::path tmp = dir / (".tmp-" + name + "-" + std::to_string(::getpid()));
  const fs::path final_dir = dir / name;
  std::error_code ec;
  try {
    fs::create_directories(dir, ec);
    fs::remove_all(tmp, ec);
    adapter::save_peft_adapter(adapter, tmp.string());  // each file fsync'd
    model::fsync_dir(tmp.string());
    fs::remove_all(final_dir, ec);  // an orphan of an earlier crash with this version
    fs::rename(tmp, final_dir, ec);
    if (ec) throw std::runtime_error("rename " + tmp.string() + " -> " + final_dir.string() + ": " + ec.message());
    model::fsync_dir(dir.string());
  } catch (const std::exception& e) {
    // What was half written goes now, not at the next start (a full disk stays full).
    fs::remove_all(tmp, ec);
    fs::remove_all(final_dir, ec);
    return write_failure(std::string("writing adapter v") + std::to_string(version) + ": " +
                         e.what());
  }
  return "adapters/" + name;
}

Outcome<storage::Adapter> AdapterLifecycle::written_record(uint64_t version, const Candidate& c,
                                                           storage::AdapterState state) {
  auto path = write_files(*c.adapter, version);
  if (!path.ok()) return path.error();
  storage::Adapter record;
  record.version = version;
  record.parent = c.parent;
  record.metrics = c.metrics;
  record.run_id = c.run_id;
  record.state = state;
  record.path = *path;
  return record;
}

Outcome<uint64_t> AdapterLifecycle::reject(uint64_t version, const Candidate& c) {
  auto written = written_record(version, c, storage::AdapterState::kRejected);
  if (!written.ok()) return written.error();
  const storage::Adapter& record = *written;
  auto st = store_.put_adapter(record);
  if (!st.ok()) {
    std::error_code ec;
    fs::remove_all(fs::path(options_.state_dir) / record.path, ec);
    return failure_from(st);
  }
  prune();
  return version;
}

Outcome<Switch> AdapterLifecycle::publish(uint64_t version, const Candidate& c) {
  auto written = written_record(version, c, storage::AdapterState::kActive);
  if (!written.ok()) return written.error();
  const storage::Adapter& record = *written;
  if (options_.publish_pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(options_.publish_pause_ms));
  Switch sw;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto st = store_.publish_adapter(record);
    if (!st.ok()) {
      // Nothing points at the files: remove them (what recover() would do at the next start).
      std::error_code ec;
      fs::remove_all(fs::path(options_.state_dir) / record.path, ec);
      return failure_from(st.WithContext("publish v" + std::to_string(version)));
    }
    // The DB says the new version is active: swap in what was written, loaded back.
    auto loaded = registry_.load(version);
    if (!loaded.ok()) {
      return Failure::Internal("published v" + std::to_string(version) +
                               " does not load: " + loaded.status().ToString());
    }
    sw = swap_locked(version, *loaded);
  }
  auto st = store_.mark_trained(c.example_ids, version);
  if (!st.ok()) {
    learner_log()->error("event=mark_trained_failed run={} error=\"{}\" retry=each_tick", c.run_id,
                         st.ToString());
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending_marks_.push_back({c.example_ids, version});
  }
  prune();
  return sw;
}

bool AdapterLifecycle::complete_pending_marks() {
  std::lock_guard<std::mutex> lock(pending_mu_);
  while (!pending_marks_.empty()) {
    const PendingMark& m = pending_marks_.front();
    if (!store_.mark_trained(m.example_ids, m.version).ok()) return false;
    learner_log()->info("event=mark_trained_completed version={} examples={}", m.version,
                        m.example_ids.size());
    pending_marks_.erase(pending_marks_.begin());
  }
  return true;
}

// --- operator changes ---

Switch AdapterLifecycle::swap_locked(uint64_t version, std::shared_ptr<const adapter::Adapter> adapter) {
  const uint64_t previous = registry_.active().version;
  registry_.install(version, std::move(adapter));
  // The old version's cached prefixes and chats; the base model's stay (`model: base`).
  if (previous != 0 && previous != version && drop_caches_) drop_caches_(adapter_key(previous));
  return Switch{version, previous};
}

Outcome<Switch> AdapterLifecycle::activate(uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t current = registry_.active().version;
  if (version == current) return Switch{current, current};
  std::shared_ptr<const adapter::Adapter> adapter;
  if (version != 0) {
    auto record = store_.get_adapter(version);
    if (!record.ok()) return failure_from(record.status());
    if (record->state == storage::AdapterState::kRejected || record->state == storage::AdapterState::kPruned) {
      // The store refuses these (Aborted -> Conflict) and says why; asked before loading
      // files that may be gone.
      storage::Status refused = store_.set_active_adapter(version);
      if (!refused.ok()) return failure_from(refused);
    }
    auto loaded = registry_.load(version);  // before the DB changes: a broken file changes nothing
    if (!loaded.ok()) return failure_from(loaded.status());
    adapter = *loaded;
  }
  auto st = store_.set_active_adapter(version);
  if (!st.ok()) return failure_from(st);
  return swap_locked(version, std::move(adapter));
}

Outcome<Switch> AdapterLifecycle::rollback(std::optional<uint64_t> to) {
  const uint64_t current = registry_.active().version;
  uint64_t target = 0;  // the base model
  if (to) {
    target = *to;
  } else {
    if (current == 0) return Failure::NotFound("nothing to roll back: the base model is serving");
    storage::PageRequest p;
    p.limit = 1000;
    auto page = store_.list_adapters(p);  // newest first
    if (!page.ok()) return failure_from(page.status());
    for (const auto& a : page->items) {
      if (a.version < current && a.state != storage::AdapterState::kRejected &&
          a.state != storage::AdapterState::kPruned) {
        target = a.version;
        break;
      }
    }
  }
  auto sw = activate(target);
  if (sw.ok()) learner_log()->info("event=rollback from={} to={}", adapter_key(current), adapter_key(target));
  return sw;
}

Outcome<storage::Adapter> AdapterLifecycle::pin(uint64_t version, bool pinned) {
  auto st = store_.set_adapter_pinned(version, pinned);
  if (!st.ok()) return failure_from(st);
  auto a = store_.get_adapter(version);
  if (!a.ok()) return failure_from(a.status());
  return *a;
}

void AdapterLifecycle::prune() {
  storage::PageRequest p;
  p.limit = 1000;
  auto page = store_.list_adapters(p);  // newest first
  if (!page.ok()) return;
  const uint64_t active = registry_.active().version;
  int64_t kept = 0;
  for (const auto& a : page->items) {
    if (a.version == active || a.pinned || a.state == storage::AdapterState::kPruned) continue;
    if (kept < options_.keep_versions) {
      ++kept;
      continue;
    }
    const fs::path d = fs::path(options_.state_dir) / a.path;
    std::error_code ec;
    if (!a.path.empty() && fs::exists(d, ec)) {
      fs::remove_all(d, ec);
      if (ec) {
        learner_log()->warn("event=adapter_prune_failed version={} path={} error=\"{}\"", a.version, d.string(),
                              ec.message());
        continue;
      }
      learner_log()->info("event=adapter_pruned version={} path={}", a.version, d.string());
    }
    auto st = store_.mark_adapter_pruned(a.version);
    if (!st.ok()) {
      learner_log()->warn("event=adapter_prune_record_failed version={} error=\"{}\"", a.version, st.ToString());
    }
  }
}

}  // namespace kaizen::daemon
