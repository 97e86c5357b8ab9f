// The disk made full or failing under a Store, with tests/fault's LD_PRELOAD injector: a
// child process (this binary re-exec'd into a DISABLED_DiskFaultChild test, the injector
// preloaded) writes, switches its own database directory to ENOSPC or EIO, checks what
// the Store answers, and switches it back. The parent then reopens the database and
// checks that every acknowledged write is there and the refused ones are not.
//
// Before the Store sent RocksDB's log to spdlog, the first failed write on a full disk
// aborted the process (an assertion in Debian's RocksDB, after its LOG file write failed).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "fault/fault_control.h"
#include "storage/store.h"
#include "store_test_util.h"

namespace kaizen::storage {
namespace {

using kaizen::testing::FaultControl;

Example approved_example(const std::string& answer) {
  Example e;
  e.messages = {{"user", "q"}, {"assistant", answer}};
  e.state = ExampleState::kApproved;
  return e;
}

// The ids of every example whose answer is `answer`.
std::vector<uint64_t> examples_answering(Store& store, const std::string& answer) {
  std::vector<uint64_t> ids;
  for (ExampleState st : {ExampleState::kPending, ExampleState::kApproved}) {
    PageRequest page{0, 1000};
    do {
      auto p = store.list_examples(st, page);
      EXPECT_OK(p.status());
      if (!p.ok()) break;
      for (const auto& e : p->items) {
        if (e.messages.back().content == answer) ids.push_back(e.id);
      }
      page.cursor = p->next_cursor;
    } while (page.cursor);
  }
  return ids;
}

// Every batch all or nothing, every record decodable.
void expect_verified(Store& store) {
  VerifyReport report;
  EXPECT_OK(store.verify_records(&report));
  for (const auto& p : report.problems) ADD_FAILURE() << p;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Runs in the child, under the injector. Full disk: writes are refused as NoSpace (not
// acknowledged), reads and backups behave, and writes work again once space returns,
// without reopening.
TEST(DISABLED_DiskFaultChild, FullDiskThenSpaceReturns) {
  const std::string dir =
      env("KAIZEN_DISK_DIR");  // the disk that fails; the control file is outside
  FaultControl fault(env("KAIZEN_FAULT_CTL"), dir);
  auto opened = Store::open(dir + "/db");
  ASSERT_OK(opened.status());
  Store& store = **opened;
  auto conv = store.create_conversation({});
  ASSERT_OK(conv.status());
  ASSERT_OK(store.add_example(approved_example("before")).status());

  fault.set(FaultControl::kNoSpace);
  auto refused = store.add_example(approved_example("during"));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsNoSpace()) << refused.status().ToString();
  Message m;
  m.conversation_id = conv->id;
  m.role = "user";
  m.content = "during";
  EXPECT_TRUE(store.append_message(m).status().IsNoSpace());
  EXPECT_TRUE(store.write_health().IsNoSpace()) << store.write_health().ToString();
  EXPECT_GE(store.failed_writes(), 2u);
  // Reads are served from what is stored.
  EXPECT_EQ(examples_answering(store, "before").size(), 1u);
  Status backup = store.backup(dir + "/backups");
  EXPECT_FALSE(backup.ok());  // reported, not half made and called done
  EXPECT_TRUE(backup.IsNoSpace() || backup.IsIOError()) << backup.ToString();

  fault.set(FaultControl::kOff);
  // RocksDB's error handler resumes by itself once writes succeed again; the first
  // writes after space returns may still be refused while it does.
  const auto t0 = std::chrono::steady_clock::now();
  Result<Example> after = store.add_example(approved_example("after"));
  while (!after.ok() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
    ASSERT_TRUE(after.status().IsNoSpace() || after.status().IsBusy()) << after.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling for the heal itself
    after = store.add_example(approved_example("after"));
  }
  ASSERT_OK(after.status());
  std::printf(
      "disk fault: writes resumed %.0f ms after space returned\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_OK(store.write_health());
  EXPECT_OK(store.backup(dir + "/backups"));
}

// Runs in the child, under the injector. A failing disk: writes are refused as IOError,
// reads keep working, nothing crashes (RocksDB then writes again only after a reopen,
// which the parent test does).
TEST(DISABLED_DiskFaultChild, FailingDisk) {
  const std::string dir =
      env("KAIZEN_DISK_DIR");  // the disk that fails; the control file is outside
  FaultControl fault(env("KAIZEN_FAULT_CTL"), dir);
  auto opened = Store::open(dir + "/db");
  ASSERT_OK(opened.status());
  Store& store = **opened;
  ASSERT_OK(store.add_example(approved_example("before")).status());
  fault.set(FaultControl::kIoError);
  for (int i = 0; i < 3; ++i) {
    auto refused = store.add_example(approved_example("during"));
    ASSERT_FALSE(refused.ok());
    EXPECT_TRUE(refused.status().IsIOError()) << refused.status().ToString();
  }
  EXPECT_TRUE(store.write_health().IsIOError());
  EXPECT_EQ(examples_answering(store, "before").size(), 1u);
  fault.set(FaultControl::kOff);
}

// Runs `child` under the injector; returns its log when it did not pass.
void run_child(const std::string& child, const test::TempDir& tmp) {
  const std::string lib = FaultControl::library();
  ASSERT_TRUE(std::filesystem::exists(lib)) << lib << " not built";
  pid_t pid = test::spawn_helper(child,
                                 {{"LD_PRELOAD", lib},
                                  {"KAIZEN_FAULT_CTL", tmp.sub("fault.ctl")},
                                  {"KAIZEN_DISK_DIR", tmp.sub("disk")}},
                                 tmp.sub("child.log"));
  ASSERT_GT(pid, 0);
  const int code = test::wait_child(pid);
  const std::string log = test::read_file(tmp.sub("child.log"));
  ASSERT_EQ(code, 0) << "child " << child << " exited " << code << ":\n" << log;
  ASSERT_NE(log.find("[  PASSED  ] 1 test"), std::string::npos) << log;  // it ran, and passed
  if (auto at = log.find("disk fault:"); at != std::string::npos) {
    std::printf("%s", log.substr(at, log.find('\n', at) - at + 1).c_str());
  }
}

TEST(DiskFault, FullDiskRefusesWritesKeepsReadsAndHealsWhenSpaceReturns) {
  test::TempDir tmp;
  run_child("DISABLED_DiskFaultChild.FullDiskThenSpaceReturns", tmp);
  if (HasFatalFailure()) return;
  auto store = Store::open(tmp.sub("disk/db"));
  ASSERT_OK(store.status());
  EXPECT_EQ(examples_answering(**store, "before").size(), 1u);
  EXPECT_EQ(examples_answering(**store, "after").size(), 1u);
  EXPECT_TRUE(examples_answering(**store, "during").empty());  // refused means not stored
  expect_verified(**store);
  auto backups = Store::verify_backup(tmp.sub("disk/backups"));
  ASSERT_OK(backups.status());
  EXPECT_EQ(backups->size(), 1u);  // the one made after space returned
}

TEST(DiskFault, FailingDiskRefusesWritesAndReopensWithEveryAcknowledgedWrite) {
  test::TempDir tmp;
  run_child("DISABLED_DiskFaultChild.FailingDisk", tmp);
  if (HasFatalFailure()) return;
  auto store = Store::open(tmp.sub("disk/db"));
  ASSERT_OK(store.status());
  EXPECT_EQ(examples_answering(**store, "before").size(), 1u);
  expect_verified(**store);
}

}  // namespace
}  // namespace kaizen::storage
