// Store: adapter records and the active-adapter pointer (publish, rollback).
#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/store.h"
#include "storage/store_internal.h"

namespace kaizen::storage {

Result<uint64_t> Store::allocate_adapter_version() {
  return next_id(kIdAdapter);
}

Result<uint64_t> Store::active_adapter_version() {
  std::string value;
  rocksdb::Status rs =
      h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfMeta], keys::kActiveAdapter, &value);
  if (rs.IsNotFound()) return uint64_t{0};
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(rs, "read meta/active_adapter"));
  auto v = keys::get_u64(value);
  if (!v || value.size() != 8) return Status::Corruption("meta/active_adapter is not 8 bytes");
  return *v;
}

Result<Adapter> Store::get_adapter(uint64_t version) {
  return get_record<Adapter>(kCfAdapters, keys::adapter(version));
}

Status Store::put_adapter(const Adapter& adapter) {
  if (adapter.version == 0) return Status::InvalidArgument("adapter version 0 is reserved");
  if (adapter.state == AdapterState::kActive) {
    return Status::InvalidArgument("put_adapter cannot activate; use publish_adapter");
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  auto active = active_adapter_version();
  if (!active.ok()) return active.status();
  if (*active == adapter.version) {
    return Status::Aborted("adapter v" + std::to_string(adapter.version) +
                           " is active; activate another version first");
  }
  Adapter a = adapter;
  if (a.created_ms == 0) a.created_ms = now_ms();
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfAdapters], keys::adapter(a.version), encode(a));
  return write(&batch, /*sync=*/true);
}

Status Store::retire_active_in_batch(rocksdb::WriteBatch* batch, uint64_t next) {
  auto active = active_adapter_version();
  if (!active.ok()) return active.status();
  if (*active == 0 || *active == next) return Status::OK();
  auto old = get_adapter(*active);
  if (old.ok()) {
    old->state = AdapterState::kRetired;
    batch->Put(h_->cf[kCfAdapters], keys::adapter(old->version), encode(*old));
  } else if (!old.status().IsNotFound()) {
    return old.status();
  }
  return Status::OK();
}

Status Store::activate_in_batch(rocksdb::WriteBatch* batch, Adapter* adapter) {
  KAIZEN_RETURN_IF_ERROR(retire_active_in_batch(batch, adapter->version));
  adapter->state = AdapterState::kActive;
  batch->Put(h_->cf[kCfAdapters], keys::adapter(adapter->version), encode(*adapter));
  batch->Put(h_->cf[kCfMeta], keys::kActiveAdapter, keys::u64(adapter->version));
  return Status::OK();
}

Status Store::publish_adapter(Adapter adapter) {
  if (adapter.version == 0) return Status::InvalidArgument("adapter version 0 is reserved");
  if (adapter.created_ms == 0) adapter.created_ms = now_ms();
  std::lock_guard<std::mutex> lock(write_mu_);
  rocksdb::WriteBatch batch;
  KAIZEN_RETURN_IF_ERROR(activate_in_batch(&batch, &adapter));
  return write(&batch, /*sync=*/true)
      .WithContext("publish adapter v" + std::to_string(adapter.version));
}

Status Store::set_active_adapter(uint64_t version) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (version == 0) {  // back to the base model: retire the active record, clear the pointer
    rocksdb::WriteBatch batch;
    KAIZEN_RETURN_IF_ERROR(retire_active_in_batch(&batch, 0));
    batch.Delete(h_->cf[kCfMeta], keys::kActiveAdapter);
    return write(&batch, /*sync=*/true).WithContext("activate the base model");
  }
  auto a = get_adapter(version);
  if (!a.ok()) return a.status();
  if (a->state == AdapterState::kRejected) {
    return Status::Aborted("adapter v" + std::to_string(version) +
                           " was rejected by the gate; refusing to activate it");
  }
  if (a->state == AdapterState::kPruned) {
    return Status::Aborted("adapter v" + std::to_string(version) +
                           " was pruned (its files were deleted past train.keep_versions); pin versions to keep them");
  }
  rocksdb::WriteBatch batch;
  KAIZEN_RETURN_IF_ERROR(activate_in_batch(&batch, &*a));
  return write(&batch, /*sync=*/true).WithContext("activate adapter v" + std::to_string(version));
}

Status Store::mark_adapter_pruned(uint64_t version) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto a = get_adapter(version);
  if (!a.ok()) return a.status();
  auto active = active_adapter_version();
  if (!active.ok()) return active.status();
  if (*active == version || a->pinned) {
    return Status::Aborted("adapter v" + std::to_string(version) + " is active or pinned; not pruning it");
  }
  if (a->state == AdapterState::kRejected || a->state == AdapterState::kPruned) return Status::OK();
  a->state = AdapterState::kPruned;
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfAdapters], keys::adapter(version), encode(*a));
  return write(&batch, /*sync=*/true);
}

Status Store::set_adapter_pinned(uint64_t version, bool pinned) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto a = get_adapter(version);
  if (!a.ok()) return a.status();
  a->pinned = pinned;
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfAdapters], keys::adapter(version), encode(*a));
  return write(&batch, /*sync=*/true);
}

Result<Page<Adapter>> Store::list_adapters(const PageRequest& page) {
  return list_records<Adapter>(kCfAdapters, "", page, /*newest_first=*/true);
}

}  // namespace kaizen::storage
