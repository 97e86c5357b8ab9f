// Private to storage/*.cc: the RocksDB handles behind a Store, the id allocator, and
// rocksdb::Status -> Status conversion. Not part of the public API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/status.h"
#include "storage/store.h"

namespace kaizen::storage {

// Indices into Store::Handles::cf, in kColumnFamilies order.
enum Cf : int {
  kCfConversations = 0,
  kCfMessages,
  kCfFeedback,
  kCfExamples,
  kCfReplay,
  kCfAdapters,
  kCfRuns,
  kCfMeta,
  kCfCount
};

inline const char* cf_name(int cf) {
  return kColumnFamilies[cf];
}

struct Store::Handles {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;  // kCfCount entries
  ~Handles();
};

// Kinds of ids, each with its own counter in meta ("id/<name>") and reservation block.
enum IdKind : int {
  kIdConversation = 0,
  kIdMessage,
  kIdFeedback,
  kIdExample,
  kIdAdapter,
  kIdRun,
  kIdExampleSeq,  // position in a state list (examples by state)
  kIdKindCount
};

// Hands out increasing ids without a lock on the fast path. The counter in `meta`
// stores the first id not yet reserved; reserving a block is one synced write, so an id
// handed out is never handed out again, even after a crash (unused ids of a block are
// skipped after a restart). Adapter versions and runs use blocks of 1: dense numbers.
class IdAllocator {
 public:
  IdAllocator(std::string name, uint64_t block, uint64_t persisted_next)
      : name_(std::move(name)), block_(block), next_(persisted_next), reserved_(persisted_next) {}
  // `reserve(limit)` must durably store `limit` as the new counter value.
  template <typename ReserveFn>
  Result<uint64_t> allocate(ReserveFn&& reserve) {
    const uint64_t id = next_.fetch_add(1);
    if (id < reserved_.load(std::memory_order_acquire)) return id;
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t limit = reserved_.load(std::memory_order_relaxed);
    if (id < limit) return id;
    const uint64_t want = std::max(limit, id + 1) + block_ - 1;
    Status s = reserve(want);
    if (!s.ok()) {
      // This id (and any taken meanwhile) may never be handed out; the next caller
      // retries the reservation.
      return s;
    }
    reserved_.store(want, std::memory_order_release);
    return id;
  }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  const uint64_t block_;
  std::atomic<uint64_t> next_;
  std::atomic<uint64_t> reserved_;  // ids below this are durably reserved
  std::mutex mu_;                   // serializes reservations
};

// rocksdb::Status -> Status, with `context` ("put messages/...") prefixed.
Status from_rocksdb(const rocksdb::Status& s, const std::string& context);

// "examples/e#42" style names for error messages: the column family and the key with
// its big-endian numbers decoded (see keys.h for the layouts).
std::string where(int cf, const std::string& key);

}  // namespace kaizen::storage

namespace kaizen::storage {

template <typename T>
Result<T> Store::get_record(int cf, const std::string& key) {
  const std::string what = where(cf, key);
  std::string value;
  rocksdb::Status rs = h_->db->Get(rocksdb::ReadOptions(), h_->cf[cf], key, &value);
  if (rs.IsNotFound()) return Status::NotFound(what + " not found");
  if (!rs.ok()) return from_rocksdb(rs, "get " + what);
  T record;
  KAIZEN_RETURN_IF_ERROR(decode(value, what, &record));
  return record;
}

template <typename T>
Result<Page<T>> Store::list_records(int cf, const std::string& prefix, const PageRequest& page,
                                    bool newest_first) {
  Page<T> out;
  auto rows = scan_page(cf, prefix, page, newest_first, &out.next_cursor);
  if (!rows.ok()) return rows.status();
  for (const auto& row : *rows) {
    T record;
    KAIZEN_RETURN_IF_ERROR(decode(row.value, where(cf, prefix + keys::u64(row.id)), &record));
    out.items.push_back(std::move(record));
  }
  return out;
}

}  // namespace kaizen::storage
