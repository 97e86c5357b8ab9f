// The adapter lifecycle on its own (daemon/learn/adapter_lifecycle.h): publish, reject,
// activate, rollback, pin, prune and recover() at each crash point of the publish
// protocol, against a real Store and registry, with random LoRA adapters for the tiny
// model (no training: what is under test is the bookkeeping).
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "daemon/learn/adapter_lifecycle.h"
#include "daemon/serve/adapter_registry.h"
#include "daemon/service.h"
#include "learning/adapter/peft.h"
#include "learning/model/tiny.h"
#include "storage/store.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon {
namespace {

namespace fs = std::filesystem;

class AdapterLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = model::tiny_config(model::TinyModelSpec{});
    open();
  }

  // (Re)opens the store, registry and lifecycle on the same state dir, as a restart does.
  void open(int64_t keep_versions = 5) {
    lifecycle_.reset();
    registry_.reset();
    store_.reset();
    auto st = storage::Store::open(dir_ / "db");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(*st);
    registry_ = std::make_unique<AdapterRegistry>(dir_.path().string(), config_, adapter::PeftLoadOptions{},
                                                  *store_);
    LifecycleOptions o;
    o.state_dir = dir_.path().string();
    o.keep_versions = keep_versions;
    lifecycle_ = std::make_unique<AdapterLifecycle>(o, *store_, *registry_,
                                                    [this](const std::string& key) { dropped_.push_back(key); });
  }

  Candidate candidate(uint64_t seed, std::vector<uint64_t> examples = {}) {
    auto a = adapter::make_peft_init_adapter(config_, 4, 8, false, adapter::parse_targets("all"), seed);
    torch::NoGradGuard g;
    for (auto& t : a->parameters()) t.normal_(0, 0.1);
    Candidate c;
    c.adapter = a;
    c.parent = registry_->active().version;
    c.run_id = seed;
    c.metrics = {{"learn_acc", 1.0}};
    c.example_ids = std::move(examples);
    return c;
  }

  uint64_t publish(uint64_t seed, std::vector<uint64_t> examples = {}) {
    auto v = lifecycle_->allocate_version();
    EXPECT_TRUE(v.ok());
    if (!v.ok()) return 0;
    auto sw = lifecycle_->publish(*v, candidate(seed, std::move(examples)));
    EXPECT_TRUE(sw.ok()) << (sw.ok() ? "" : sw.error().message);
    return *v;
  }

  uint64_t approved_example(const std::string& q) {
    storage::Example e;
    e.messages = {{"user", q}, {"assistant", "answer to " + q}};
    e.state = storage::ExampleState::kApproved;
    auto added = store_->add_example(e);
    EXPECT_TRUE(added.ok()) << added.status().ToString();
    return added.ok() ? added->id : 0;
  }

  storage::Adapter record(uint64_t v) {
    auto a = store_->get_adapter(v);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : storage::Adapter{};
  }
  fs::path files(uint64_t v) { return dir_.path() / record(v).path; }
  std::vector<std::string> adapter_dir() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_.path() / "adapters")) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  kaizen::testing::TempDir dir_;
  model::ModelConfig config_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<AdapterRegistry> registry_;
  std::unique_ptr<AdapterLifecycle> lifecycle_;
  std::vector<std::string> dropped_;
};

TEST_F(AdapterLifecycleTest, PublishWritesFilesRecordsActiveSwapsAndDropsTheOldVersionsCaches) {
  const uint64_t e1 = approved_example("q1");
  const uint64_t v1 = publish(1, {e1});
  EXPECT_EQ(registry_->active().version, v1);
  ASSERT_NE(registry_->active().adapter, nullptr);
  EXPECT_EQ(*store_->active_adapter_version(), v1);
  EXPECT_EQ(record(v1).state, storage::AdapterState::kActive);
  EXPECT_EQ(record(v1).path, "adapters/v000001");
  EXPECT_TRUE(fs::exists(files(v1) / "adapter_config.json"));
  EXPECT_TRUE(fs::exists(files(v1) / "adapter_model.safetensors"));
  EXPECT_EQ(adapter_dir(), std::vector<std::string>{"v000001"});  // no .tmp-* left
  EXPECT_EQ(store_->get_example(e1)->state, storage::ExampleState::kTrained);
  EXPECT_EQ(store_->get_example(e1)->first_adapter_version, v1);
  EXPECT_TRUE(dropped_.empty()) << "the base model's caches stay (model: base uses them)";

  const uint64_t v2 = publish(2);
  EXPECT_EQ(registry_->active().version, v2);
  EXPECT_EQ(record(v2).parent, v1);
  EXPECT_EQ(record(v1).state, storage::AdapterState::kRetired);
  EXPECT_EQ(dropped_, std::vector<std::string>{"v1"});
}

TEST_F(AdapterLifecycleTest, RejectedVersionKeepsFilesNeverServesUnpinnedAndNeverActivates) {
  auto v = lifecycle_->allocate_version();
  ASSERT_TRUE(v.ok());
  auto r = lifecycle_->reject(*v, candidate(1));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(record(*v).state, storage::AdapterState::kRejected);
  EXPECT_TRUE(fs::exists(files(*v) / "adapter_config.json"));
  EXPECT_EQ(registry_->active().version, 0u);
  EXPECT_FALSE(servable(record(*v)));
  EXPECT_TRUE(registry_->get(*v).status().IsNotFound());

  auto pinned = lifecycle_->pin(*v, true);
  ASSERT_TRUE(pinned.ok());
  EXPECT_TRUE(pinned->pinned);
  EXPECT_TRUE(servable(record(*v)));
  EXPECT_TRUE(registry_->get(*v).ok()) << "a pinned rejected version serves as kaizen@vN";
  auto act = lifecycle_->activate(*v);
  ASSERT_FALSE(act.ok());
  EXPECT_EQ(act.error().code, Errc::kConflict);
  EXPECT_NE(act.error().message.find("rejected"), std::string::npos) << act.error().message;
  EXPECT_EQ(registry_->active().version, 0u);
}

TEST_F(AdapterLifecycleTest, RollbackGoesToTheNewestOlderPublishedVersionThenToBase) {
  const uint64_t v1 = publish(1);
  auto rv = lifecycle_->allocate_version();
  ASSERT_TRUE(lifecycle_->reject(*rv, candidate(9)).ok());  // skipped by the default rollback
  const uint64_t v3 = publish(3);
  dropped_.clear();

  auto sw = lifecycle_->rollback(std::nullopt);
  ASSERT_TRUE(sw.ok()) << sw.error().message;
  EXPECT_EQ(sw->active, v1);
  EXPECT_EQ(sw->previous, v3);
  EXPECT_EQ(registry_->active().version, v1);
  EXPECT_EQ(*store_->active_adapter_version(), v1);
  EXPECT_EQ(dropped_, std::vector<std::string>{"v3"});

  sw = lifecycle_->rollback(std::nullopt);
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(sw->active, 0u);
  EXPECT_EQ(registry_->active().adapter, nullptr);
  EXPECT_EQ(*store_->active_adapter_version(), 0u);

  auto none = lifecycle_->rollback(std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::kNotFound);

  sw = lifecycle_->rollback(v3);  // roll forward to a named version
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(registry_->active().version, v3);
  auto same = lifecycle_->activate(v3);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->previous, v3);
  auto unknown = lifecycle_->activate(99);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::kNotFound);
  EXPECT_EQ(registry_->active().version, v3);
}

TEST_F(AdapterLifecycleTest, ActivateLoadsFilesBeforeTheStoreChanges) {
  const uint64_t v1 = publish(1);
  const uint64_t v2 = publish(2);
  // Corrupt v1's weights: activation must fail and leave v2 serving, on disk and in memory.
  std::ofstream(files(v1) / "adapter_model.safetensors", std::ios::trunc) << "not safetensors";
  open();  // a fresh registry: nothing cached
  auto act = lifecycle_->activate(v1);
  ASSERT_FALSE(act.ok());
  EXPECT_EQ(*store_->active_adapter_version(), v2);
  EXPECT_EQ(registry_->active().version, v2);
}

TEST_F(AdapterLifecycleTest, PruneKeepsActivePinnedAndKeepVersionsAndRefusesPrunedOnes) {
  open(/*keep_versions=*/1);
  const uint64_t v1 = publish(1);
  ASSERT_TRUE(lifecycle_->pin(v1, true).ok());
  const uint64_t v2 = publish(2);
  const uint64_t v3 = publish(3);
  const uint64_t v4 = publish(4);  // prunes: v2 (v3 is the one kept, v1 pinned, v4 active)
  EXPECT_EQ(record(v2).state, storage::AdapterState::kPruned);
  EXPECT_FALSE(fs::exists(dir_.path() / "adapters/v000002"));
  EXPECT_TRUE(fs::exists(files(v1)));
  EXPECT_TRUE(fs::exists(files(v3)));
  EXPECT_TRUE(fs::exists(files(v4)));
  EXPECT_FALSE(servable(record(v2)));
  EXPECT_TRUE(registry_->get(v2).status().IsNotFound());
  auto act = lifecycle_->activate(v2);
  ASSERT_FALSE(act.ok());
  EXPECT_EQ(act.error().code, Errc::kConflict);
  EXPECT_NE(act.error().message.find("pruned"), std::string::npos) << act.error().message;
  auto back = lifecycle_->rollback(std::nullopt);  // skips pruned v2
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->active, v3);
}

TEST_F(AdapterLifecycleTest, RecoverRemovesHalfWrittenAndUnrecordedDirectories) {
  const uint64_t v1 = publish(1);
  // Crash point 1: a .tmp-* directory mid-write. Crash point 2: renamed, never recorded.
  fs::create_directories(dir_.path() / "adapters/.tmp-v000002-4242");
  std::ofstream(dir_.path() / "adapters/.tmp-v000002-4242/adapter_config.json") << "{";
  fs::create_directories(dir_.path() / "adapters/v000003");
  std::ofstream(dir_.path() / "adapters/v000003/adapter_config.json") << "{}";
  fs::create_directories(dir_.path() / "adapters/notes");  // not ours: left alone
  open();
  lifecycle_->recover();
  EXPECT_EQ(adapter_dir(), (std::vector<std::string>{"notes", "v000001"}));
  EXPECT_EQ(registry_->active().version, v1);
}

TEST_F(AdapterLifecycleTest, RecoverCompletesARunInterruptedAfterItsPublishBatch) {
  // Crash point 3: files and batch done, mark_trained not. Reproduced by hand: the run
  // record names the version, the batch is written, then the process "dies".
  const uint64_t e1 = approved_example("q1");
  storage::Run run;
  run.trigger = "manual";
  run.example_ids = {e1};
  auto created = store_->create_run(run);
  ASSERT_TRUE(created.ok());
  auto v = lifecycle_->allocate_version();
  ASSERT_TRUE(v.ok());
  run = *created;
  run.adapter_version = *v;
  ASSERT_TRUE(store_->update_run(run).ok());
  const Candidate c = candidate(1);
  fs::create_directories(dir_.path() / "adapters");
  adapter::save_peft_adapter(*c.adapter, (dir_.path() / "adapters/v000001").string());
  storage::Adapter rec;
  rec.version = *v;
  rec.path = "adapters/v000001";
  rec.state = storage::AdapterState::kActive;
  ASSERT_TRUE(store_->publish_adapter(rec).ok());
  EXPECT_EQ(store_->get_example(e1)->state, storage::ExampleState::kApproved);

  open();  // the restart: the store marks the running run interrupted
  EXPECT_EQ(store_->get_run(run.id)->state, storage::RunState::kInterrupted);
  EXPECT_EQ(registry_->active().version, *v) << "the registry serves what the DB says is active";
  lifecycle_->recover();
  EXPECT_EQ(store_->get_run(run.id)->state, storage::RunState::kPublished);
  EXPECT_NE(store_->get_run(run.id)->verdict.find("completed after restart"), std::string::npos);
  EXPECT_EQ(store_->get_example(e1)->state, storage::ExampleState::kTrained);
  EXPECT_EQ(adapter_dir(), std::vector<std::string>{"v000001"});
}

TEST_F(AdapterLifecycleTest, RecoverLeavesARunInterruptedBeforeItsBatchForTheNextRun) {
  // Crash before the batch: the version was allocated and the files may exist, but no
  // record: the examples stay approved (trained again by the next run) and the files go.
  const uint64_t e1 = approved_example("q1");
  storage::Run run;
  run.example_ids = {e1};
  auto created = store_->create_run(run);
  ASSERT_TRUE(created.ok());
  auto v = lifecycle_->allocate_version();
  run = *created;
  run.adapter_version = *v;
  ASSERT_TRUE(store_->update_run(run).ok());
  adapter::save_peft_adapter(*candidate(1).adapter, (dir_.path() / "adapters/v000001").string());
  open();
  lifecycle_->recover();
  EXPECT_EQ(store_->get_run(run.id)->state, storage::RunState::kInterrupted);
  EXPECT_EQ(store_->get_example(e1)->state, storage::ExampleState::kApproved);
  EXPECT_TRUE(adapter_dir().empty());
  EXPECT_EQ(registry_->active().version, 0u);
}

TEST(AdapterKey, NamesVersionsAndTheBaseModel) {
  EXPECT_EQ(adapter_key(0), "base");
  EXPECT_EQ(adapter_key(7), "v7");
}

TEST(FailureFrom, MapsStoreStatusesToDomainErrors) {
  EXPECT_EQ(failure_from(storage::Status::NotFound("x")).code, Errc::kNotFound);
  EXPECT_EQ(failure_from(storage::Status::InvalidArgument("x")).code, Errc::kInvalidArgument);
  EXPECT_EQ(failure_from(storage::Status::Aborted("x")).code, Errc::kConflict);
  EXPECT_EQ(failure_from(storage::Status::Busy("x")).code, Errc::kUnavailable);
  // The disk cases say nothing was stored: full is 507 (retry later), failing is 503.
  EXPECT_EQ(failure_from(storage::Status::IOError("disk")).code, Errc::kUnavailable);
  EXPECT_EQ(failure_from(storage::Status::NoSpace("full")).code, Errc::kNoSpace);
  EXPECT_NE(failure_from(storage::Status::NoSpace("full")).message.find("nothing was stored"),
            std::string::npos);
  EXPECT_EQ(failure_from(storage::Status::Corruption("bad bytes")).code, Errc::kInternal);
  EXPECT_EQ(http_error(failure_from(storage::Status::NoSpace("full"))).http_status, 507);
  EXPECT_EQ(http_error(failure_from(storage::Status::IOError("disk"))).http_status, 503);
}

}  // namespace
}  // namespace kaizen::daemon
