// Generation: greedy output equals the Python reference's for 32 tokens; sampling
// filters behave as HF's; stop strings, budgets, streaming and prefix caches.
#include <cmath>
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/generate/sampler.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::generate {
namespace {

using testing::quote;
using testing::TempDir;

class TinyChatModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    model::TinyModelSpec spec;
    spec.seed = 7;
    model::write_tiny_model(spec, *dir_ / "m", testing::tokenizer_dir());
    model_ = new ChatModel(ChatModel::load(*dir_ / "m"));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static GenerateOptions greedy(int64_t n) {
    GenerateOptions o;
    o.max_new_tokens = n;
    return o;  // no EOS ids: always n tokens
  }
  std::vector<int64_t> prompt() const {
    return model_->encode_chat({{"system", "Bạn là trợ lý của Sabitech."}, {"user", "CHOREI có nghĩa là gì?"}},
                               text::ChatOptions{true, false});
  }
  static TempDir* dir_;
  static ChatModel* model_;
};
TempDir* TinyChatModel::dir_ = nullptr;
ChatModel* TinyChatModel::model_ = nullptr;

TEST_F(TinyChatModel, GreedyMatchesReferenceFor32Tokens) {
  KAIZEN_REQUIRE_REF();
  auto ids = prompt();
  std::string csv;
  for (size_t i = 0; i < ids.size(); ++i) csv += (i ? "," : "") + std::to_string(ids[i]);
  auto out = nlohmann::json::parse(
      testing::run_ref("generate --model " + quote(*dir_ / "m") + " --ids " + csv + " --max-tokens 32"));
  std::vector<int64_t> ref = out.at("ids").get<std::vector<int64_t>>();
  GenerateResult r = generate(*model_->decoder, model_->tokenizer, ids, nullptr, greedy(32));
  ASSERT_EQ(r.ids.size(), 32u);
  EXPECT_EQ(r.ids, ref);
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.prompt_tokens, static_cast<int64_t>(ids.size()));
}

TEST_F(TinyChatModel, StreamedDeltasConcatenateToTheText) {
  std::string streamed;
  int calls = 0;
  auto r = generate(*model_->decoder, model_->tokenizer, prompt(), nullptr, greedy(24),
                    [&](std::string_view d) {
                      streamed += d;
                      ++calls;
                      return true;
                    });
  EXPECT_EQ(streamed, r.text);
  EXPECT_GT(calls, 1);
  EXPECT_EQ(r.text, model_->tokenizer->decode(std::vector<int32_t>(r.ids.begin(), r.ids.end()), true));
}

TEST_F(TinyChatModel, StopStringCutsTheTextAndIsNeverStreamed) {
  auto full = generate(*model_->decoder, model_->tokenizer, prompt(), nullptr, greedy(24));
  ASSERT_GE(full.text.size(), 8u);
  // A stop string taken from the middle of what the model says anyway.
  const size_t at = full.text.size() / 2;
  const std::string stop = full.text.substr(at, 3);
  const size_t first = full.text.find(stop);
  auto opts = greedy(24);
  opts.stop = {stop};
  std::string streamed;
  auto r = generate(*model_->decoder, model_->tokenizer, prompt(), nullptr, opts, [&](std::string_view d) {
    streamed += d;
    return true;
  });
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.text, full.text.substr(0, first));
  EXPECT_EQ(streamed, r.text);
}

TEST_F(TinyChatModel, EosEndsGenerationAndIsNotInTheText) {
  auto full = generate(*model_->decoder, model_->tokenizer, prompt(), nullptr, greedy(10));
  auto opts = greedy(10);
  opts.eos_token_ids = {full.ids[4]};
  auto r = generate(*model_->decoder, model_->tokenizer, prompt(), nullptr, opts);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  // Ends at the first occurrence of that id.
  size_t first = std::find(full.ids.begin(), full.ids.end(), full.ids[4]) - full.ids.begin();
  EXPECT_EQ(r.ids, std::vector<int64_t>(full.ids.begin(), full.ids.begin() + first));
}

TEST_F(TinyChatModel, CancelFromCallbackStops) {
  int n = 0;
  auto r = generate(*model_->decoder, model_->tokenizer, prompt(), nullptr, greedy(50),
                    [&](std::string_view) { return ++n < 3; });
  EXPECT_EQ(r.finish, FinishReason::kCancelled);
  EXPECT_LT(r.ids.size(), 50u);
}

TEST_F(TinyChatModel, PrefixCacheGivesTheSameOutput) {
  auto ids = prompt();
  auto plain = generate(*model_->decoder, model_->tokenizer, ids, nullptr, greedy(16));
  c10::InferenceMode guard;
  const int64_t P = static_cast<int64_t>(ids.size()) - 3;
  model::KVCache prefix = model_->decoder->make_cache(1, P);
  model_->decoder->forward(torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + P)).view({1, -1}),
                           &prefix, nullptr, model::LogitsFor::kLast);
  auto cached = generate(*model_->decoder, model_->tokenizer, ids, nullptr, greedy(16), {}, &prefix);
  EXPECT_EQ(cached.ids, plain.ids);
  EXPECT_EQ(cached.cached_tokens, P);
  EXPECT_EQ(prefix.length(0), P);  // the shared prefix was not modified
}

// Chunked prefill (the engine's prefill_chunk): a prompt fed a few tokens per step,
// the chunks ending anywhere (mid-word, right before the last token), with or without a
// cached prefix, gives the answer of the whole prompt in one step; no text comes out
// and nothing is sampled until the last prompt token is in.
TEST_F(TinyChatModel, ChunkedPrefillGivesTheSameOutput) {
  auto ids = prompt();
  const int64_t n = static_cast<int64_t>(ids.size());
  auto plain = generate(*model_->decoder, model_->tokenizer, ids, nullptr, greedy(16));
  c10::InferenceMode guard;
  const int64_t P = 5;
  model::KVCache prefix = model_->decoder->make_cache(1, P);
  model_->decoder->forward(torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + P)).view({1, -1}),
                           &prefix, nullptr, model::LogitsFor::kLast);
  for (int64_t chunk : {int64_t{1}, int64_t{3}, int64_t{7}, n - 1}) {
    for (const model::KVCache* pre : std::vector<const model::KVCache*>{nullptr, &prefix}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (pre ? " after a cached prefix" : ""));
      Generation g(*model_->decoder, model_->tokenizer, ids, nullptr, greedy(16), pre);
      int64_t steps = 0;
      std::string streamed;
      while (g.prefilling()) {
        const int64_t before = g.prompt_cached();
        streamed += g.step(chunk);
        ++steps;
        if (g.prefilling()) {
          EXPECT_EQ(g.prompt_cached(), before + chunk);
          EXPECT_TRUE(streamed.empty());
          EXPECT_TRUE(g.result().ids.empty());
        }
      }
      const int64_t fed = n - (pre ? P : 0);
      EXPECT_EQ(steps, (fed + chunk - 1) / chunk);
      ASSERT_TRUE(g.decoding());
      EXPECT_EQ(g.result().ids.size(), 1u);
      while (!g.done()) streamed += g.step(chunk);  // the limit only applies to prompt tokens
      EXPECT_EQ(g.result().ids, plain.ids);
      EXPECT_EQ(streamed, plain.text);
      EXPECT_EQ(g.result().cached_tokens, pre ? P : 0);
    }
  }
}

// Continuous batching: generations that join and leave a batch (different prompts,
// budgets and stop rules; one seeded sampler) produce what each produces alone, and
// stream the same text.
TEST_F(TinyChatModel, SteppingTogetherGivesWhatEachGivesAlone) {
  struct Case {
    std::vector<int64_t> prompt;
    GenerateOptions options;
  };
  auto sampled = greedy(14);
  sampled.sampling.temperature = 0.8;
  sampled.sampling.top_k = 40;
  sampled.sampling.seed = 5;
  auto stopped = greedy(20);
  std::vector<Case> cases = {
      {prompt(), greedy(12)},
      {model_->encode_chat({{"user", "Bạn có biết về công ty sabitech không?"}}, text::ChatOptions{true, false}),
       greedy(5)},
      {model_->encode_chat({{"user", "hello"}}, text::ChatOptions{true, false}), sampled},
      {model_->encode_chat({{"user", "Chorei"}}, text::ChatOptions{true, false}), stopped},
  };
  std::vector<GenerateResult> alone;
  for (auto& c : cases) alone.push_back(generate(*model_->decoder, model_->tokenizer, c.prompt, nullptr, c.options));
  // A stop string from the middle of case 3's own answer.
  ASSERT_GE(alone[3].text.size(), 6u);
  cases[3].options.stop = {alone[3].text.substr(alone[3].text.size() / 2, 2)};
  alone[3] = generate(*model_->decoder, model_->tokenizer, cases[3].prompt, nullptr, cases[3].options);
  ASSERT_EQ(alone[3].finish, FinishReason::kStop);

  std::vector<std::unique_ptr<Generation>> gens;
  std::vector<std::string> streamed(cases.size());
  size_t max_batch = 0;
  for (int turn = 0; turn < 100; ++turn) {
    if (turn % 2 == 0 && gens.size() < cases.size()) {  // a newcomer every other turn: prefill alone
      const size_t i = gens.size();
      gens.push_back(std::make_unique<Generation>(*model_->decoder, model_->tokenizer, cases[i].prompt, nullptr,
                                                  cases[i].options));
      streamed[i] += gens[i]->step();
    }
    std::vector<Generation*> batch;
    std::vector<size_t> which;
    for (size_t i = 0; i < gens.size(); ++i) {
      if (gens[i]->decoding()) {
        batch.push_back(gens[i].get());
        which.push_back(i);
      }
    }
    if (batch.empty() && gens.size() == cases.size()) break;
    if (batch.empty()) continue;
    max_batch = std::max(max_batch, batch.size());
    auto deltas = Generation::step_together(batch);
    ASSERT_EQ(deltas.size(), batch.size());
    for (size_t j = 0; j < batch.size(); ++j) streamed[which[j]] += deltas[j];
  }
  EXPECT_GE(max_batch, 3u);
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(gens[i]->done()) << i;
    const GenerateResult& r = gens[i]->result();
    EXPECT_EQ(r.ids, alone[i].ids) << i;
    EXPECT_EQ(r.text, alone[i].text) << i;
    EXPECT_EQ(r.finish, alone[i].finish) << i;
    EXPECT_EQ(streamed[i], r.text) << i;
  }
  // Only decoding generations can be batched.
  Generation fresh(*model_->decoder, model_->tokenizer, prompt(), nullptr, greedy(4));
  EXPECT_THROW(Generation::step_together({&fresh}), std::invalid_argument);
}

TEST_F(TinyChatModel, GenerateManyEqualsGenerateForEachPrompt) {
  std::vector<std::vector<int64_t>> prompts;
  std::vector<GenerateOptions> options;
  const char* questions[] = {"CHOREI có nghĩa là gì?", "hello", "Sabitech", "Bạn là ai?", "kaizen"};
  for (int i = 0; i < 5; ++i) {
    prompts.push_back(model_->encode_chat({{"user", questions[i]}}, text::ChatOptions{true, false}));
    options.push_back(greedy(3 + 4 * i));  // different budgets: places free up at different steps
  }
  options[2].max_new_tokens = 0;  // done before its first step
  auto many = generate_many(*model_->decoder, model_->tokenizer, prompts, nullptr, options, /*max_batch=*/3);
  ASSERT_EQ(many.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto one = generate(*model_->decoder, model_->tokenizer, prompts[i], nullptr, options[i]);
    EXPECT_EQ(many[i].ids, one.ids) << i;
    EXPECT_EQ(many[i].text, one.text) << i;
    EXPECT_EQ(many[i].finish, one.finish) << i;
  }
  EXPECT_TRUE(many[2].ids.empty());
  EXPECT_THROW(generate_many(*model_->decoder, model_->tokenizer, prompts, nullptr, {greedy(1), greedy(2)}),
               std::invalid_argument);
}

TEST(Sampler, GreedyAndDegenerateFiltersPickTheArgmax) {
  torch::manual_seed(0);
  torch::Tensor logits = torch::randn({1000});
  const int64_t argmax = logits.argmax().item<int64_t>();
  EXPECT_EQ(Sampler({}).sample(logits, {}), argmax);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Sampler({1.0, 1, 1.0, 0.0, 1.0, i}).sample(logits, {}), argmax);      // top_k 1
    EXPECT_EQ(Sampler({1.0, 0, 1e-9, 0.0, 1.0, i}).sample(logits, {}), argmax);     // tiny top_p
    EXPECT_EQ(Sampler({1.0, 0, 1.0, 1.0, 1.0, i}).sample(logits, {}), argmax);      // min_p 1
  }
}

TEST(Sampler, SeededIsDeterministic) {
  torch::Tensor logits = torch::randn({5000});
  std::vector<int64_t> a, b;
  Sampler s1({0.8, 50, 0.9, 0.0, 1.0, 42}), s2({0.8, 50, 0.9, 0.0, 1.0, 42});
  for (int i = 0; i < 50; ++i) {
    a.push_back(s1.sample(logits, {}));
    b.push_back(s2.sample(logits, {}));
  }
  EXPECT_EQ(a, b);
  EXPECT_GT(std::set<int64_t>(a.begin(), a.end()).size(), 1u);
}

TEST(Sampler, FrequenciesFollowTheTemperedSoftmaxWithinTopK) {
  torch::Tensor logits = torch::tensor({2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -5.0f});
  const double T = 0.7;
  Sampler s({T, 4, 1.0, 0.0, 1.0, 123});
  std::map<int64_t, int> counts;
  const int N = 20000;
  for (int i = 0; i < N; ++i) counts[s.sample(logits, {})]++;
  EXPECT_EQ(counts.count(4), 0u);  // outside top-4
  EXPECT_EQ(counts.count(5), 0u);
  torch::Tensor p = torch::softmax(logits.narrow(0, 0, 4) / T, 0);
  for (int k = 0; k < 4; ++k) {
    const double expect = p[k].item<double>();
    EXPECT_NEAR(counts[k] / double(N), expect, 4 * std::sqrt(expect * (1 - expect) / N) + 1e-3) << k;
  }
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // probs 0.5, 0.3, 0.2 -> top_p 0.7 keeps {0, 1}.
  torch::Tensor logits = torch::log(torch::tensor({0.5f, 0.3f, 0.2f}));
  Sampler s({1.0, 0, 0.7, 0.0, 1.0, 9});
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(s.sample(logits, {}));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));
}

TEST(Sampler, RepetitionPenaltyAsHF) {
  // HF: positive logits are divided, negative multiplied, once per distinct token.
  torch::Tensor logits = torch::tensor({3.0f, 2.9f, 0.5f, -0.2f});
  EXPECT_EQ(Sampler({}).sample(logits, {}), 0);
  EXPECT_EQ(Sampler({0.0, 0, 1.0, 0.0, 1.1, 0}).sample(logits, {0, 0, 0}), 1);  // 3/1.1 < 2.9
  EXPECT_EQ(Sampler({0.0, 0, 1.0, 0.0, 40.0, 0}).sample(logits, {0, 1}), 2);    // 0.075, 0.0725 < 0.5
  // Negative logits are multiplied: -1 * 3 = -3 < -2.
  torch::Tensor negative = torch::tensor({-1.0f, -2.0f});
  EXPECT_EQ(Sampler({0.0, 0, 1.0, 0.0, 3.0, 0}).sample(negative, {0}), 1);
  // Once per distinct token: penalty 1.4 twice would be 3/1.96 < 2, once is 3/1.4 > 2.
  torch::Tensor two = torch::tensor({3.0f, 2.0f});
  EXPECT_EQ(Sampler({0.0, 0, 1.0, 0.0, 1.4, 0}).sample(two, {0, 0}), 0);
}

TEST(Sampler, RejectsBadParameters) {
  EXPECT_THROW(Sampler({-1.0, 0, 1.0, 0.0, 1.0, 0}), std::invalid_argument);
  EXPECT_THROW(Sampler({1.0, 0, 0.0, 0.0, 1.0, 0}), std::invalid_argument);
  EXPECT_THROW(Sampler({1.0, -2, 1.0, 0.0, 1.0, 0}), std::invalid_argument);
  EXPECT_THROW(Sampler({1.0, 0, 1.0, 2.0, 1.0, 0}), std::invalid_argument);
}

}  // namespace
}  // namespace kaizen::generate
