// Learning, end to end: the tiny random Qwen3 demo model (make-tiny defaults) learns the
// synthetic Sabitech facts (examples/sabitech_facts.jsonl, from make_facts.py: names,
// dates, numbers, Vietnamese and English) with the trainer's small-model defaults, to
// >= 95% answer-token accuracy and >= 90% exact greedy answers. The default run uses a
// slice of the facts to stay within the CI budget; DISABLED_AllFacts (ctest label soak)
// learns all of them.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learning/eval/metrics.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"
#include "testing/kaizen_test.h"

namespace kaizen::train {
namespace {

// min_accuracy / min_exact: the targets are 0.95 / 0.90.
// epochs: 0 = the recipe's (60); all 216 facts need 120-150 passes for exact answers.
void learn_facts(size_t count, double min_accuracy, double min_exact, int64_t epochs = 0) {
  model::set_compute_threads(2);
  auto tok = text::Tokenizer::from_model_dir(testing::tokenizer_dir());
  auto tpl = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);
  Dataset ds = load_chat_jsonl(testing::source_dir() + "/examples/sabitech_facts.jsonl", *tok, tpl);
  ASSERT_GE(ds.examples.size(), 200u);
  ASSERT_TRUE(ds.bad_lines.empty());
  if (count < ds.examples.size()) ds.examples.resize(count);
  std::shared_ptr<const model::Decoder> d = model::make_random_decoder(model::TinyModelSpec{});
  TrainOptions o = TrainOptions::for_model(d->config());
  if (epochs > 0) o.epochs = epochs;
  Trainer trainer(d, o);
  TrainResult r = trainer.train(ds.examples);
  auto acc = eval::answer_token_accuracy(*d, r.adapter.get(), ds.examples);
  eval::ExactMatchOptions eo;
  eo.eos_token_ids = {151645, 151643};
  auto em = eval::greedy_exact_match(*d, tok, tpl, r.adapter.get(), ds.examples, eo);
  auto before = eval::answer_token_accuracy(*d, nullptr, ds.examples);
  std::printf("%zu facts, %lld steps in %.1f s (%.0f tokens/s): loss %.3f -> %.3f, answer-token accuracy %.1f%% "
              "(base %.1f%%), exact match %.1f%%\n",
              ds.examples.size(), static_cast<long long>(r.steps), r.seconds, r.tokens_per_s, r.step_losses.front(),
              r.step_losses.back(), 100 * acc.accuracy(), 100 * before.accuracy(), 100 * em.rate());
  int shown = 0;
  for (const auto& item : em.items) {
    if (!item.match && shown++ < 5) std::printf("  miss: want '%s' got '%s'\n", item.expected.c_str(), item.generated.c_str());
  }
  EXPECT_GE(acc.accuracy(), min_accuracy);
  EXPECT_GE(em.rate(), min_exact);
  EXPECT_LT(r.step_losses.back(), 0.5 * r.step_losses.front());
  EXPECT_LT(before.accuracy(), 0.05);  // the base model knew none of it
}

TEST(Learning, TinyQwen3LearnsCompanyFacts) { learn_facts(48, 0.95, 0.90); }

// 120 epochs measured 99.5% accuracy / 91.7% exact (494 s), then 99.3% / 89.4% (372 s)
// once the loss computed logsumexp in place: same math, other rounding, and a margin that
// thin does not survive it. 150 epochs: see README "Recipes" (60 epochs: 95.6% / 43.1%).
TEST(Learning, DISABLED_AllFacts) { learn_facts(100000, 0.95, 0.90, 150); }

}  // namespace
}  // namespace kaizen::train
