// Store: backups (RocksDB BackupEngine) and the record-level consistency check.
#include <filesystem>
#include <set>

#include <rocksdb/env.h>
#include <rocksdb/utilities/backup_engine.h>

#include "storage/keys.h"
#include "storage/store.h"
#include "storage/store_internal.h"

namespace kaizen::storage {

namespace fs = std::filesystem;

namespace {

BackupDescription describe(const rocksdb::BackupInfo& info) {
  BackupDescription d;
  d.id = info.backup_id;
  d.timestamp_s = info.timestamp;
  d.size_bytes = info.size;
  d.files = info.number_files;
  return d;
}

}  // namespace

Status Store::backup(const std::string& backup_dir, BackupDescription* created) {
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) return Status::IOError(backup_dir + ": cannot create directory: " + ec.message());
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus io = rocksdb::BackupEngine::Open(rocksdb::BackupEngineOptions(backup_dir),
                                                     rocksdb::Env::Default(), &raw);
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(io, "open backup directory " + backup_dir));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions opts;
  opts.flush_before_backup = true;  // no WAL replay needed on restore
  rocksdb::BackupID id = 0;
  io = engine->CreateNewBackup(opts, h_->db.get(), &id);
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(io, "back up " + dir_ + " to " + backup_dir));
  if (created) {
    rocksdb::BackupInfo info;
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(engine->GetBackupInfo(id, &info), "read backup info"));
    *created = describe(info);
  }
  return Status::OK();
}

Status Store::restore(const std::string& backup_dir, const std::string& db_dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(backup_dir) / "meta", ec)) {
    return Status::NotFound(backup_dir + ": not a kaizen backup directory (no meta/)");
  }
  fs::create_directories(db_dir, ec);
  if (ec) return Status::IOError(db_dir + ": cannot create directory: " + ec.message());
  // Refuse to restore under a running database: take its lock for the duration.
  rocksdb::Env* env = rocksdb::Env::Default();
  rocksdb::FileLock* lock = nullptr;
  rocksdb::Status ls = env->LockFile((fs::path(db_dir) / "LOCK").string(), &lock);
  if (!ls.ok()) {
    return Status::Busy(db_dir + ": database is in use (" + ls.ToString() +
                        "); stop kaizend before restoring");
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus io =
      rocksdb::BackupEngineReadOnly::Open(rocksdb::BackupEngineOptions(backup_dir), env, &raw);
  Status s = from_rocksdb(io, "open backup directory " + backup_dir);
  if (s.ok()) {
    std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
    std::vector<rocksdb::BackupInfo> infos;
    engine->GetBackupInfo(&infos);
    if (infos.empty()) {
      s = Status::NotFound(backup_dir + ": holds no intact backup");
    } else {
      rocksdb::RestoreOptions opts;
      opts.keep_log_files = false;
      s = from_rocksdb(engine->RestoreDBFromLatestBackup(opts, db_dir, db_dir),
                       "restore " + backup_dir + " into " + db_dir);
    }
  }
  env->UnlockFile(lock).PermitUncheckedError();
  return s;
}

Result<std::vector<BackupDescription>> Store::verify_backup(const std::string& backup_dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(backup_dir) / "meta", ec)) {
    return Status::NotFound(backup_dir + ": not a kaizen backup directory (no meta/)");
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus io = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::BackupEngineOptions(backup_dir), rocksdb::Env::Default(), &raw);
  KAIZEN_RETURN_IF_ERROR(from_rocksdb(io, "open backup directory " + backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupID> corrupt;
  engine->GetCorruptedBackups(&corrupt);
  if (!corrupt.empty()) {
    return Status::Corruption(backup_dir + ": backup " + std::to_string(corrupt.front()) +
                              " has a damaged or missing meta file");
  }
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  if (infos.empty()) return Status::NotFound(backup_dir + ": holds no backups");
  std::vector<BackupDescription> out;
  for (const auto& info : infos) {
    io = engine->VerifyBackup(info.backup_id, /*verify_with_checksum=*/true);
    if (!io.ok()) {
      return Status::Corruption(backup_dir + ": backup " + std::to_string(info.backup_id) +
                                " failed verification: " + io.ToString());
    }
    out.push_back(describe(info));
  }
  return out;
}

// --- record-level check ---

namespace {

template <typename T>
bool check_decode(const rocksdb::Iterator& it, int cf, VerifyReport* report, T* out) {
  Status s = decode(it.value().ToStringView(), where(cf, it.key().ToString()), out);
  if (!s.ok()) {
    report->problems.push_back(s.ToString());
    return false;
  }
  ++report->records[cf_name(cf)];
  return true;
}

}  // namespace

Status Store::verify_records(VerifyReport* report) {
  *report = VerifyReport();
  auto iter = [&](int cf) {
    return std::unique_ptr<rocksdb::Iterator>(
        h_->db->NewIterator(rocksdb::ReadOptions(), h_->cf[cf]));
  };
  auto problem = [&](std::string p) { report->problems.push_back(std::move(p)); };

  for (int cf : {kCfConversations, kCfRuns, kCfAdapters}) {
    auto it = iter(cf);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (cf == kCfConversations) {
        Conversation r;
        check_decode(*it, cf, report, &r);
      } else if (cf == kCfRuns) {
        Run r;
        check_decode(*it, cf, report, &r);
      } else {
        Adapter r;
        check_decode(*it, cf, report, &r);
      }
    }
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), std::string("scan ") + cf_name(cf)));
  }

  // messages: every index entry points at a row of its conversation.
  {
    auto it = iter(kCfMessages);
    std::set<uint64_t> rows;
    std::map<uint64_t, uint64_t> index;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      if (key[0] == 'm' && key.size() == 17) {
        Message m;
        check_decode(*it, kCfMessages, report, &m);
        rows.insert(*keys::get_u64(key, 9));
      } else if (key[0] == 'x') {
        auto conv = keys::get_u64(it->value().ToStringView());
        if (conv) index[*keys::get_u64(key, 1)] = *conv;
      } else {
        problem(where(kCfMessages, key) + ": unknown key");
      }
    }
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan messages"));
    for (const auto& [id, conv] : index) {
      if (!rows.count(id)) problem("messages/x#" + std::to_string(id) + ": index without message");
    }
  }

  // examples: state index and hash index agree with the records.
  std::map<uint64_t, Example> examples;
  {
    auto it = iter(kCfExamples);
    // (state, seq) -> example id
    std::map<std::pair<int, uint64_t>, uint64_t> state_index;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      if (key[0] == 'e') {
        Example e;
        if (check_decode(*it, kCfExamples, report, &e)) examples[e.id] = e;
      } else if (key[0] == 's' && key.size() == 10) {
        auto id = keys::get_u64(it->value().ToStringView());
        if (!id) {
          problem(where(kCfExamples, key) + ": index value is not 8 bytes");
          continue;
        }
        state_index[{static_cast<uint8_t>(key[1]), *keys::get_u64(key, 2)}] = *id;
      } else if (key[0] != 'h') {
        problem(where(kCfExamples, key) + ": unknown key");
      }
    }
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan examples"));
    for (const auto& [id, e] : examples) {
      auto entry = state_index.find({static_cast<int>(e.state), e.state_seq});
      if (entry == state_index.end() || entry->second != id) {
        problem("examples/e#" + std::to_string(id) + ": missing from the " + to_string(e.state) +
                " index");
      }
    }
    for (const auto& [state_seq, id] : state_index) {
      auto found = examples.find(id);
      if (found == examples.end() || static_cast<int>(found->second.state) != state_seq.first ||
          found->second.state_seq != state_seq.second) {
        problem("examples/s#" + std::to_string(state_seq.first) + "#" +
                std::to_string(state_seq.second) + ": stale state index entry");
      }
    }
  }

  // feedback <-> correction example links.
  {
    auto it = iter(kCfFeedback);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Feedback f;
      if (!check_decode(*it, kCfFeedback, report, &f) || f.example_id == 0) continue;
      auto e = examples.find(f.example_id);
      if (e == examples.end() || e->second.feedback_id != f.id) {
        problem("feedback/#" + std::to_string(f.id) + ": correction example " +
                std::to_string(f.example_id) + " missing or not linked back");
      }
    }
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan feedback"));
  }

  // replay slots decode; active adapter pointer names an active adapter.
  {
    auto it = iter(kCfReplay);
    for (it->Seek("r"); it->Valid() && it->key().starts_with("r"); it->Next()) {
      ReplayEntry r;
      check_decode(*it, kCfReplay, report, &r);
    }
    KAIZEN_RETURN_IF_ERROR(from_rocksdb(it->status(), "scan replay"));
  }
  auto active = active_adapter_version();
  if (!active.ok()) {
    problem(active.status().ToString());
  } else {
    auto it = iter(kCfAdapters);
    int active_records = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Adapter a;
      Status s = decode(it->value().ToStringView(), where(kCfAdapters, it->key().ToString()), &a);
      if (s.ok() && a.state == AdapterState::kActive) {
        ++active_records;
        if (a.version != *active) {
          problem("adapters/#" + std::to_string(a.version) + ": state active but meta points at v" +
                  std::to_string(*active));
        }
      }
    }
    if (*active != 0 && active_records == 0) {
      problem("meta/active_adapter points at v" + std::to_string(*active) +
              ", which is not an active adapter record");
    }
  }
  return Status::OK();
}

}  // namespace kaizen::storage
