// kaizenctl db backup | restore | verify | import: offline commands on the state
// directory (kaizend must be stopped: the database is locked while it runs).
//
// A backup directory B holds B/db (RocksDB BackupEngine, incremental) and B/adapters
// (copies of the published adapter directories, vNNNNNN, copied once each).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "daemon/ctl/command.h"
#include "daemon/ctl/flags.h"
#include "daemon/ctl/online_commands.h"
#include "storage/import.h"
#include "storage/store.h"

namespace kaizen::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::Status;

const char* kUsage =
    "kaizenctl db backup  --state-dir D --out B        back up D/db and D/adapters into B\n"
    "kaizenctl db backup  [--dir B] [--socket S]       ask the running kaizend for a backup\n"
    "kaizenctl db restore --backup B --state-dir D [--force]\n"
    "                                                  restore the latest backup into D\n"
    "kaizenctl db verify  --backup B                   check checksums, records, adapters\n"
    "kaizenctl db import  --state-dir D FILE.jsonl     import OpenAI chat JSONL as approved\n"
    "                                                  knowledge (idempotent)\n"
    "Every command takes --json. kaizend must not be running (the database is locked).\n"
    "Exit codes: 0 ok, 1 failed (import: some lines were bad; the good ones are stored),\n"
    "2 usage, 3 not found.\n";

int fail(const Status& s, bool as_json) {
  if (as_json) {
    std::cout << json{{"ok", false}, {"error", s.ToString()}}.dump(2) << "\n";
  } else {
    std::fprintf(stderr, "kaizenctl db: %s\n", s.ToString().c_str());
  }
  return s.IsNotFound() ? kExitNotFound : kExitFailure;
}

void no_positional(const Flags& f) {
  if (!f.positional().empty()) throw FlagError("unexpected argument '" + f.positional()[0] + "'");
}

std::string db_dir(const std::string& state_dir) {
  return (fs::path(state_dir) / "db").string();
}

// Copies adapter directories vNNNNNN from `from` into `to`, skipping ones already there
// and in-progress ".tmp-*" directories. Returns how many were copied.
Status copy_adapters(const fs::path& from, const fs::path& to, int* copied) {
  *copied = 0;
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return Status::OK();
  fs::create_directories(to, ec);
  if (ec) return Status::IOError(to.string() + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.empty() || name[0] != 'v') continue;
    const fs::path target = to / name;
    if (fs::exists(target)) continue;
    const fs::path tmp = to / (".tmp-" + name);
    fs::remove_all(tmp, ec);
    fs::copy(entry.path(), tmp, fs::copy_options::recursive, ec);
    if (!ec) fs::rename(tmp, target, ec);
    if (ec) return Status::IOError("copy " + entry.path().string() + ": " + ec.message());
    ++*copied;
  }
  if (ec) return Status::IOError(from.string() + ": " + ec.message());
  return Status::OK();
}

int backup(const std::vector<std::string>& args) {
  Flags f(args, {"state-dir", "out"});
  no_positional(f);
  const std::string state = f.require("state-dir"), out = f.require("out");
  storage::StoreOptions o;
  o.create_if_missing = false;
  auto store = storage::Store::open(db_dir(state), o);
  if (!store.ok()) return fail(store.status(), f.json());
  storage::BackupDescription made;
  Status s = (*store)->backup((fs::path(out) / "db").string(), &made);
  store->reset();
  if (!s.ok()) return fail(s, f.json());
  int copied = 0;
  s = copy_adapters(fs::path(state) / "adapters", fs::path(out) / "adapters", &copied);
  if (!s.ok()) return fail(s, f.json());
  if (f.json()) {
    std::cout
        << json{{"ok", true},          {"backup_id", made.id},      {"size_bytes", made.size_bytes},
                {"files", made.files}, {"adapters_copied", copied}, {"out", out}}
               .dump(2)
        << "\n";
  } else {
    std::printf("backup %u written to %s (%llu bytes in %u files; %d new adapter dirs)\n", made.id,
                out.c_str(), static_cast<unsigned long long>(made.size_bytes), made.files, copied);
  }
  return kExitOk;
}

int restore(const std::vector<std::string>& args) {
  Flags f(args, {"backup", "state-dir"}, {"force"});
  no_positional(f);
  const std::string backup_dir = f.require("backup"), state = f.require("state-dir");
  const std::string db = db_dir(state);
  std::error_code ec;
  if (fs::exists(fs::path(db) / "CURRENT", ec) && !f.has("force")) {
    return fail(Status::AlreadyExists(db + " already holds a database; pass --force to replace it"),
                f.json());
  }
  Status s = storage::Store::restore((fs::path(backup_dir) / "db").string(), db);
  if (!s.ok()) return fail(s, f.json());
  int copied = 0;
  s = copy_adapters(fs::path(backup_dir) / "adapters", fs::path(state) / "adapters", &copied);
  if (!s.ok()) return fail(s, f.json());
  if (f.json()) {
    std::cout << json{{"ok", true}, {"db", db}, {"adapters_copied", copied}}.dump(2) << "\n";
  } else {
    std::printf("restored %s into %s (%d adapter dirs copied)\n", backup_dir.c_str(), db.c_str(),
                copied);
  }
  return kExitOk;
}

int verify(const std::vector<std::string>& args) {
  Flags f(args, {"backup"});
  no_positional(f);
  const fs::path backup_dir = f.require("backup");
  auto backups = storage::Store::verify_backup((backup_dir / "db").string());
  if (!backups.ok()) return fail(backups.status(), f.json());

  // Restore the latest backup into a scratch directory and read every record.
  std::error_code ec;
  const fs::path scratch =
      fs::temp_directory_path() / ("kaizenctl-verify-" + std::to_string(getpid()));
  fs::remove_all(scratch, ec);
  Status s = storage::Store::restore((backup_dir / "db").string(), scratch.string());
  storage::VerifyReport report;
  std::vector<std::string> missing_adapters;
  if (s.ok()) {
    storage::StoreOptions o;
    o.create_if_missing = false;
    auto store = storage::Store::open(scratch.string(), o);
    s = store.status();
    if (s.ok()) s = (*store)->verify_records(&report);
    if (s.ok()) {
      storage::PageRequest page{0, 1000};
      do {
        auto adapters = (*store)->list_adapters(page);
        if (!adapters.ok()) {
          s = adapters.status();
          break;
        }
        for (const auto& a : adapters->items) {
          if (a.state == storage::AdapterState::kRejected || a.path.empty()) continue;
          if (!fs::is_directory(backup_dir / a.path, ec)) {
            missing_adapters.push_back("v" + std::to_string(a.version) + " (" + a.path + ")");
          }
        }
        page.cursor = adapters->next_cursor;
      } while (page.cursor != 0);
    }
  }
  fs::remove_all(scratch, ec);
  if (!s.ok()) return fail(s, f.json());

  const bool ok = report.problems.empty() && missing_adapters.empty();
  if (f.json()) {
    json j{{"ok", ok},
           {"backups", json::array()},
           {"records", report.records},
           {"problems", report.problems},
           {"missing_adapters", missing_adapters}};
    for (const auto& b : *backups) {
      j["backups"].push_back({{"id", b.id},
                              {"timestamp_s", b.timestamp_s},
                              {"size_bytes", b.size_bytes},
                              {"files", b.files}});
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%zu backup(s) in %s, checksums ok:\n", backups->size(), backup_dir.c_str());
    for (const auto& b : *backups) {
      std::printf("  backup %u  %lld  %llu bytes  %u files\n", b.id,
                  static_cast<long long>(b.timestamp_s),
                  static_cast<unsigned long long>(b.size_bytes), b.files);
    }
    std::printf("latest backup records:");
    for (const auto& [cf, n] : report.records) {
      std::printf(" %s=%llu", cf.c_str(), static_cast<unsigned long long>(n));
    }
    std::printf("\n");
    for (const auto& p : report.problems) std::printf("problem: %s\n", p.c_str());
    for (const auto& m : missing_adapters)
      std::printf("missing adapter directory: %s\n", m.c_str());
    std::printf("%s\n", ok ? "backup OK" : "backup has problems");
  }
  return ok ? kExitOk : kExitFailure;
}

int import(const std::vector<std::string>& args) {
  Flags f(args, {"state-dir"});
  const std::string state = f.require("state-dir");
  if (f.positional().size() != 2) throw FlagError("import takes exactly one FILE.jsonl");
  const std::string file = f.positional()[1];
  auto store = storage::Store::open(db_dir(state));
  if (!store.ok()) return fail(store.status(), f.json());
  storage::ImportReport report;
  Status s = storage::import_chat_jsonl_file(**store, file, &report);
  if (!s.ok()) return fail(s, f.json());
  const std::string name = fs::path(file).filename().string();
  if (f.json()) {
    json errors = json::array();
    for (const auto& e : report.errors) errors.push_back({{"line", e.line}, {"reason", e.reason}});
    std::cout << json{{"ok", report.errors.empty()},
                      {"file", file},
                      {"lines", report.lines},
                      {"imported", report.imported},
                      {"duplicates", report.duplicates},
                      {"errors", errors},
                      {"example_ids", report.example_ids}}
                     .dump(2)
              << "\n";
  } else {
    for (const auto& e : report.errors) {
      std::fprintf(stderr, "%s:%llu: %s\n", name.c_str(), static_cast<unsigned long long>(e.line),
                   e.reason.c_str());
    }
    std::printf("%s: %llu lines, %llu imported, %llu already present, %zu bad\n", name.c_str(),
                static_cast<unsigned long long>(report.lines),
                static_cast<unsigned long long>(report.imported),
                static_cast<unsigned long long>(report.duplicates), report.errors.size());
  }
  return report.errors.empty() ? kExitOk : kExitFailure;
}

int db_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  // Offline tool: the storage layer's info lines (database opened, ...) are noise here.
  spdlog::set_level(spdlog::level::warn);
  const std::string& sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    for (const auto& a : rest) {
      if (a == "--help") {
        std::fputs(kUsage, stdout);
        return kExitOk;
      }
    }
    if (sub == "backup") {
      // Without --state-dir the running kaizend makes the backup (online_db_backup.cc).
      const bool offline = std::any_of(rest.begin(), rest.end(), [](const std::string& a) {
        return a == "--state-dir" || a.rfind("--state-dir=", 0) == 0;
      });
      return offline ? backup(rest) : online_db_backup(args);
    }
    if (sub == "restore") return restore(rest);
    if (sub == "verify") return verify(rest);
    if (sub == "import") return import(args);  // positional()[0] is "import"
    std::fprintf(stderr, "kaizenctl db: unknown subcommand '%s'\n\n%s", sub.c_str(), kUsage);
    return kExitUsage;
  } catch (const FlagError& e) {
    std::fprintf(stderr, "kaizenctl db %s: %s\n\n%s", sub.c_str(), e.what(), kUsage);
    return kExitUsage;
  }
}

}  // namespace
}  // namespace kaizen::ctl

KAIZEN_CTL_COMMAND("db", "offline database backup, restore, verify, knowledge import",
                   kaizen::ctl::db_command);
