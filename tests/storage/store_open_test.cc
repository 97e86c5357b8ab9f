// Opening a Store: new, missing and empty directories, locks (same process and another
// process), schema newer than the code, migration from an older schema, stale runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "storage/keys.h"
#include "storage/store.h"
#include "store_test_util.h"

namespace kaizen::storage {
namespace {

using test::TempDir;

TEST(StoreOpenTest, CreatesMissingDirectoryWithParents) {
  TempDir tmp;
  const std::string dir = tmp.sub("state/db");
  auto store = Store::open(dir);
  ASSERT_OK(store.status());
  EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
}

TEST(StoreOpenTest, MissingDirectoryWithoutCreateIsNotFound) {
  TempDir tmp;
  StoreOptions o;
  o.create_if_missing = false;
  auto store = Store::open(tmp.sub("nope"), o);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.status().IsNotFound()) << store.status().ToString();
  EXPECT_NE(store.status().message().find("does not exist"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp.sub("nope")));
}

TEST(StoreOpenTest, EmptyDirectory) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.sub("empty"));
  StoreOptions o;
  o.create_if_missing = false;
  auto refused = Store::open(tmp.sub("empty"), o);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsNotFound()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("empty"), std::string::npos);
  o.create_if_missing = true;
  ASSERT_OK(Store::open(tmp.sub("empty"), o).status());
}

TEST(StoreOpenTest, PathThatIsAFileIsIOError) {
  TempDir tmp;
  std::ofstream(tmp.sub("file")) << "x";
  auto store = Store::open(tmp.sub("file"));
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.status().IsIOError()) << store.status().ToString();
}

TEST(StoreOpenTest, SecondOpenInSameProcessIsBusy) {
  TempDir tmp;
  auto first = Store::open(tmp.path());
  ASSERT_OK(first.status());
  auto second = Store::open(tmp.path());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsBusy()) << second.status().ToString();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
  first->reset();  // closing releases the lock
  EXPECT_OK(Store::open(tmp.path()).status());
}

// Helper run in a child process by the next test.
TEST(DISABLED_LockChild, TryOpen) {
  const char* dir = std::getenv("KAIZEN_LOCK_DIR");
  ASSERT_NE(dir, nullptr);
  auto store = Store::open(dir);
  std::ofstream(std::string(dir) + "/../child-status") << store.status().ToString();
}

TEST(StoreOpenTest, OpenFromAnotherProcessIsBusy) {
  TempDir tmp;
  const std::string dir = tmp.sub("db");
  auto store = Store::open(dir);
  ASSERT_OK(store.status());
  pid_t pid = test::spawn_helper("DISABLED_LockChild.TryOpen", {{"KAIZEN_LOCK_DIR", dir}},
                                 tmp.sub("child.log"));
  ASSERT_GT(pid, 0);
  ASSERT_EQ(test::wait_child(pid), 0) << test::read_file(tmp.sub("child.log"));
  const std::string child_status = test::read_file(tmp.sub("child-status"));
  EXPECT_EQ(child_status.rfind("Busy: ", 0), 0u) << child_status;
  EXPECT_NE(child_status.find("stop kaizend"), std::string::npos) << child_status;
}

TEST(StoreOpenTest, NewerSchemaIsRefusedWithClearMessage) {
  TempDir tmp;
  ASSERT_OK(Store::open(tmp.path()).status());
  std::string v;
  keys::put_u32(&v, kSchemaVersion + 1);
  test::raw_put(tmp.path(), "meta", keys::kSchemaVersion, v);
  auto store = Store::open(tmp.path());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.status().IsNotSupported()) << store.status().ToString();
  EXPECT_NE(store.status().message().find("newer than this kaizen build"), std::string::npos);
  EXPECT_NE(store.status().message().find(std::to_string(kSchemaVersion + 1)), std::string::npos);
}

TEST(StoreOpenTest, OlderSchemaIsMigrated) {
  TempDir tmp;
  uint64_t id = 0;
  Example e;
  e.messages = {{"user", "what is CHOREI?"}, {"assistant", "a company"}};
  {
    auto store = Store::open(tmp.path());
    ASSERT_OK(store.status());
    auto added = (*store)->add_example(e);
    ASSERT_OK(added.status());
    id = added->id;
  }
  // Make it look like a schema-1 database: no content-hash index.
  std::string v;
  keys::put_u32(&v, 1);
  test::raw_put(tmp.path(), "meta", keys::kSchemaVersion, v);
  test::raw_delete(tmp.path(), "examples", keys::example_hash(content_hash(e.messages, e.tools_json)));
  {
    auto store = Store::open(tmp.path());
    ASSERT_OK(store.status());
    // The rebuilt index makes dedupe recognise the old example.
    auto again = (*store)->add_example(e, /*dedupe=*/true);
    ASSERT_FALSE(again.ok());
    EXPECT_TRUE(again.status().IsAlreadyExists()) << again.status().ToString();
    EXPECT_NE(again.status().message().find("#" + std::to_string(id)), std::string::npos);
  }
  std::string stored;
  auto store = Store::open(tmp.path());
  ASSERT_OK(store.status());
  VerifyReport report;
  ASSERT_OK((*store)->verify_records(&report));
  EXPECT_TRUE(report.problems.empty());
}

TEST(StoreOpenTest, DataWithoutSchemaVersionIsCorruption) {
  TempDir tmp;
  ASSERT_OK(Store::open(tmp.path()).status());
  test::raw_delete(tmp.path(), "meta", keys::kSchemaVersion);
  test::raw_put(tmp.path(), "runs", keys::run(1), "{}");
  auto store = Store::open(tmp.path());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.status().IsCorruption()) << store.status().ToString();
  EXPECT_NE(store.status().message().find("schema_version"), std::string::npos);
}

TEST(StoreOpenTest, RunningRunsBecomeInterruptedAtOpen) {
  TempDir tmp;
  uint64_t running = 0, done = 0;
  {
    auto store = Store::open(tmp.path());
    ASSERT_OK(store.status());
    auto r1 = (*store)->create_run(storage::Run{});
    auto r2 = (*store)->create_run(storage::Run{});
    ASSERT_OK(r1.status());
    ASSERT_OK(r2.status());
    running = r1->id;
    done = r2->id;
    storage::Run finished = *r2;
    finished.state = RunState::kRejected;
    finished.verdict = "retain drop 0.08 > 0.05";
    ASSERT_OK((*store)->update_run(finished));
  }
  auto store = Store::open(tmp.path());
  ASSERT_OK(store.status());
  auto r1 = (*store)->get_run(running);
  ASSERT_OK(r1.status());
  EXPECT_EQ(r1->state, RunState::kInterrupted);
  EXPECT_GT(r1->finished_ms, 0);
  auto r2 = (*store)->get_run(done);
  ASSERT_OK(r2.status());
  EXPECT_EQ(r2->state, RunState::kRejected);
  EXPECT_EQ(r2->verdict, "retain drop 0.08 > 0.05");
}

}  // namespace
}  // namespace kaizen::storage
