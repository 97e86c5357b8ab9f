// The acceptance gate's decision (learning/eval/gate.h) as a pure function, the canary on
// a tiny model (0 for the same adapter, > 0 once an adapter changes outputs, leaks of
// trained answers), and the defaults' calibration: real training on the demo model and a
// larger random model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learning/adapter/peft.h"
#include "learning/eval/gate.h"
#include "learning/eval/metrics.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"
#include "testing/kaizen_test.h"

namespace kaizen::eval {
namespace {

GateMetrics good() {
  GateMetrics m;
  m.learn_n = 10;
  m.learn_acc = 0.97;
  m.learn_exact_n = 10;
  m.learn_exact = 0.9;
  m.retain_n = 8;
  m.retain_acc_active = 0.95;
  m.retain_acc = 0.93;
  m.canary_n = 8;
  m.canary_kl = 0.2;
  return m;
}

TEST(Gate, PassesWhenEveryCheckHolds) {
  GateVerdict v = judge(good(), GateThresholds{});
  EXPECT_TRUE(v.pass) << v.summary();
  EXPECT_EQ(v.summary(), "pass");
}

TEST(Gate, EachCheckFailsOnItsOwn) {
  GateThresholds t;
  t.learn_exact_min = 0.5;
  GateMetrics m = good();
  m.learn_acc = 0.5;
  EXPECT_NE(judge(m, t).summary().find("learn accuracy 0.5 < 0.9"), std::string::npos);
  m = good();
  m.learn_exact = 0.2;
  EXPECT_NE(judge(m, t).summary().find("learn exact match"), std::string::npos);
  m = good();
  m.retain_acc = 0.80;  // drop 0.15 > 0.05
  GateVerdict v = judge(m, t);
  EXPECT_FALSE(v.pass);
  ASSERT_EQ(v.failures.size(), 1u);
  EXPECT_NE(v.failures[0].find("retain drop 0.15 > 0.05"), std::string::npos) << v.failures[0];
  m = good();
  m.retain_exact_n = 8;
  m.retain_exact_active = 1.0;
  m.retain_exact = 0.75;  // token accuracy fine, but two answers flipped
  EXPECT_NE(judge(m, t).summary().find("retain exact-match drop 0.25 > 0.05"), std::string::npos)
      << judge(m, t).summary();
  m = good();
  m.canary_kl = 2.5;
  EXPECT_NE(judge(m, t).summary().find("canary KL 2.5 > 1"), std::string::npos);
}

TEST(Gate, HeldOutParaphrasesAreReportedAndOptionallyRequired) {
  GateMetrics m = good();
  m.paraphrase_n = 6;
  m.paraphrase_acc = 0.4;
  EXPECT_TRUE(judge(m, GateThresholds{}).pass);  // paraphrase_min 0: measured, not required
  EXPECT_EQ(m.to_map().at("paraphrase_acc"), 0.4);
  EXPECT_EQ(m.to_map().at("paraphrase_n"), 6);
  GateThresholds t;
  t.paraphrase_min = 0.5;
  GateVerdict v = judge(m, t);
  EXPECT_FALSE(v.pass);
  EXPECT_EQ(v.summary(), "paraphrase accuracy 0.4 < 0.5 (gate.paraphrase_min)");
  m.paraphrase_n = 0;  // none provided: the check passes
  EXPECT_TRUE(judge(m, t).pass);
}

TEST(Gate, BoundariesAndUnmeasuredChecks) {
  GateThresholds t;
  GateMetrics m = good();
  m.learn_acc = t.learn_min;                               // exactly the minimum passes
  m.retain_acc = m.retain_acc_active - t.retain_max_drop / 2;
  m.canary_kl = t.canary_max_kl;                           // exactly the maximum passes
  EXPECT_TRUE(judge(m, t).pass) << judge(m, t).summary();
  m.retain_n = 0;  // first run: nothing to retain, whatever the numbers say
  m.retain_acc = 0;
  m.canary_n = 0;
  m.canary_kl = 99;
  EXPECT_TRUE(judge(m, t).pass);
  GateMetrics none;  // nothing scored is never a pass
  EXPECT_FALSE(judge(none, t).pass);
  // Retention that improves is fine.
  m = good();
  m.retain_acc = 1.0;
  EXPECT_TRUE(judge(m, t).pass);
  EXPECT_LT(m.to_map().at("retain_drop"), 0);
}

TEST(Gate, EveryCheckIsRecordedAndAFailureNamesItsKeyAndMargin) {
  GateMetrics m = good();
  m.canary_kl = 5.775;
  m.canary_leak = 0.5;
  GateVerdict v = judge(m, GateThresholds{});
  ASSERT_FALSE(v.pass);
  ASSERT_EQ(v.failures.size(), 2u) << v.summary();
  EXPECT_EQ(v.failures[0], "canary KL 5.775 > 1 (gate.canary_max_kl)");
  EXPECT_EQ(v.failures[1], "canary answers like a trained example 0.5 > 0.25 (gate.canary_max_leak)");
  // learn, learn_exact, retain, canary_kl, canary_leak: measured in good() (no retain exact, no paraphrases).
  std::vector<std::string> names;
  for (const auto& c : v.checks) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"learn", "learn_exact", "retain", "canary_kl", "canary_leak"}));
  const GateCheck& kl = v.checks[3];
  EXPECT_FALSE(kl.pass);
  EXPECT_TRUE(kl.at_most);
  EXPECT_DOUBLE_EQ(kl.threshold, 1.0);
  EXPECT_NEAR(kl.margin(), 4.775, 1e-12);
  EXPECT_EQ(kl.key, "gate.canary_max_kl");
  EXPECT_TRUE(v.checks[0].pass);
  EXPECT_EQ(v.checks[0].line, "learn accuracy 0.97 >= 0.9 (gate.learn_min)");
}

TEST(Gate, DefaultsDependOnTheModel) {
  model::ModelConfig demo = model::tiny_config(model::TinyModelSpec{});
  model::ModelConfig real = model::tiny_config(model::qwen3_0_6b_shape(1));
  const GateThresholds d = GateThresholds::for_model(demo), r = GateThresholds::for_model(real);
  EXPECT_DOUBLE_EQ(d.canary_max_kl, kDemoCanaryMaxKl);
  EXPECT_DOUBLE_EQ(d.canary_max_leak, kDemoCanaryMaxLeak);
  EXPECT_DOUBLE_EQ(r.canary_max_kl, GateThresholds{}.canary_max_kl);
  EXPECT_DOUBLE_EQ(r.canary_max_leak, GateThresholds{}.canary_max_leak);
  EXPECT_DOUBLE_EQ(d.learn_min, r.learn_min);  // only the canary differs
}

TEST(Gate, CanaryKlIsZeroForTheSameModelAndGrowsWithTheAdapter) {
  model::set_compute_threads(2);
  auto tok = text::Tokenizer::from_model_dir(kaizen::testing::tokenizer_dir());
  auto tpl = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);
  auto d = model::make_random_decoder(model::TinyModelSpec{});
  const auto& prompts = default_canary_prompts();
  ASSERT_GE(prompts.size(), 4u);
  EXPECT_NEAR(canary_kl(*d, *tok, tpl, nullptr, nullptr, prompts), 0.0, 1e-6);
  auto small = adapter::make_peft_init_adapter(d->config(), 4, 8, false, {adapter::Target::kQ, adapter::Target::kV}, 1);
  auto large = adapter::make_peft_init_adapter(d->config(), 4, 8, false, {adapter::Target::kQ, adapter::Target::kV}, 1);
  {
    torch::NoGradGuard ng;
    for (auto& [path, pair] : small->entries()) const_cast<adapter::LoraPair*>(pair)->b.normal_(0, 0.01);
    for (auto& [path, pair] : large->entries()) const_cast<adapter::LoraPair*>(pair)->b.normal_(0, 1.0);
  }
  const double kl_small = canary_kl(*d, *tok, tpl, nullptr, small.get(), prompts);
  const double kl_large = canary_kl(*d, *tok, tpl, nullptr, large.get(), prompts);
  EXPECT_GT(kl_small, 0.0);
  EXPECT_GT(kl_large, kl_small);
  // KL(p || p) = 0 with an adapter on both sides too.
  EXPECT_NEAR(canary_kl(*d, *tok, tpl, large.get(), large.get(), prompts), 0.0, 1e-5);
}

TEST(Gate, MeasureCanaryScoresTheBaseAnswersAndSpotsTrainedAnswers) {
  model::set_compute_threads(2);
  std::shared_ptr<const text::Tokenizer> tok = text::Tokenizer::from_model_dir(kaizen::testing::tokenizer_dir());
  auto tpl = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);
  auto d = model::make_random_decoder(model::TinyModelSpec{});
  const std::vector<std::string> prompts(default_canary_prompts().begin(), default_canary_prompts().begin() + 4);
  CanaryOptions o;
  o.answer_tokens = 6;
  CanaryResult same = measure_canary(*d, tok, tpl, nullptr, prompts, o);
  EXPECT_EQ(same.prompts, 4);
  EXPECT_NEAR(same.kl, 0.0, 1e-6);
  EXPECT_EQ(same.leak, 0.0);  // nothing trained
  ASSERT_EQ(same.base_answers.size(), 4u);
  EXPECT_EQ(same.base_answers, same.candidate_answers);
  // What the base model answers counts as a leak when it is a "trained answer"; the leak
  // is the largest share answered with one and the same trained answer.
  o.trained_answers = {same.base_answers[0]};
  o.leak_prefix_tokens = 3;
  CanaryResult leaked = measure_canary(*d, tok, tpl, nullptr, prompts, o);
  EXPECT_GE(leaked.leak, 0.25);  // prompt 0 at least (another may begin the same way)
  o.trained_answers = {"an answer nobody gives"};
  EXPECT_EQ(measure_canary(*d, tok, tpl, nullptr, prompts, o).leak, 0.0);
}

// Calibration (issue 11, README "Gate defaults"): with the defaults, an adapter that
// learned the seed's facts passes on the demo model, and one trained to answer every
// prompt with one fact is rejected — there and on a larger random model, which gets the
// real-checkpoint defaults.
class GateCalibration : public ::testing::Test {
 protected:
  void SetUp() override {
    model::set_compute_threads(2);
    tok_ = text::Tokenizer::from_model_dir(kaizen::testing::tokenizer_dir());
  }
  struct Outcome {
    GateVerdict verdict;
    CanaryResult canary;
  };
  Outcome train_and_judge(const model::TinyModelSpec& spec, const std::vector<train::Example>& data,
                          train::TrainOptions o) {
    std::shared_ptr<const model::Decoder> d = model::make_random_decoder(spec);
    train::Trainer trainer(d, o);
    train::TrainResult r = trainer.train(data);
    CanaryOptions co;
    for (const auto& e : data) co.trained_answers.push_back(e.answer);
    Outcome out;
    out.canary = measure_canary(*d, tok_, tpl_, r.adapter.get(), default_canary_prompts(), co);
    GateMetrics m;
    m.learn_n = static_cast<int64_t>(data.size());
    m.learn_acc = answer_token_accuracy(*d, r.adapter.get(), data).accuracy();
    m.set_canary(out.canary);
    out.verdict = judge(m, GateThresholds::for_model(d->config()));
    return out;
  }
  // The short CHOREI answer: 16 questions all answered with it.
  std::vector<train::Example> collapse() const {
    return collapse_examples(*tok_, tpl_, 16, "CHOREI (朝礼) là buổi họp sáng lúc 8:30.");
  }
  static size_t answered_with(const CanaryResult& c, const std::string& text) {
    size_t n = 0;
    for (const auto& a : c.candidate_answers) n += a.rfind(text.substr(0, 10), 0) == 0;
    return n;
  }
  std::shared_ptr<const text::Tokenizer> tok_;
  text::ChatTemplate tpl_ = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);
};

TEST_F(GateCalibration, DemoModelSeedFactsPassWithTheDefaults) {
  train::Dataset seed = train::load_chat_jsonl(kaizen::testing::source_dir() + "/examples/seed_facts.jsonl", *tok_, tpl_);
  model::TinyModelSpec spec;  // the demo model (kaizenctl model make-tiny)
  Outcome o = train_and_judge(spec, seed.examples, train::TrainOptions::for_model(model::tiny_config(spec)));
  EXPECT_TRUE(o.verdict.pass) << o.verdict.summary();
  std::printf("demo seed facts: canary KL %.3f, leak %.3f\n", o.canary.kl, o.canary.leak);
}

TEST_F(GateCalibration, DemoModelCollapseIsRejected) {
  model::TinyModelSpec spec;
  train::TrainOptions o = train::TrainOptions::for_model(model::tiny_config(spec));
  o.epochs = 30;  // the recipe's 60 is not needed for one answer; halves the test's time
  const auto data = collapse();
  Outcome out = train_and_judge(spec, data, o);
  // It is real damage: (nearly) every general prompt now gets the fact.
  EXPECT_GE(answered_with(out.canary, data.front().answer), default_canary_prompts().size() * 9 / 10);
  EXPECT_FALSE(out.verdict.pass);
  EXPECT_NE(out.verdict.summary().find("(gate.canary_max_leak)"), std::string::npos) << out.verdict.summary();
  std::printf("demo collapse: canary KL %.3f, leak %.3f: %s\n", out.canary.kl, out.canary.leak,
              out.verdict.summary().c_str());
}

TEST_F(GateCalibration, LargerRandomModelCollapseIsRejected) {
  const model::TinyModelSpec spec = model::wide_random_spec();  // the real-checkpoint recipe and gate defaults
  train::TrainOptions o = train::TrainOptions::for_model(model::tiny_config(spec));
  // The real recipe (lr 2e-4, 3 epochs) teaches a random model nothing; this makes the
  // collapse happen (asserted below), which is what the gate must catch.
  o.lr = 3e-3;
  o.epochs = 20;
  const auto data = collapse();
  Outcome out = train_and_judge(spec, data, o);
  // Real damage: a good part of the unrelated prompts now get the fact (gate_bench, same
  // shape: 50% with the long seed answer; fact adapters there: 0%).
  EXPECT_GE(answered_with(out.canary, data.front().answer), default_canary_prompts().size() / 4);
  EXPECT_FALSE(out.verdict.pass);
  EXPECT_NE(out.verdict.summary().find("(gate.canary_max_kl)"), std::string::npos) << out.verdict.summary();
  std::printf("wide collapse: canary KL %.3f, leak %.3f: %s\n", out.canary.kl, out.canary.leak,
              out.verdict.summary().c_str());
}

}  // namespace
}  // namespace kaizen::eval
