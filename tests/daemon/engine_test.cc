// The engine's continuous batching on the tiny model: concurrent jobs with different
// adapters, prompts and budgets, decoded together, give what each gives alone; a job
// that fails or is cancelled leaves the others untouched.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "daemon/serve/engine.h"
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
  static std::vector<int64_t> chat_prompt(const std::vector<text::ChatMessage>& messages) {
    return model_->encode_chat(messages, text::ChatOptions{true, false});
  }
  // The system turn alone: the prefix the service marks for caching.
  static std::vector<int64_t> system_turn(const std::string& system) {
    return model_->encode(model_->chat_template->render({{"system", system}}, {false, false}));
  }
  std::shared_ptr<EngineJob> job(const std::string& question, std::shared_ptr<const adapter::Adapter> a,
                                 int64_t max_tokens, Outcome* out) {
    return job(std::vector<text::ChatMessage>{{"user", question}}, std::move(a), max_tokens, out);
  }
  std::shared_ptr<EngineJob> job(const std::vector<text::ChatMessage>& messages,
                                 std::shared_ptr<const adapter::Adapter> a, int64_t max_tokens, Outcome* out) {
    auto j = std::make_shared<EngineJob>();
    j->prompt = chat_prompt(messages);
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
  // Waits (up to 20 s) until `deltas` reaches n: a chat is streaming.
  static void wait_for(const std::atomic<int>& deltas, int n) {
    for (int i = 0; i < 20000 && deltas < n; ++i) std::this_thread::sleep_for(1ms);
  }
  // The answer generated directly, without engine or cache.
  generate::GenerateResult alone(const std::vector<text::ChatMessage>& messages, const adapter::Adapter* a,
                                 int64_t max_tokens) {
    generate::GenerateOptions o;
    o.max_new_tokens = max_tokens;
    return generate::generate(*model_->decoder, model_->tokenizer, chat_prompt(messages), a, o);
  }
  generate::GenerateResult alone(const std::string& question, const adapter::Adapter* a, int64_t max_tokens) {
    return alone(std::vector<text::ChatMessage>{{"user", question}}, a, max_tokens);
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

// Chunked prefill: while a long prompt is prefilled prefill_chunk tokens per turn, a chat
// that is already answering keeps getting a token every turn; with prefill_chunk 0 (the
// whole prompt in one forward) it gets none until the newcomer's first token. Both
// answers are what each gives alone.
TEST_F(EngineBatching, ALongPromptIsPrefilledInChunksBetweenDecodeSteps) {
  std::string long_question;
  for (int i = 0; i < 24; ++i) long_question += "Sabitech's Chorei number " + std::to_string(i) + " is at 8:15. ";
  const size_t long_len = chat_prompt({{"user", long_question}}).size();
  ASSERT_GT(long_len, 200u);
  const int64_t chunk = 16;
  std::map<size_t, int> answered_meanwhile;  // prefill_chunk -> the chat's deltas during the prefill
  for (size_t prefill_chunk : {size_t{chunk}, size_t{0}}) {
    SCOPED_TRACE("prefill_chunk " + std::to_string(prefill_chunk));
    EngineOptions eo;
    eo.prefill_chunk = prefill_chunk;
    Engine engine(model_, eo);
    std::vector<Outcome> outs(2);
    // Engine-thread callbacks: the chat's deltas are counted, the newcomer's first delta
    // freezes the count.
    std::atomic<int> chat_deltas{0};
    std::atomic<int> at_first_token{-1};
    auto chat = job("hello", adapters_[0], 80, &outs[0]);
    chat->on_delta = [&, out = &outs[0]](std::string_view d) {
      out->streamed += d;
      chat_deltas++;
    };
    auto newcomer = job(long_question, nullptr, 4, &outs[1]);
    newcomer->on_delta = [&, out = &outs[1]](std::string_view d) {
      if (out->streamed.empty()) at_first_token = chat_deltas.load();
      out->streamed += d;
    };
    ASSERT_TRUE(engine.submit(chat));
    wait_for(chat_deltas, 2);
    ASSERT_GE(chat_deltas.load(), 2);
    const int at_submit = chat_deltas.load();
    ASSERT_TRUE(engine.submit(newcomer));
    ASSERT_TRUE(wait_all(outs));
    ASSERT_GE(at_first_token.load(), 0);
    answered_meanwhile[prefill_chunk] = at_first_token - at_submit;
    EXPECT_EQ(outs[0].result.ids, alone("hello", adapters_[0].get(), 80).ids);
    EXPECT_EQ(outs[1].result.ids, alone(long_question, nullptr, 4).ids);
    const auto stats = engine.stats();
    if (prefill_chunk > 0) {
      EXPECT_GE(stats.prefill_chunks, (long_len + chunk - 1) / chunk);
    } else {
      EXPECT_EQ(stats.prefill_chunks, 2u);  // one forward per prompt
    }
  }
  // ceil(long_len / 16) turns of prefill, a decode step for the chat in each (some
  // deltas may be held back as partial UTF-8 or a stop-string candidate).
  EXPECT_GE(answered_meanwhile[chunk], static_cast<int>(long_len / chunk) / 2) << answered_meanwhile[chunk];
  EXPECT_LE(answered_meanwhile[0], 1);

  // With no other chat decoding there is nothing to interleave: one forward.
  EngineOptions eo;
  eo.prefill_chunk = chunk;
  Engine engine(model_, eo);
  std::vector<Outcome> outs(1);
  ASSERT_TRUE(engine.submit(job(long_question, nullptr, 4, &outs[0])));
  ASSERT_TRUE(wait_all(outs));
  EXPECT_EQ(outs[0].result.ids, alone(long_question, nullptr, 4).ids);
  EXPECT_EQ(engine.stats().prefill_chunks, 1u);
}

// A prefix (the system message) is computed once per adapter key, as part of the first
// job's own prefill, even when jobs sharing it arrive together: the others wait for it
// and reuse it; a job with another adapter computes its own. Every answer equals the
// answer without any prefix cache.
TEST_F(EngineBatching, JobsSharingAPrefixComputeItOnce) {
  const std::string system = "Bạn là trợ lý của Sabitech. Chorei (朝礼) là buổi họp buổi sáng lúc 8:15.";
  const auto prefix = system_turn(system);
  const size_t prefix_len = prefix.size();
  const std::vector<std::pair<std::string, int>> asks = {
      {"CHOREI có nghĩa là gì?", -1}, {"hello", -1}, {"Chorei", -1}, {"what is kaizen", 1}};
  for (size_t prefill_chunk : {size_t{0}, size_t{8}}) {
    SCOPED_TRACE("prefill_chunk " + std::to_string(prefill_chunk));
    EngineOptions eo;
    eo.prefill_chunk = prefill_chunk;
    std::vector<Outcome> outs(asks.size());
    EngineStats stats;
    {
      Engine engine(model_, eo);
      // A chat already decoding, so that prefills go in prefill_chunk-token chunks and
      // the jobs arriving together overlap while the first computes the prefix.
      std::vector<Outcome> chat(1);
      std::atomic<int> chat_deltas{0};
      auto streaming = job("hello", nullptr, 60, &chat[0]);
      streaming->on_delta = [&](std::string_view) { chat_deltas++; };
      ASSERT_TRUE(engine.submit(streaming));
      wait_for(chat_deltas, 1);
      for (size_t i = 0; i < asks.size(); ++i) {
        auto j = job({{"system", system}, {"user", asks[i].first}},
                     asks[i].second < 0 ? nullptr : adapters_[asks[i].second], 6, &outs[i]);
        ASSERT_TRUE(std::equal(prefix.begin(), prefix.end(), j->prompt.begin()));
        j->prefix_len = prefix_len;
        ASSERT_TRUE(engine.submit(j));
      }
      ASSERT_TRUE(wait_all(outs));
      ASSERT_TRUE(wait_all(chat));
      stats = engine.stats();
    }
    EXPECT_EQ(stats.prefix_misses, 2u);  // base and adapter 1
    EXPECT_EQ(stats.prefix_hits, 2u);
    EXPECT_EQ(stats.prefix_tokens_reused, 2 * prefix_len);
    for (size_t i = 0; i < asks.size(); ++i) {
      auto want = alone({{"system", system}, {"user", asks[i].first}},
                        asks[i].second < 0 ? nullptr : adapters_[asks[i].second].get(), 6);
      EXPECT_EQ(outs[i].error, "") << i;
      EXPECT_EQ(outs[i].result.ids, want.ids) << i;
      EXPECT_EQ(outs[i].result.cached_tokens, i == 0 || i == 3 ? 0 : static_cast<int64_t>(prefix_len)) << i;
    }
  }
}

// The conversation cache: a client sends the whole conversation each turn; the next
// turn continues the KV the last one left (only the new tokens are prefilled) and
// answers exactly as without any cache. Another conversation sharing only the system
// message does not take it; a dropped adapter key or a budget too small keeps nothing.
TEST_F(EngineBatching, ANextTurnPrefillsOnlyWhatIsNew) {
  const std::string system = "Bạn là trợ lý của Sabitech.";
  const size_t prefix_len = system_turn(system).size();
  std::string q1 = "Sabitech holds Chorei (朝礼), the morning meeting, every day at 8:15 in the main office; ";
  q1 += q1 + "what happens at Chorei?";
  const std::vector<text::ChatMessage> turn1 = {{"system", system}, {"user", q1}};
  auto ask = [&](Engine& engine, const std::vector<text::ChatMessage>& messages) {
    std::vector<Outcome> out(1);
    auto j = job(messages, nullptr, 8, &out[0]);
    j->prefix_len = prefix_len;
    EXPECT_TRUE(engine.submit(j));
    EXPECT_TRUE(wait_all(out));
    EXPECT_EQ(out[0].error, "");
    return out[0];
  };
  auto uncached = [&](const std::vector<text::ChatMessage>& messages) { return alone(messages, nullptr, 8); };
  // The tokens whose KV a finished turn leaves: prompt + answer but the last token.
  auto kept = [&](const std::vector<text::ChatMessage>& messages, const generate::GenerateResult& r) {
    auto t = chat_prompt(messages);
    t.insert(t.end(), r.ids.begin(), r.ids.end() - 1);
    return t;
  };
  auto common = [](const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    return static_cast<int64_t>(std::mismatch(a.begin(), a.begin() + std::min(a.size(), b.size() - 1), b.begin()).first -
                                a.begin());
  };

  EngineOptions eo;
  eo.conversation_cache_bytes = int64_t{256} << 20;
  Engine engine(model_, eo);
  Outcome a1 = ask(engine, turn1);
  EXPECT_EQ(a1.result.cached_tokens, 0);  // the system prefix was computed by this prefill
  auto turn2 = turn1;
  turn2.push_back({"assistant", a1.result.text});
  turn2.push_back({"user", "And who leads it?"});
  Outcome a2 = ask(engine, turn2);
  const int64_t reuse2 = common(kept(turn1, a1.result), chat_prompt(turn2));
  EXPECT_GE(reuse2, static_cast<int64_t>(prefix_len + 32));
  EXPECT_EQ(a2.result.cached_tokens, reuse2);
  EXPECT_EQ(a2.result.ids, uncached(turn2).ids);
  auto turn3 = turn2;
  turn3.push_back({"assistant", a2.result.text});
  turn3.push_back({"user", "Thanks!"});
  Outcome a3 = ask(engine, turn3);
  EXPECT_EQ(a3.result.cached_tokens, common(kept(turn2, a2.result), chat_prompt(turn3)));
  EXPECT_GT(a3.result.cached_tokens, reuse2);
  EXPECT_EQ(a3.result.ids, uncached(turn3).ids);
  // Another conversation, same system message: the prefix cache, not someone's chat.
  Outcome other = ask(engine, {{"system", system}, {"user", "hello"}});
  EXPECT_EQ(other.result.cached_tokens, static_cast<int64_t>(prefix_len));
  auto stats = engine.stats();
  EXPECT_EQ(stats.conversation_hits, 2u);
  EXPECT_EQ(stats.conversation_tokens_reused, static_cast<uint64_t>(reuse2 + a3.result.cached_tokens));
  EXPECT_GT(stats.conversation_cache_bytes, 0);
  // After the adapter key is dropped nothing of it is reused, not even the prefix.
  engine.drop_prefixes("base");
  auto turn4 = turn3;
  turn4.push_back({"assistant", a3.result.text});
  turn4.push_back({"user", "Bye."});
  Outcome a4 = ask(engine, turn4);
  EXPECT_EQ(a4.result.cached_tokens, 0);
  EXPECT_EQ(a4.result.ids, uncached(turn4).ids);

  // A budget smaller than one chat's KV keeps nothing.
  EngineOptions tight;
  tight.conversation_cache_bytes = 1024;
  Engine small(model_, tight);
  ask(small, turn1);
  EXPECT_EQ(ask(small, turn2).result.cached_tokens, static_cast<int64_t>(prefix_len));
  EXPECT_EQ(small.stats().conversation_hits, 0u);
  EXPECT_EQ(small.stats().conversation_cache_bytes, 0);
}

}  // namespace
}  // namespace kaizen::daemon
