// Constrained decoding and logprobs in the generator, on a tiny random model (which on
// its own emits nonsense): every constrained answer is a complete sentence of its grammar,
// also when the token budget runs out, also inside a batch mixing constrained and free
// rows; logprobs are log_softmax of the model's own logits at the sampled temperature.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/grammar/json_schema.h"
#include "learning/grammar/vocab.h"
#include "learning/grammar/grammar_test_util.h"
#include "learning/grammar/schema_gen.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::generate {
namespace {

using nlohmann::json;
using testing::TempDir;

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

class Constrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    model::TinyModelSpec spec;
    spec.seed = 7;
    model::write_tiny_model(spec, *dir_ / "m", testing::tokenizer_dir());
    model_ = new ChatModel(ChatModel::load(*dir_ / "m"));
    vocab_ = new std::shared_ptr<const grammar::Vocab>(grammar::Vocab::from_tokenizer(*model_->tokenizer));
  }
  static void TearDownTestSuite() {
    delete vocab_;
    delete model_;
    delete dir_;
  }
  static std::vector<int64_t> prompt(const std::string& user) {
    return model_->encode_chat({{"user", user}}, text::ChatOptions{true, false});
  }
  static GenerateOptions constrained(std::shared_ptr<const grammar::Grammar> g, int64_t budget, double temperature,
                                     uint64_t seed) {
    GenerateOptions o;
    o.max_new_tokens = budget;
    o.eos_token_ids = model_->eos_token_ids;
    o.sampling.temperature = temperature;
    o.sampling.seed = seed;
    o.grammar = std::move(g);
    o.grammar_vocab = *vocab_;
    return o;
  }
  static TempDir* dir_;
  static ChatModel* model_;
  static std::shared_ptr<const grammar::Vocab>* vocab_;
};
TempDir* Constrained::dir_ = nullptr;
ChatModel* Constrained::model_ = nullptr;
std::shared_ptr<const grammar::Vocab>* Constrained::vocab_ = nullptr;

TEST_F(Constrained, JsonObjectAnswersParseAtAnyTemperatureAndBudget) {
  const auto g = grammar::json_object_grammar();
  for (int64_t budget : {8, 48}) {
    for (double t : {0.0, 1.5}) {
      for (uint64_t seed = 0; seed < 2; ++seed) {
        auto r = generate(*model_->decoder, model_->tokenizer, prompt("Reply in JSON"), nullptr,
                          constrained(g, budget, t, seed));
        json j = json::parse(r.text, nullptr, false);
        EXPECT_TRUE(j.is_object()) << "budget " << budget << " t " << t << " seed " << seed << ": " << r.text;
        EXPECT_LE(static_cast<int64_t>(r.ids.size()), budget);
      }
    }
  }
}

TEST_F(Constrained, SchemaAnswersHaveTheDeclaredShape) {
  const json schema = json::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 8},
      "size": {"type": "integer"},
      "kind": {"enum": ["kettle", "pot", 3, null]},
      "tags": {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2},
      "extra": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}]}},
    "required": ["name", "size", "kind", "tags", "extra"], "additionalProperties": false})");
  const auto g = grammar::json_schema_grammar(schema);
  for (uint64_t seed = 0; seed < 6; ++seed) {
    auto r = generate(*model_->decoder, model_->tokenizer, prompt("Describe a product"), nullptr,
                      constrained(g, 120, 1.0, seed));
    json j = json::parse(r.text, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.text;
    ASSERT_EQ(j.size(), 5u) << r.text;
    EXPECT_TRUE(j["name"].is_string() && code_points(j["name"].get<std::string>()) <= 8) << r.text;
    EXPECT_TRUE(j["size"].is_number_integer()) << r.text;
    EXPECT_TRUE(j["kind"] == "kettle" || j["kind"] == "pot" || j["kind"] == 3 || j["kind"].is_null()) << r.text;
    EXPECT_TRUE(j["tags"].is_array() && !j["tags"].empty() && j["tags"].size() <= 2 && j["tags"][0].is_boolean()) << r.text;
    EXPECT_TRUE(j["extra"].is_null() || (j["extra"].is_object() && j["extra"]["ok"].is_boolean())) << r.text;
    EXPECT_EQ(r.finish, FinishReason::kStop) << "ends with EOS once the object is complete: " << r.text;
  }
}

// Random schemas from the supported subset (the grammar property test's generator), each
// answered by the demo model at several seeds and temperatures, batched as the engine
// batches, then checked by Python's jsonschema: every answer parses and validates.
void random_schemas_validate(const ChatModel& m, const std::shared_ptr<const grammar::Vocab>& vocab, int schemas,
                             const std::vector<std::pair<uint64_t, double>>& draws) {
  if (!grammar::testing::have_python_jsonschema()) GTEST_SKIP() << "no python3 jsonschema (apt install python3-jsonschema)";
  std::vector<std::vector<int64_t>> prompts;
  std::vector<GenerateOptions> options;
  std::vector<nlohmann::ordered_json> schema_of;
  const auto ids = m.encode_chat({{"user", "Answer in JSON."}}, text::ChatOptions{true, false});
  for (int i = 0; i < schemas; ++i) {
    grammar::testing::SchemaGen gen(static_cast<uint32_t>(70000 + i));
    const nlohmann::ordered_json schema = gen.schema(0);
    const auto g = grammar::json_schema_grammar(schema);
    for (const auto& [seed, t] : draws) {
      GenerateOptions o;
      o.max_new_tokens = 160;
      o.eos_token_ids = m.eos_token_ids;
      o.sampling.temperature = t;
      o.sampling.seed = seed;
      o.grammar = g;
      o.grammar_vocab = vocab;
      prompts.push_back(ids);
      options.push_back(std::move(o));
      schema_of.push_back(schema);
    }
  }
  const auto results = generate_many(*m.decoder, m.tokenizer, prompts, nullptr, options, 8);
  std::vector<json> lines;
  for (size_t i = 0; i < results.size(); ++i) {
    lines.push_back({{"schema", json::parse(schema_of[i].dump())}, {"text_hex", grammar::testing::hex(results[i].text)}});
  }
  const auto verdicts = grammar::testing::run_schema_check(lines);
  ASSERT_EQ(verdicts.size(), lines.size());
  int ok = 0;
  for (size_t i = 0; i < verdicts.size(); ++i) {
    ok += verdicts[i] == "ok";
    EXPECT_EQ(verdicts[i], "ok") << schema_of[i].dump() << "\n" << results[i].text;
  }
  std::printf("%d of %zu answers parse and validate\n", ok, verdicts.size());
}

TEST_F(Constrained, RandomSchemasOnTheDemoModel) {
  random_schemas_validate(*model_, *vocab_, 24, {{1, 0.0}, {2, 1.0}});
}

// Soak label (tests.cmake): the issue's 200 schemas x 3 draws.
TEST_F(Constrained, DISABLED_TwoHundredRandomSchemasOnTheDemoModel) {
  random_schemas_validate(*model_, *vocab_, 200, {{1, 0.0}, {2, 0.7}, {3, 1.3}});
}

TEST_F(Constrained, BatchMixesConstrainedAndFreeRows) {
  const auto g = grammar::json_object_grammar();
  std::vector<std::vector<int64_t>> prompts;
  std::vector<GenerateOptions> options;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(prompt("question " + std::to_string(i)));
    GenerateOptions o = constrained(i % 2 ? nullptr : g, 40, 0.0, 0);
    if (i % 2) o.grammar_vocab = nullptr;
    options.push_back(o);
  }
  auto batched = generate_many(*model_->decoder, model_->tokenizer, prompts, nullptr, options, 8);
  for (int i = 0; i < 8; ++i) {
    auto alone = generate(*model_->decoder, model_->tokenizer, prompts[i], nullptr, options[i]);
    EXPECT_EQ(batched[i].text, alone.text) << i;  // each row as it would be alone
    if (i % 2 == 0) {
      EXPECT_TRUE(json::parse(batched[i].text, nullptr, false).is_object()) << batched[i].text;
    }
  }
}

TEST_F(Constrained, LogprobsAreLogSoftmaxOfTheLogitsAtTheTemperature) {
  const auto ids = prompt("Hello");
  for (double t : {0.0, 0.5}) {
    GenerateOptions o;
    o.max_new_tokens = 6;
    o.sampling.temperature = t;
    o.sampling.seed = 3;
    o.top_logprobs = 4;
    auto r = generate(*model_->decoder, model_->tokenizer, ids, nullptr, o);
    ASSERT_EQ(r.logprobs.size(), r.ids.size());
    // The reference: one forward over prompt + answer, log_softmax(logits / T) at each position.
    std::vector<int64_t> all(ids);
    all.insert(all.end(), r.ids.begin(), r.ids.end());
    c10::InferenceMode guard;
    torch::Tensor logits = model_->decoder->forward(torch::tensor(all).view({1, -1}), nullptr, nullptr,
                                                    model::LogitsFor::kAll)[0];  // (T, V)
    const double scale = t == 0.0 ? 1.0 : 1.0 / t;
    torch::Tensor lp = torch::log_softmax(logits.to(torch::kDouble) * scale, -1);
    for (size_t k = 0; k < r.ids.size(); ++k) {
      const int64_t pos = static_cast<int64_t>(ids.size() + k) - 1;
      EXPECT_EQ(r.logprobs[k].id, r.ids[k]);
      EXPECT_NEAR(r.logprobs[k].logprob, lp[pos][r.ids[k]].item<double>(), 2e-3) << k;
      ASSERT_EQ(r.logprobs[k].top.size(), 4u);
      auto best = std::get<1>(lp[pos].max(0)).item<int64_t>();
      EXPECT_EQ(r.logprobs[k].top[0].first, best);
      for (size_t a = 1; a < 4; ++a) EXPECT_GE(r.logprobs[k].top[a - 1].second, r.logprobs[k].top[a].second);
      if (t == 0.0) {
        EXPECT_EQ(r.ids[k], best);
      }
    }
  }
}

}  // namespace
}  // namespace kaizen::generate
