// The engine's continuous batching on the tiny model: concurrent jobs with different
// adapters, prompts and budgets, decoded together, give what each gives alone; a job
// that fails or is cancelled leaves the others untouched.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "daemon/engine.h"
#include "learning/adapter/peft.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon {
namespace {

using kaizen::testing::TempDir;
using namespace std::chrono_literals;

class EngineBatching : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    model::TinyModelSpec spec;
    spec.seed = 17;
    model::write_tiny_model(spec, *dir_ / "m", kaizen::testing::tokenizer_dir());
    model_ = std::make_shared<generate::ChatModel>(generate::ChatModel::load(*dir_ / "m"));
    for (uint64_t seed : {1, 2}) {
      auto a = adapter::make_peft_init_adapter(model_->decoder->config(), 4, 8.0, false,
                                               adapter::parse_targets("all"), seed);
      torch::NoGradGuard g;
      for (auto& t : a->parameters()) t.normal_(0, 0.1);
      adapters_.push_back(a);
    }
  }
  static void TearDownTestSuite() {
    adapters_.clear();
    model_.reset();
    delete dir_;
  }

  // A job whose callbacks record into `out`; `done` counts finished jobs.
  struct Outcome {
    std::string streamed;
    generate::GenerateResult result;
    std::string error;
    bool ended = false;
  };
  std::shared_ptr<EngineJob> job(const std::string& question, std::shared_ptr<const adapter::Adapter> a,
                                 int64_t max_tokens, Outcome* out) {
    auto j = std::make_shared<EngineJob>();
    j->prompt = model_->encode_chat({{"user", question}}, text::ChatOptions{true, false});
    j->adapter = std::move(a);
    j->adapter_key = j->adapter ? "a" + std::to_string(reinterpret_cast<uintptr_t>(j->adapter.get())) : "base";
    j->options.max_new_tokens = max_tokens;
    j->on_delta = [out](std::string_view d) { out->streamed += d; };
    j->on_done = [this, out](const generate::GenerateResult& r) {
      out->result = r;
      end(out);
    };
    j->on_error = [this, out](const std::string& e) {
      out->error = e;
      end(out);
    };
    return j;
  }
  void end(Outcome* out) {
    std::lock_guard<std::mutex> lock(mu_);
    out->ended = true;
    cv_.notify_all();
  }
  bool wait_all(const std::vector<Outcome>& outs) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 120s, [&] {
      for (const auto& o : outs)
        if (!o.ended) return false;
      return true;
    });
  }
  generate::GenerateResult alone(const std::string& question, const adapter::Adapter* a, int64_t max_tokens) {
    generate::GenerateOptions o;
    o.max_new_tokens = max_tokens;
    return generate::generate(*model_->decoder, model_->tokenizer,
                              model_->encode_chat({{"user", question}}, text::ChatOptions{true, false}), a, o);
  }

  static TempDir* dir_;
  static std::shared_ptr<generate::ChatModel> model_;
  static std::vector<std::shared_ptr<const adapter::Adapter>> adapters_;
  std::mutex mu_;
  std::condition_variable cv_;
};
TempDir* EngineBatching::dir_ = nullptr;
std::shared_ptr<generate::ChatModel> EngineBatching::model_;
std::vector<std::shared_ptr<const adapter::Adapter>> EngineBatching::adapters_;

struct Spec {
  std::string question;
  int adapter;  // -1 = base
  int64_t max_tokens;
};
const std::vector<Spec> kSpecs = {
    {"CHOREI có nghĩa là gì?", -1, 10}, {"Bạn có biết về công ty sabitech không?", 0, 14},
    {"hello", 1, 6},                     {"Sabitech được thành lập năm nào?", 0, 12},
    {"what is kaizen", -1, 3},           {"Chorei", 1, 9},
};

TEST_F(EngineBatching, ConcurrentJobsWithDifferentAdaptersGiveWhatEachGivesAlone) {
  for (size_t max_batch : {size_t{8}, size_t{1}, size_t{4}}) {
    SCOPED_TRACE("max_batch " + std::to_string(max_batch));
    EngineOptions eo;
    eo.max_active = 8;
    eo.max_batch = max_batch;
    std::vector<Outcome> outs(kSpecs.size());
    EngineStats stats;
    {
      Engine engine(model_, eo);
      for (size_t i = 0; i < kSpecs.size(); ++i) {
        const auto& s = kSpecs[i];
        ASSERT_TRUE(engine.submit(job(s.question, s.adapter < 0 ? nullptr : adapters_[s.adapter], s.max_tokens,
                                      &outs[i])));
      }
      ASSERT_TRUE(wait_all(outs));
      stats = engine.stats();
    }
    int64_t tokens = 0;
    for (size_t i = 0; i < kSpecs.size(); ++i) {
      const auto& s = kSpecs[i];
      auto want = alone(s.question, s.adapter < 0 ? nullptr : adapters_[s.adapter].get(), s.max_tokens);
      EXPECT_EQ(outs[i].error, "") << i;
      EXPECT_EQ(outs[i].result.ids, want.ids) << i;
      EXPECT_EQ(outs[i].result.text, want.text) << i;
      EXPECT_EQ(outs[i].streamed, want.text) << i;
      tokens += static_cast<int64_t>(want.ids.size());
    }
    // Every token after a job's first came from a decode forward; batching shows as
    // more rows than forwards, and no forward holds more than max_batch rows.
    EXPECT_EQ(stats.decode_rows, static_cast<uint64_t>(tokens) - kSpecs.size());
    EXPECT_GE(stats.decode_forwards * max_batch, stats.decode_rows);
    if (max_batch == 1) {
      EXPECT_EQ(stats.decode_forwards, stats.decode_rows);
    } else {
      EXPECT_GT(2 * stats.decode_rows, 3 * stats.decode_forwards);  // mean batch > 1.5
    }
  }
}

TEST_F(EngineBatching, AFailingOrCancelledJobLeavesTheBatchIntact) {
  Engine engine(model_, EngineOptions{});
  std::vector<Outcome> outs(4);
  auto good = job("CHOREI có nghĩa là gì?", adapters_[0], 12, &outs[0]);
  auto bad = job("hello", nullptr, 12, &outs[1]);
  int deltas = 0;
  bad->on_delta = [&deltas](std::string_view) {
    if (++deltas == 2) throw std::runtime_error("the client's write failed");
  };
  auto cancelled = job("Chorei", adapters_[1], 200, &outs[2]);
  EngineJob* cancel_me = cancelled.get();
  int seen = 0;
  cancelled->on_delta = [&seen, cancel_me](std::string_view) {
    if (++seen == 2) cancel_me->cancelled = true;
  };
  auto other = job("what is kaizen", nullptr, 12, &outs[3]);
  for (auto& j : {good, bad, cancelled, other}) ASSERT_TRUE(engine.submit(j));
  ASSERT_TRUE(wait_all(outs));
  EXPECT_EQ(outs[0].result.ids, alone("CHOREI có nghĩa là gì?", adapters_[0].get(), 12).ids);
  EXPECT_EQ(outs[3].result.ids, alone("what is kaizen", nullptr, 12).ids);
  EXPECT_NE(outs[1].error.find("the client's write failed"), std::string::npos) << outs[1].error;
  EXPECT_EQ(outs[2].error, "");
  EXPECT_EQ(outs[2].result.finish, generate::FinishReason::kCancelled);
  EXPECT_LT(outs[2].result.ids.size(), 10u);
  EXPECT_EQ(engine.stats().jobs_failed, 1u);
  EXPECT_EQ(engine.stats().jobs_done, 3u);
}

}  // namespace
}  // namespace kaizen::daemon
