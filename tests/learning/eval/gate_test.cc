// The acceptance gate's decision (learning/eval/gate.h) as a pure function, and the
// canary KL on a tiny model: 0 for the same adapter, > 0 once an adapter changes outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learning/adapter/peft.h"
#include "learning/eval/gate.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"
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
  EXPECT_EQ(v.summary(), "paraphrase accuracy 0.4 < 0.5");
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

}  // namespace
}  // namespace kaizen::eval
