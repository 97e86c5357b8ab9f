// storage::Store: kaizen's one RocksDB database (conversations, feedback, training
// examples, replay buffer, adapters, training runs).
//
// Contract for every method:
//  * Errors come back as Status / Result<T>; nothing throws. Messages name the column
//    family and key (or directory) involved and can be shown to an operator as is.
//  * Reads of a record that does not exist return NotFound. Bytes that do not decode
//    return Corruption; a record or schema written by a newer kaizen returns
//    NotSupported.
//  * Durability: writes marked [sync] are fsync'd before they return (feedback, review
//    decisions, examples, adapters, runs, id reservations). Chat writes (conversations,
//    messages) go through the WAL without fsync unless StoreOptions::sync_chat_log:
//    they survive a kill -9 of the process, not a power loss.
//  * Atomicity: each method that writes several records (feedback + its correction
//    example, publish = adapter record + old active retired + active pointer) writes
//    them in one RocksDB WriteBatch: after a crash all of them are there or none.
//
// Thread safety: a Store is safe to use from any number of threads at once. Chat
// writes take no store-level lock; example writes, publish and the replay reservoir
// serialize on an internal mutex (so their order on disk is their commit order). Ids
// come from in-memory counters backed by reservations in `meta`, so they are unique
// and increasing across threads and restarts (a restart may skip ids, never reuses).
//
// Logging: the spdlog logger "storage" (stderr; opens, migrations, interrupted runs;
// never per record). An embedding program may register its own logger under that name
// before the first open.
//
// A database directory can be open in only one Store (one process) at a time; a second
// open returns Busy. Close by destroying the Store.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/records.h"
#include "storage/status.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Cache;
class WriteBufferManager;
class WriteBatch;
}  // namespace rocksdb

namespace kaizen::storage {

class ReplayReservoir;
class IdAllocator;

// The database schema version this build writes. History:
//   1: initial column families and records.
//   2: examples get the 'h' content-hash index (knowledge import dedupe); opening a
//      version-1 database builds it.
inline constexpr uint32_t kSchemaVersion = 2;

// Column family names, in docs/DESIGN.md §Storage order. RocksDB's "default" CF is created and unused.
inline constexpr const char* kColumnFamilies[] = {
    "conversations", "messages", "feedback", "examples", "replay", "adapters", "runs", "meta"};

struct StoreOptions {
  // Create the database directory (and parents) if it does not exist. When false, a
  // missing or empty directory is NotFound.
  bool create_if_missing = true;

  // Shared LRU block cache for all column families, in bytes. Default 64 MiB: kaizen
  // shares the host with an LLM, so the DB stays small; the hot set is recent chat.
  size_t block_cache_bytes = 64u << 20;

  // Total memtable memory across all column families (WriteBufferManager), in bytes,
  // charged to the block cache. Default 64 MiB. Per-CF write buffers are a quarter.
  size_t write_buffer_bytes = 64u << 20;

  // File descriptors RocksDB may keep open. Default 256; -1 = unlimited.
  int max_open_files = 256;

  // Background flush/compaction threads. Default 2.
  int background_threads = 2;

  // fsync chat writes (conversations, messages) too. Default false: the WAL without
  // fsync survives a crash of kaizend; only a power loss can drop the last messages.
  bool sync_chat_log = false;

  // Replay reservoir size in example ids. Default 10,000. Changing it for an existing
  // database keeps the reservoir's slots below the new capacity.
  uint32_t replay_capacity = 10000;

  // Seed for the reservoir's replacement choices; 0 = from std::random_device.
  uint64_t replay_seed = 0;
};

// Pagination. `cursor` 0 = from the start. Newest-first lists return items with ids
// below the cursor; oldest-first lists items with ids above it. Feed next_cursor back
// to get the following page.
struct PageRequest {
  uint64_t cursor = 0;
  size_t limit = 50;  // items per page, at least 1; larger values are capped at 1000
};

template <typename T>
struct Page {
  std::vector<T> items;
  uint64_t next_cursor = 0;  // 0 = this was the last page
};

// Counts and problems found by Store::verify_records.
struct VerifyReport {
  std::map<std::string, uint64_t> records;  // column family -> records decoded
  std::vector<std::string> problems;        // one line per bad record or broken invariant
};

// One backup in a backup directory.
struct BackupDescription {
  uint32_t id = 0;
  int64_t timestamp_s = 0;  // creation time, Unix seconds
  uint64_t size_bytes = 0;
  uint32_t files = 0;
};

class Store {
 public:
  // Opens (or creates, per options) the database in `dir`, creates missing column
  // families, checks the schema: a newer schema is NotSupported, an older one is
  // migrated. Runs left in state running by a crash become interrupted. Errors:
  // NotFound (missing/empty dir with create_if_missing=false), Busy (locked by another
  // process or Store), NotSupported (newer schema), IOError, Corruption.
  static Result<std::unique_ptr<Store>> open(const std::string& dir,
                                             const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }
  const StoreOptions& options() const { return options_; }

  // --- conversations and messages (chat log: WAL, no fsync by default) ---

  // Assigns id (and created_ms when 0); returns the stored record.
  Result<Conversation> create_conversation(Conversation conversation);
  Result<Conversation> get_conversation(uint64_t id);
  // Newest first (ids are allocated in creation order).
  Result<Page<Conversation>> list_conversations(const PageRequest& page = {});

  // Assigns id (and created_ms when 0). NotFound if the conversation does not exist,
  // InvalidArgument for a role other than system/user/assistant.
  Result<Message> append_message(Message message);
  // Reserves a message id before the message exists, so an API response can name the
  // answer it is still generating; pass it in Message::id to append_message (0 = assign
  // one there). Ids never repeat, reserved or not.
  Result<uint64_t> reserve_message_id();
  Result<Message> get_message(uint64_t id);
  // Oldest first.
  Result<Page<Message>> list_messages(uint64_t conversation_id, const PageRequest& page = {});

  // --- feedback and examples [sync] ---

  // Stores the feedback and, when `correction` is given, the correction example, in one
  // batch; links them both ways (feedback.example_id, example.feedback_id). The message
  // must exist (NotFound otherwise). Rating must be -1, 0 or +1 (0 needs a correction).
  // The example keeps the caller's state (pending = review queue; approved for trusted
  // users) and source (knowledge becomes correction); provenance defaults to
  // "feedback:<id> by <author>". A correction whose messages are already stored is not
  // stored again: the feedback links to that example (returned with duplicate = true),
  // and an approved correction approves that example if it still waits for review.
  Result<Feedback> add_feedback(Feedback feedback, std::optional<Example> correction = {});
  Result<Feedback> get_feedback(uint64_t id);

  // Stores a new example (id and times assigned). With `dedupe`, an example whose
  // content hash is already stored is not added: AlreadyExists, message names the id.
  Result<Example> add_example(Example example, bool dedupe = false);
  // Adds many examples in one synced batch (ids assigned in order). Returns one id per
  // input; with `dedupe`, 0 marks an example whose content was already stored (or
  // appeared earlier in the same call). InvalidArgument names the first bad example;
  // then nothing is written.
  Result<std::vector<uint64_t>> add_examples(std::vector<Example> examples, bool dedupe);
  Result<Example> get_example(uint64_t id);
  // Examples in `state`, in the order they entered it, after page.cursor (a state_seq):
  // "approved since N". Cursors are Example::state_seq values.
  Result<Page<Example>> list_examples(ExampleState state, const PageRequest& page = {});
  // The review queue: pending examples, oldest first.
  Result<Page<Example>> list_pending_review(const PageRequest& page = {}) {
    return list_examples(ExampleState::kPending, page);
  }
  // Review decision: pending -> approved / rejected, plus the linked feedback's review
  // state, in one batch. Aborted if the example is not pending.
  Status review_example(uint64_t id, bool approve, const std::string& reviewer);
  // After a run: approved -> trained (first_adapter_version = version) and each example
  // offered to the replay reservoir, in one batch. Examples already trained are skipped;
  // other states are Aborted (nothing written).
  Status mark_trained(const std::vector<uint64_t>& example_ids, uint64_t adapter_version);

  // --- replay buffer (reservoir over every example ever trained) ---

  struct ReplayStats {
    uint64_t seen = 0;  // examples ever offered
    uint32_t size = 0;  // slots filled: min(seen, capacity)
    uint32_t capacity = 0;
    std::map<ExampleSource, uint32_t> by_source;
  };
  ReplayStats replay_stats() const;
  // Up to k distinct entries drawn uniformly from the reservoir.
  std::vector<ReplayEntry> sample_replay(size_t k, uint64_t seed) const;
  // Up to quota[s] entries per source s, each drawn uniformly within its source.
  std::vector<ReplayEntry> sample_replay_stratified(const std::map<ExampleSource, size_t>& quota,
                                                    uint64_t seed) const;

  // --- adapters [sync] ---

  // Reserves the next adapter version (durable: never handed out twice).
  Result<uint64_t> allocate_adapter_version();
  // Writes a candidate / rejected adapter record (state must not be active).
  Status put_adapter(const Adapter& adapter);
  // One batch: the adapter record in state active, the previous active adapter retired,
  // and the active pointer moved to it. The version must come from
  // allocate_adapter_version (or be an existing record being re-activated).
  Status publish_adapter(Adapter adapter);
  // Rollback / roll forward to an existing version (not rejected). One batch as above.
  // Version 0 = the base model: the active record is retired and the pointer cleared.
  Status set_active_adapter(uint64_t version);
  // 0 when no adapter is active (the base model serves).
  Result<uint64_t> active_adapter_version();
  Result<Adapter> get_adapter(uint64_t version);
  Status set_adapter_pinned(uint64_t version, bool pinned);
  // After its directory was deleted: state pruned (a rejected record keeps its state).
  // Refused for the active or a pinned version.
  Status mark_adapter_pruned(uint64_t version);
  Result<Page<Adapter>> list_adapters(const PageRequest& page = {});  // newest first

  // --- training runs [sync] ---

  Result<Run> create_run(Run run);    // assigns id, started_ms; state running
  Status update_run(const Run& run);  // NotFound if it does not exist
  Result<Run> get_run(uint64_t id);
  Result<Page<Run>> list_runs(const PageRequest& page = {});  // newest first

  // --- maintenance ---

  // Decodes every record of every column family and checks cross-record invariants
  // (index entries point at records, one active adapter, feedback <-> example links).
  Status verify_records(VerifyReport* report);

  // Adds a backup of the live database to `backup_dir` (RocksDB BackupEngine;
  // incremental: files shared with earlier backups are not copied again). Flushes first.
  Status backup(const std::string& backup_dir, BackupDescription* created = nullptr);
  // Restores the latest backup in `backup_dir` into `db_dir`, replacing its contents.
  // The database must not be open (Busy if it is).
  static Status restore(const std::string& backup_dir, const std::string& db_dir);
  // Lists the backups and verifies each one's file sizes and checksums.
  // NotFound if `backup_dir` holds no backups; Corruption names the bad backup.
  static Result<std::vector<BackupDescription>> verify_backup(const std::string& backup_dir);

  // How writes are going: OK, or the last failed write's status (NoSpace while the file
  // system is full, IOError on a failing disk) until a write succeeds again. Reads keep
  // working either way. A full disk heals by itself: once space returns RocksDB resumes
  // within about a second and the next write succeeds. A disk error does not heal in
  // place (RocksDB stops writing until reopened): restart kaizend.
  Status write_health() const;
  uint64_t failed_writes() const { return failed_writes_.load(); }

 private:
  struct Handles;
  Store(std::string dir, const StoreOptions& options);
  Status open_db();
  Status check_schema();
  Status migrate_from(uint32_t version);
  Status interrupt_stale_runs();
  Status write(rocksdb::WriteBatch* batch, bool sync);
  // Records the outcome of a write for write_health(); returns it.
  Status note_write(Status status);
  template <typename T>
  Result<T> get_record(int cf, const std::string& key);
  Result<uint64_t> next_id(int kind);
  // Rows of `cf` whose key is `prefix` + u64 BE id, one page in id order.
  struct Row {
    uint64_t id;
    std::string value;
  };
  Result<std::vector<Row>> scan_page(int cf, const std::string& prefix, const PageRequest& page,
                                     bool newest_first, uint64_t* next_cursor);
  template <typename T>
  Result<Page<T>> list_records(int cf, const std::string& prefix, const PageRequest& page,
                               bool newest_first);
  Status load_replay();
  // Caller holds write_mu_ (state_seq order must be commit order).
  Status put_example_records(rocksdb::WriteBatch* batch, Example* example, const Example* previous);
  Status activate_in_batch(rocksdb::WriteBatch* batch, Adapter* adapter);
  // The active adapter's record -> retired, unless there is none or it is `next`.
  Status retire_active_in_batch(rocksdb::WriteBatch* batch, uint64_t next);
  // Pending -> approved/rejected, with the proposal's feedback. Caller holds write_mu_.
  Status review_in_batch(rocksdb::WriteBatch* batch, Example* example, bool approve, const std::string& reviewer);

  std::string dir_;
  StoreOptions options_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::unique_ptr<Handles> h_;  // DB and column family handles
  std::vector<std::unique_ptr<IdAllocator>> ids_;
  std::unique_ptr<ReplayReservoir> replay_;
  // Serializes read-modify-write sequences: example state transitions and dedupe,
  // adapter records and the active pointer, the replay reservoir's slots and seen count.
  mutable std::mutex write_mu_;
  mutable std::mutex health_mu_;
  Status last_write_error_;  // guarded by health_mu_
  std::atomic<bool> write_failing_{false};
  std::atomic<uint64_t> failed_writes_{0};
};

}  // namespace kaizen::storage
