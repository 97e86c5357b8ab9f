// Store: opening, schema, ids, scans, the chat log and training runs. Feedback and
// examples are in store_examples.cc, adapters in store_adapters.cc, backup and
// verification in store_backup.cc.
#include "storage/store.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "storage/keys.h"
#include "storage/replay.h"
#include "storage/store_internal.h"

namespace kaizen::storage {

namespace fs = std::filesystem;

namespace {

// The `storage` logger: stderr like the daemon's, created on first use unless the
// embedding program registered its own under that name.
std::shared_ptr<spdlog::logger> logger() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> instance;
  std::call_once(once, [] {
    instance = spdlog::get("storage");
    if (instance) return;
    instance = spdlog::stderr_color_mt("storage");
    if (std::getenv("JOURNAL_STREAM") || std::getenv("INVOCATION_ID")) {
      instance->set_pattern("%l %v");  // the journal stamps time and unit itself
    } else {
      instance->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ storage %v");
    }
  });
  return instance;
}

// RocksDB's own log goes to the `storage` logger (stderr, the journal under systemd)
// instead of a LOG file in the database directory. With the file, a full disk crashed the
// process: Debian's RocksDB 7.8 is built with assertions, and the LOG line written after
// a failed LOG write aborts in WritableFileWriter (found with tests/fault). Warnings and
// errors only; the options dump (HEADER_LEVEL) is dropped.
class RocksDbLog : public rocksdb::Logger {
 public:
  RocksDbLog() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    logger()->log(
        level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? spdlog::level::err : spdlog::level::warn,
        "rocksdb: {}", line);
  }
};

struct IdKindInfo {
  const char* name;
  uint64_t block;  // ids reserved per synced counter write
};
// Chat ids are reserved in large blocks (one fsync per block); adapter versions and
// runs one at a time so operators see v1, v2, v3 without gaps.
constexpr IdKindInfo kIdKinds[kIdKindCount] = {
    {"conversation", 256}, {"message", 1024}, {"feedback", 64},     {"example", 256},
    {"adapter", 1},        {"run", 1},        {"example_seq", 1024}};

bool is_lock_error(const rocksdb::Status& s) {
  const std::string m = s.ToString();
  return s.IsIOError() && (m.find("lock") != std::string::npos ||
                           m.find("Resource temporarily unavailable") != std::string::npos);
}

std::string describe_key(const std::string& key) {
  auto numbers = [&](size_t from) {
    std::string out;
    for (size_t p = from; p + 8 <= key.size(); p += 8)
      out += "#" + std::to_string(*keys::get_u64(key, p));
    return out;
  };
  if (!key.empty() && key.size() % 8 == 0) return numbers(0);
  if (key.size() % 8 == 1 && std::isalpha(static_cast<unsigned char>(key[0]))) {
    return std::string(1, key[0]) + numbers(1);
  }
  if (key.size() == 10 && key[0] == 's') {
    return "s#" + std::to_string(static_cast<uint8_t>(key[1])) + numbers(2);
  }
  if (key.size() == 5 && key[0] == 'r') return "r#" + std::to_string(*keys::get_u32(key, 1));
  return keys::printable(key);
}

}  // namespace

Status from_rocksdb(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  const std::string msg = context + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Status::Busy(msg);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  if (s.IsNoSpace()) return Status::NoSpace(msg);
  return Status::IOError(msg);
}

std::string where(int cf, const std::string& key) {
  return std::string(cf_name(cf)) + "/" + describe_key(key);
}

Store::Handles::~Handles() {
  if (!db) return;
  for (auto* h : cf) {
    if (h) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  if (default_cf) db->DestroyColumnFamilyHandle(default_cf).PermitUncheckedError();
  db->Close().PermitUncheckedError();
}

Store::Store(std::string dir, const StoreOptions& options)
    : dir_(std::move(dir)), options_(options) {}

Store::~Store() {
  // Chat writes skip fsync; flush the WAL so a clean shutdown loses nothing. Not after a
  // failed write that has not healed: that WAL's writer is poisoned, and syncing it
  // trips an assertion in Debian's RocksDB (tests/storage/disk_fault_test.cc).
  if (h_ && h_->db && !write_failing_.load()) {
    h_->db->FlushWAL(/*sync=*/true).PermitUncheckedError();
  }
}

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, const StoreOptions& options) {
  if (dir.empty()) return Status::InvalidArgument("database directory is empty");
  std::unique_ptr<Store> store(new Store(dir, options));
  KAIZEN_RETURN_IF_ERROR(store->open_db());
  KAIZEN_RETURN_IF_ERROR(store->check_schema());
  for (int k = 0; k < kIdKindCount; ++k) {
    const std::string key = keys::id_counter(kIdKinds[k].name);
    std::string value;
    rocksdb::Status rs =
        store->h_->db->Get(rocksdb::ReadOptions(), store->h_->cf[kCfMeta], key, &value);
    uint64_t next = 1;
    if (rs.ok()) {
      auto v = keys::get_u64(value);
      if (!v || value.size() != 8) {
        return Status::Corruption(where(kCfMeta, key) + ": id counter is not 8 bytes");
      }
      next = std::max<uint64_t>(*v, 1);
    } else if (!rs.IsNotFound()) {
      return from_rocksdb(rs, "read " + where(kCfMeta, key));
    }
    store->ids_.push_back(std::make_unique<IdAllocator>(kIdKinds[k].name, kIdKinds[k].block, next));
  }
  KAIZEN_RETURN_IF_ERROR(store->load_replay());
  KAIZEN_RETURN_IF_ERROR(store->interrupt_stale_runs());
  logger()->info("opened dir={} schema={} replay_seen={}", dir, kSchemaVersion,
                 store->replay_->seen());
  return store;
}

Status Store::open_db() {
  std::error_code ec;
  const bool exists = fs::exists(dir_, ec);
  if (exists && !fs::is_directory(dir_, ec)) {
    return Status::IOError(dir_ + ": exists and is not a directory");
  }
  if (!options_.create_if_missing && (!exists || !fs::exists(fs::path(dir_) / "CURRENT", ec))) {
    return Status::NotFound(dir_ + ": no kaizen database here (" +
                            (exists ? "directory is empty" : "directory does not exist") +
                            ") and create_if_missing is off");
  }
  if (!exists) {
    fs::create_directories(dir_, ec);
    if (ec) return Status::IOError(dir_ + ": cannot create directory: " + ec.message());
  }

  cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  write_buffers_ =
      std::make_shared<rocksdb::WriteBufferManager>(options_.write_buffer_bytes, cache_);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.cache_index_and_filter_blocks = true;  // index memory counts against the cache
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.write_buffer_size = std::max<size_t>(options_.write_buffer_bytes / 4, 1u << 20);
  cf_options.max_write_buffer_number = 2;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options_.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager = write_buffers_;
  db_options.max_open_files = options_.max_open_files;
  db_options.max_background_jobs = std::max(options_.background_threads, 1);
  db_options.info_log = std::make_shared<RocksDbLog>();
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  // Open every CF already in the DB (RocksDB requires it) plus ours.
  std::vector<std::string> names;
  rocksdb::Status rs = rocksdb::DB::ListColumnFamilies(db_options, dir_, &names);
  if (!rs.ok()) names.clear();  // a new database
  std::vector<std::string> wanted = {rocksdb::kDefaultColumnFamilyName};
  for (const char* n : kColumnFamilies) wanted.emplace_back(n);
  for (const auto& n : names) {
    if (std::find(wanted.begin(), wanted.end(), n) == wanted.end()) wanted.push_back(n);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : wanted) descriptors.emplace_back(n, cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rs = rocksdb::DB::Open(db_options, dir_, descriptors, &handles, &raw);
  if (!rs.ok()) {
    if (is_lock_error(rs)) {
      return Status::Busy(dir_ + ": database is in use by another process or Store (" +
                          rs.ToString() + "); stop kaizend or use its online commands");
    }
    return from_rocksdb(rs, "open " + dir_);
  }
  h_ = std::make_unique<Handles>();
  h_->db.reset(raw);
  h_->default_cf = handles[0];
  for (int i = 0; i < kCfCount; ++i) h_->cf.push_back(handles[1 + i]);
  // CFs unknown to this build (a newer one made them): keep them untouched.
  for (size_t i = 1 + kCfCount; i < handles.size(); ++i) {
    h_->db->DestroyColumnFamilyHandle(handles[i]).PermitUncheckedError();
  }
  return Status::OK();
}

Status Store::check_schema() {
  std::string value;
  rocksdb::Status rs =
      h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfMeta], keys::kSchemaVersion, &value);
  if (rs.IsNotFound()) {
    // A new database, or one whose creation crashed before this write: every CF empty.
    for (int cf = 0; cf < kCfCount; ++cf) {
      std::unique_ptr<rocksdb::Iterator> it(
          h_->db->NewIterator(rocksdb::ReadOptions(), h_->cf[cf]));
      it->SeekToFirst();
      if (it->Valid()) {
        return Status::Corruption(dir_ + ": meta/schema_version is missing but " + cf_name(cf) +
                                  " holds data; not a kaizen database, or a damaged one");
      }
    }
    std::string v;
    keys::put_u32(&v, kSchemaVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return from_rocksdb(h_->db->Put(wo, h_->cf[kCfMeta], keys::kSchemaVersion, v),
                        "write schema version");
  }
  if (!rs.ok()) return from_rocksdb(rs, "read meta/schema_version");
  auto version = keys::get_u32(value);
  if (!version || value.size() != 4) {
    return Status::Corruption(dir_ + ": meta/schema_version is not a 4-byte number");
  }
  if (*version > kSchemaVersion) {
    return Status::NotSupported(dir_ + ": database schema version " + std::to_string(*version) +
                                " is newer than this kaizen build supports (" +
                                std::to_string(kSchemaVersion) +
                                "); upgrade kaizen or restore a backup made by this version");
  }
  if (*version < kSchemaVersion) return migrate_from(*version);
  return Status::OK();
}

Status Store::migrate_from(uint32_t version) {
  if (version < 1) {
    return Status::Corruption(dir_ + ": invalid schema version " + std::to_string(version));
  }
  rocksdb::WriteBatch batch;
  if (version < 2) {
    // v2 adds the content-hash index over examples.
    std::unique_ptr<rocksdb::Iterator> it(
        h_->db->NewIterator(rocksdb::ReadOptions(), h_->cf[kCfExamples]));
    uint64_t indexed = 0;
    for (it->Seek("e"); it->Valid() && it->key().starts_with("e"); it->Next()) {
      Example e;
      KAIZEN_RETURN_IF_ERROR(
          decode(it->value().ToStringView(), where(kCfExamples, it->key().ToString()), &e));
      batch.Put(h_->cf[kCfExamples], keys::example_hash(content_hash(e.messages, e.tools_json)), keys::u64(e.id));
      ++indexed;
    }
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan examples for migration"));
    logger()->info("migrating schema from=1 to=2 examples_indexed={}", indexed);
  }
  std::string v;
  keys::put_u32(&v, kSchemaVersion);
  batch.Put(h_->cf[kCfMeta], keys::kSchemaVersion, v);
  return write(&batch, /*sync=*/true)
      .WithContext("migrate schema " + std::to_string(version) + " -> " +
                   std::to_string(kSchemaVersion));
}

Status Store::load_replay() {
  replay_ = std::make_unique<ReplayReservoir>(options_.replay_capacity, options_.replay_seed);
  std::string value;
  rocksdb::Status rs =
      h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfReplay], keys::kReplaySeen, &value);
  uint64_t seen = 0;
  if (rs.ok()) {
    auto v = keys::get_u64(value);
    if (!v || value.size() != 8) return Status::Corruption("replay/n: seen count is not 8 bytes");
    seen = *v;
  } else if (!rs.IsNotFound()) {
    return from_rocksdb(rs, "read replay/n");
  }
  std::map<uint32_t, ReplayEntry> slots;
  std::unique_ptr<rocksdb::Iterator> it(
      h_->db->NewIterator(rocksdb::ReadOptions(), h_->cf[kCfReplay]));
  for (it->Seek("r"); it->Valid() && it->key().starts_with("r"); it->Next()) {
    const std::string key = it->key().ToString();
    auto slot = keys::get_u32(key, 1);
    ReplayEntry entry;
    Status s = decode(it->value().ToStringView(), where(kCfReplay, key), &entry);
    if (!slot || !s.ok()) {
      logger()->warn("skipping bad replay slot key={} error={}", keys::printable(key),
                     s.ToString());
      continue;
    }
    slots[*slot] = entry;
  }
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan replay"));
  replay_->restore(seen, std::move(slots));
  return Status::OK();
}

Status Store::interrupt_stale_runs() {
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(
      h_->db->NewIterator(rocksdb::ReadOptions(), h_->cf[kCfRuns]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Run run;
    Status s = decode(it->value().ToStringView(), where(kCfRuns, it->key().ToString()), &run);
    if (!s.ok()) {
      logger()->warn("unreadable run record: {}", s.ToString());
      continue;
    }
    if (run.state != RunState::kRunning) continue;
    run.state = RunState::kInterrupted;
    if (run.finished_ms == 0) run.finished_ms = now_ms();
    if (run.verdict.empty()) run.verdict = "interrupted: kaizend stopped during the run";
    batch.Put(h_->cf[kCfRuns], it->key(), encode(run));
    logger()->warn("run interrupted run_id={}", run.id);
  }
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan runs"));
  if (batch.Count() == 0) return Status::OK();
  return write(&batch, /*sync=*/true);
}

Status Store::write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return note_write(from_rocksdb(h_->db->Write(wo, batch), "write batch to " + dir_));
}

Status Store::note_write(Status status) {
  if (status.ok()) {
    if (write_failing_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> lock(health_mu_);
      last_write_error_ = Status::OK();
      write_failing_.store(false);
      logger()->info("event=writes_resumed dir={}", dir_);
    }
    return status;
  }
  if (!status.IsNoSpace() && !status.IsIOError() && !status.IsCorruption()) return status;
  failed_writes_.fetch_add(1);
  std::lock_guard<std::mutex> lock(health_mu_);
  if (!write_failing_.exchange(true))
    logger()->error("event=writes_failing error=\"{}\"", status.ToString());
  last_write_error_ = status;
  return status;
}

Status Store::write_health() const {
  if (!write_failing_.load()) return Status::OK();
  std::lock_guard<std::mutex> lock(health_mu_);
  return last_write_error_;
}

Result<uint64_t> Store::next_id(int kind) {
  IdAllocator& ids = *ids_[kind];
  return ids.allocate([&](uint64_t limit) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return note_write(from_rocksdb(
        h_->db->Put(wo, h_->cf[kCfMeta], keys::id_counter(ids.name()), keys::u64(limit)),
        "reserve " + ids.name() + " ids"));
  });
}

Result<std::vector<Store::Row>> Store::scan_page(int cf, const std::string& prefix,
                                                 const PageRequest& page, bool newest_first,
                                                 uint64_t* next_cursor) {
  const size_t limit = std::clamp<size_t>(page.limit, 1, 1000);
  std::vector<Row> rows;
  *next_cursor = 0;
  std::unique_ptr<rocksdb::Iterator> it(h_->db->NewIterator(rocksdb::ReadOptions(), h_->cf[cf]));
  const size_t id_pos = prefix.size();
  auto in_range = [&] {
    if (!it->Valid()) return false;
    rocksdb::Slice k = it->key();
    return k.size() == id_pos + 8 && k.starts_with(prefix);
  };
  if (newest_first) {
    if (page.cursor == 1) return rows;  // nothing below id 1
    it->SeekForPrev(prefix + keys::u64(page.cursor == 0 ? UINT64_MAX : page.cursor - 1));
  } else {
    if (page.cursor == UINT64_MAX) return rows;
    it->Seek(prefix + keys::u64(page.cursor + 1));
  }
  while (in_range()) {
    const uint64_t id = *keys::get_u64(it->key().ToStringView(), id_pos);
    if (rows.size() == limit) {
      *next_cursor = rows.back().id;  // there is at least one more
      break;
    }
    rows.push_back({id, it->value().ToString()});
    if (newest_first) {
      it->Prev();
    } else {
      it->Next();
    }
  }
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan " + std::string(cf_name(cf))));
  return rows;
}

// --- chat log ---

namespace {
bool valid_role(const std::string& r) {
  return r == "system" || r == "user" || r == "assistant" || r == "tool";
}
}  // namespace

Result<Conversation> Store::create_conversation(Conversation c) {
  auto id = next_id(kIdConversation);
  if (!id.ok()) return id.status();
  c.id = *id;
  if (c.created_ms == 0) c.created_ms = now_ms();
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfConversations], keys::conversation(c.id), encode(c));
  KAIZEN_RETURN_IF_ERROR(write(&batch, options_.sync_chat_log));
  return c;
}

Result<Conversation> Store::get_conversation(uint64_t id) {
  return get_record<Conversation>(kCfConversations, keys::conversation(id));
}

Result<Page<Conversation>> Store::list_conversations(const PageRequest& page) {
  return list_records<Conversation>(kCfConversations, "", page, /*newest_first=*/true);
}

Result<Message> Store::append_message(Message m) {
  if (!valid_role(m.role)) {
    return Status::InvalidArgument("message role must be system, user, assistant or tool, not '" +
                                   m.role + "'");
  }
  // The conversation must exist; a point lookup on a hot key is cheap (block cache).
  std::string ignored;
  rocksdb::Status rs = h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfConversations],
                                   keys::conversation(m.conversation_id), &ignored);
  if (rs.IsNotFound()) {
    return Status::NotFound("conversation " + std::to_string(m.conversation_id) +
                            " does not exist");
  }
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(rs, "read conversation"));
  if (m.id == 0) {
    auto id = next_id(kIdMessage);
    if (!id.ok()) return id.status();
    m.id = *id;
  }
  if (m.created_ms == 0) m.created_ms = now_ms();
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfMessages], keys::message(m.conversation_id, m.id), encode(m));
  batch.Put(h_->cf[kCfMessages], keys::message_index(m.id), keys::u64(m.conversation_id));
  KAIZEN_RETURN_IF_ERROR(write(&batch, options_.sync_chat_log));
  return m;
}

Result<uint64_t> Store::reserve_message_id() { return next_id(kIdMessage); }

Result<Message> Store::get_message(uint64_t id) {
  std::string conv;
  const std::string index_key = keys::message_index(id);
  rocksdb::Status rs = h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfMessages], index_key, &conv);
  if (rs.IsNotFound()) return Status::NotFound("message " + std::to_string(id) + " not found");
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(rs, "read " + where(kCfMessages, index_key)));
  auto conversation_id = keys::get_u64(conv);
  if (!conversation_id || conv.size() != 8) {
    return Status::Corruption(where(kCfMessages, index_key) + ": index value is not 8 bytes");
  }
  return get_record<Message>(kCfMessages, keys::message(*conversation_id, id));
}

Result<Page<Message>> Store::list_messages(uint64_t conversation_id, const PageRequest& page) {
  return list_records<Message>(kCfMessages, keys::tagged('m', conversation_id), page,
                               /*newest_first=*/false);
}

// --- runs ---

Result<Run> Store::create_run(Run run) {
  auto id = next_id(kIdRun);
  if (!id.ok()) return id.status();
  run.id = *id;
  run.state = RunState::kRunning;
  if (run.started_ms == 0) run.started_ms = now_ms();
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfRuns], keys::run(run.id), encode(run));
  KAIZEN_RETURN_IF_ERROR(write(&batch, /*sync=*/true));
  return run;
}

Status Store::update_run(const Run& run) {
  std::lock_guard<std::mutex> lock(write_mu_);
  std::string ignored;
  rocksdb::Status rs =
      h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfRuns], keys::run(run.id), &ignored);
  if (rs.IsNotFound()) return Status::NotFound("run " + std::to_string(run.id) + " not found");
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(rs, "read run"));
  rocksdb::WriteBatch batch;
  batch.Put(h_->cf[kCfRuns], keys::run(run.id), encode(run));
  return write(&batch, /*sync=*/true);
}

Result<Run> Store::get_run(uint64_t id) {
  return get_record<Run>(kCfRuns, keys::run(id));
}

Result<Page<Run>> Store::list_runs(const PageRequest& page) {
  return list_records<Run>(kCfRuns, "", page, /*newest_first=*/true);
}

}  // namespace kaizen::storage
