// The LoRA trainer against the independent Python reference (tools/ref/train.py: HF's
// causal-LM loss, torch.optim.AdamW, clip_grad_norm_): loss and every LoRA gradient on a
// fixed ragged batch within 1e-4, then 10 AdamW steps with the same losses and the same
// trained adapter. Plus batching, determinism, cancellation and the frozen base.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learning/adapter/peft.h"
#include "learning/model/loader.h"
#include "learning/model/safetensors.h"
#include "learning/model/tiny.h"
#include "learning/train/batch.h"
#include "learning/train/loss.h"
#include "learning/train/trainer.h"
#include "testing/kaizen_test.h"

namespace kaizen::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;
using testing::run_ref;
using testing::TempDir;

// Three ragged rows; the first tokens of each are "prompt" (no loss).
std::vector<Example> fixed_examples() {
  const std::vector<std::vector<int64_t>> rows = {
      {151644, 872, 198, 9707, 11, 1879, 151645, 198, 151644, 77091, 198, 3555, 374, 220, 17, 15, 16, 24, 13, 151645},
      {151644, 872, 198, 3838, 30, 151645, 198, 151644, 77091, 198, 785, 4226, 151645},
      {100, 200, 300, 400, 500, 600, 700, 800, 900}};
  const std::vector<int64_t> prompt = {11, 10, 4};
  std::vector<Example> out;
  for (size_t r = 0; r < rows.size(); ++r) {
    Example e;
    e.ids = rows[r];
    e.loss.assign(rows[r].size(), 0);
    for (size_t t = static_cast<size_t>(prompt[r]); t < rows[r].size(); ++t) e.loss[t] = 1;
    out.push_back(e);
  }
  return out;
}

std::string batch_json(const std::vector<Example>& ex) {
  json ids = json::array(), labels = json::array();
  for (const auto& e : ex) {
    json l = json::array();
    for (size_t t = 0; t < e.ids.size(); ++t) l.push_back(e.loss[t] ? e.ids[t] : kIgnoreIndex);
    ids.push_back(e.ids);
    labels.push_back(l);
  }
  return json{{"input_ids", ids}, {"labels", labels}}.dump();
}

class TrainerVsReference : public ::testing::Test {
 protected:
  void SetUp() override {
    KAIZEN_REQUIRE_REF();
    model_ = tmp_ / "model";
    init_ = tmp_ / "init";
    run_ref("make-model --out " + quote(model_) + " --seed 12 --arch qwen3 --std 0.1");
    run_ref("make-adapter --model " + quote(model_) + " --out " + quote(init_) +
            " --seed 4 --rank 4 --alpha 8 --random-b --b-std 0.05");
    std::ofstream(tmp_ / "batch.json") << batch_json(examples_);
    decoder_ = model::load_decoder(model_);
    init_adapter_ = adapter::load_peft_adapter(init_, decoder_->config());
  }
  json ref_steps(const std::string& extra) {
    return json::parse(run_ref("train-steps --model " + quote(model_) + " --batch " + quote(tmp_ / "batch.json") +
                               " --adapter-init " + quote(init_) + " " + extra));
  }
  TrainOptions steps_options(int64_t steps, double lr) const {
    TrainOptions o;
    o.init_from = init_adapter_;
    o.epochs = steps;  // the whole batch is one micro-batch: one step per epoch
    o.lr = lr;
    o.schedule = LrSchedule::kConstant;
    o.warmup_ratio = 0;
    o.clip = 0;
    o.batch_tokens = 1 << 20;
    return o;
  }

  TempDir tmp_;
  std::string model_, init_;
  std::vector<Example> examples_ = fixed_examples();
  std::shared_ptr<model::Decoder> decoder_;
  std::shared_ptr<adapter::Adapter> init_adapter_;
};

TEST_F(TrainerVsReference, LossAndEveryGradientMatch) {
  const std::string grads_path = tmp_ / "grads.safetensors";
  json ref = ref_steps("--steps 1 --lr 1e-3 --out-grads " + quote(grads_path));
  auto lora = adapter::clone_trainable(*init_adapter_);
  std::vector<const Example*> rows;
  for (const auto& e : examples_) rows.push_back(&e);
  Batch batch = make_batch(rows);
  EXPECT_EQ(batch.target_tokens, ref["label_tokens"].get<int64_t>());
  EXPECT_EQ(batch.tokens, ref["tokens"].get<int64_t>());
  LossOptions lo;
  lo.backward_scale = 1.0 / static_cast<double>(batch.target_tokens);
  lo.chunk_rows = 7;  // several chunks, one ragged
  LossSums s = causal_lm_loss(*decoder_, lora.get(), batch, lo);
  EXPECT_NEAR(s.mean(), ref["losses"][0].get<double>(), 1e-4);
  auto ref_grads = model::SafetensorsFile::open(grads_path);
  size_t compared = 0;
  double max_abs_grad = 0;
  for (const auto& [path, pair] : lora->entries()) {
    for (const char* which : {"A", "B"}) {
      const std::string key = "base_model.model." + path + ".lora_" + which + ".weight";
      const torch::Tensor& p = which[0] == 'A' ? pair->a : pair->b;
      ASSERT_TRUE(p.grad().defined()) << key;
      torch::Tensor want = ref_grads->tensor(key);
      EXPECT_LT((p.grad() - want).abs().max().item<double>(), 1e-4) << key;
      max_abs_grad = std::max(max_abs_grad, want.abs().max().item<double>());
      ++compared;
    }
  }
  EXPECT_EQ(compared, ref_grads->tensors().size());
  EXPECT_GT(max_abs_grad, 1e-3);  // gradients are not all ~0
  // The base model got no gradients at all.
  for (const auto& [name, w] : decoder_->named_weights()) EXPECT_FALSE(w.grad().defined()) << name;
}

TEST_F(TrainerVsReference, TenAdamWStepsGiveTheSameLosses) {
  json ref = ref_steps("--steps 10 --lr 1e-2");
  Trainer trainer(decoder_, steps_options(10, 1e-2));
  TrainResult r = trainer.train(examples_);
  ASSERT_EQ(r.steps, 10);
  ASSERT_EQ(r.step_losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_NEAR(r.step_losses[i], ref["losses"][i].get<double>(), 1e-4) << "step " << i;
  EXPECT_LT(r.step_losses.back(), r.step_losses.front() - 0.1);  // it learned something
}

TEST_F(TrainerVsReference, ClippingAndWeightDecayGiveTheSameAdapter) {
  const std::string out = tmp_ / "ref_trained";
  json ref = ref_steps("--steps 4 --lr 5e-3 --clip 0.01 --weight-decay 0.1 --out-adapter " + quote(out));
  ASSERT_GT(ref["grad_norm0"].get<double>(), 0.01);  // clipping is active
  TrainOptions o = steps_options(4, 5e-3);
  o.clip = 0.01;
  o.weight_decay = 0.1;
  TrainResult r = Trainer(decoder_, o).train(examples_);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(r.step_losses[i], ref["losses"][i].get<double>(), 1e-4);
  auto theirs = adapter::load_peft_adapter(out, decoder_->config());
  for (size_t i = 0; i < theirs->entries().size(); ++i) {
    const auto* a = r.adapter->entries()[i].second;
    const auto* b = theirs->entries()[i].second;
    EXPECT_LT((a->a - b->a).abs().max().item<double>(), 1e-4) << theirs->entries()[i].first;
    EXPECT_LT((a->b - b->b).abs().max().item<double>(), 1e-4) << theirs->entries()[i].first;
  }
}

// ---- without the reference ----

model::TinyModelSpec spec() {
  model::TinyModelSpec s;
  s.seed = 3;
  return s;
}

std::vector<Example> synthetic(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    const int len = 6 + static_cast<int>(rng() % 20);
    for (int t = 0; t < len; ++t) {
      e.ids.push_back(static_cast<int64_t>(rng() % 5000));
      e.loss.push_back(t >= len / 2);
    }
    out.push_back(e);
  }
  return out;
}

TEST(Batching, BucketsRespectTheBudgetAndCoverEveryExampleOnce) {
  auto ex = synthetic(200, 1);
  std::vector<int64_t> lengths;
  for (const auto& e : ex) lengths.push_back(e.length());
  std::mt19937_64 rng(5);
  auto batches = bucket_by_length(lengths, 128, &rng);
  std::vector<int> seen(ex.size(), 0);
  int64_t padded = 0, real = 0;
  for (const auto& b : batches) {
    int64_t longest = 0;
    for (size_t i : b) {
      ++seen[i];
      longest = std::max(longest, lengths[i]);
      real += lengths[i];
    }
    EXPECT_LE(longest * static_cast<int64_t>(b.size()), 128);
    padded += longest * static_cast<int64_t>(b.size());
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_LT(static_cast<double>(padded - real) / static_cast<double>(padded), 0.05);  // little padding
  // A single example longer than the budget still gets a batch of its own.
  EXPECT_EQ(bucket_by_length({300, 5}, 128, nullptr).size(), 2u);
}

TEST(Batching, LabelsFollowTheLossMask) {
  auto ex = synthetic(2, 2);
  Batch b = make_batch({&ex[0], &ex[1]});
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t t = 0; t < b.ids.size(1); ++t) {
      const int64_t want = t < ex[r].length() && ex[r].loss[t] && t > 0 ? ex[r].ids[t] : kIgnoreIndex;
      EXPECT_EQ(b.labels[r][t].item<int64_t>(), want);
    }
  }
}

TEST(Trainer, DeterministicForASeedAndBaseStaysFrozen) {
  std::shared_ptr<model::Decoder> d = model::make_random_decoder(spec());
  auto before = d->named_weights();
  std::vector<torch::Tensor> copies;
  for (auto& [n, w] : before) copies.push_back(w.clone());
  TrainOptions o = TrainOptions::for_model(d->config());
  o.epochs = 2;
  o.batch_tokens = 128;
  o.seed = 7;
  auto ex = synthetic(24, 3);
  TrainResult a = Trainer(d, o).train(ex);
  TrainResult b = Trainer(d, o).train(ex);
  ASSERT_EQ(a.step_losses, b.step_losses);
  for (size_t i = 0; i < a.adapter->parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(a.adapter->parameters()[i], b.adapter->parameters()[i]));
  }
  o.seed = 8;
  TrainResult c = Trainer(d, o).train(ex);
  EXPECT_NE(a.step_losses, c.step_losses);
  auto after = d->named_weights();
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(torch::equal(after[i].second, copies[i])) << after[i].first;
    EXPECT_FALSE(after[i].second.requires_grad()) << after[i].first;
    EXPECT_FALSE(after[i].second.grad().defined()) << after[i].first;
  }
  EXPECT_FALSE(a.adapter->parameters()[0].requires_grad());
}

TEST(Trainer, RehearsalRotatesThroughThePoolAtTheEpochBudget) {
  std::shared_ptr<model::Decoder> d = model::make_random_decoder(spec());
  TrainOptions o = TrainOptions::for_model(d->config());
  o.epochs = 4;
  o.batch_tokens = 64;
  auto fresh = synthetic(5, 21);
  Rehearsal rehearsal;
  rehearsal.pool = synthetic(12, 22);
  rehearsal.per_epoch = 3;  // 4 epochs x 3 = the whole pool, each example once
  int64_t fresh_tokens = 0, pool_tokens = 0;
  for (const auto& e : fresh) fresh_tokens += e.length();
  for (const auto& e : rehearsal.pool) pool_tokens += e.length();
  Trainer trainer(d, o);
  const int64_t planned = trainer.planned_steps(fresh, rehearsal);
  TrainResult r = trainer.train(fresh, rehearsal);
  EXPECT_EQ(r.steps, planned);
  // Every epoch saw all new examples and a different quarter of the pool.
  EXPECT_EQ(r.tokens, o.epochs * fresh_tokens + pool_tokens);

  // No pool: exactly the plain run (same batches, same losses).
  TrainResult plain = Trainer(d, o).train(fresh);
  TrainResult empty = Trainer(d, o).train(fresh, Rehearsal{});
  EXPECT_EQ(plain.step_losses, empty.step_losses);

  // A pool example without an answer token is refused like a training example.
  Rehearsal bad;
  bad.pool = synthetic(2, 23);
  bad.pool[1].loss.assign(bad.pool[1].loss.size(), 0);
  bad.per_epoch = 1;
  EXPECT_THROW(Trainer(d, o).train(fresh, bad), std::invalid_argument);
}

TEST(Trainer, ProgressReportsAndCancelsBetweenSteps) {
  std::shared_ptr<model::Decoder> d = model::make_random_decoder(spec());
  TempDir tmp;
  TrainOptions o = TrainOptions::for_model(d->config());
  o.epochs = 3;
  o.batch_tokens = 64;
  o.metrics_path = tmp / "metrics.jsonl";
  Trainer trainer(d, o);
  auto ex = synthetic(20, 4);
  const int64_t planned = trainer.planned_steps(ex);
  std::vector<TrainProgress> seen;
  TrainResult r = trainer.train(ex, [&](const TrainProgress& p) {
    seen.push_back(p);
    return p.step < 3;
  });
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.steps, 3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen.back().total_steps, planned);
  EXPECT_GT(seen.back().tokens_per_s, 0);
  EXPECT_GT(seen.back().eta_s, 0);
  std::ifstream in(o.metrics_path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    EXPECT_TRUE(j.contains("loss") && j.contains("lr") && j.contains("tokens_per_s"));
    ++lines;
  }
  EXPECT_EQ(lines, 3);
}

TEST(Trainer, ScheduleWarmsUpThenDecays) {
  TrainOptions o;
  o.warmup_ratio = 0.1;
  EXPECT_NEAR(lr_factor(o, 0, 100), 0.1, 1e-12);
  EXPECT_NEAR(lr_factor(o, 9, 100), 1.0, 1e-12);
  EXPECT_NEAR(lr_factor(o, 10, 100), 1.0, 1e-12);
  EXPECT_NEAR(lr_factor(o, 55, 100), 0.5, 1e-12);
  EXPECT_LT(lr_factor(o, 99, 100), 0.01);
  o.schedule = LrSchedule::kConstant;
  EXPECT_EQ(lr_factor(o, 99, 100), 1.0);
}

TEST(Trainer, RejectsBadOptions) {
  std::shared_ptr<model::Decoder> d = model::make_random_decoder(spec());
  TrainOptions o;
  o.lr = 0;
  EXPECT_THROW(Trainer(d, o), std::invalid_argument);
  o = TrainOptions();
  o.grad_accum = 0;
  EXPECT_THROW(Trainer(d, o), std::invalid_argument);
  EXPECT_THROW(Trainer(d, TrainOptions()).train({}), std::invalid_argument);
}

}  // namespace
}  // namespace kaizen::train
