// The LoRA trainer: a library API so that `kaizenctl train` and the daemon's learner run
// the same code. The base decoder is shared and frozen (no copy, no gradients: decoder
// parameters never require grad); only the adapter's A and B are trained.
//
// Algorithm (PEFT + HF Trainer semantics): A Kaiming-uniform / B zero init (or a warm
// start), AdamW (decoupled weight decay, default 0 for LoRA), optional LoRA+ (B learns
// lr_b_ratio times faster, Hayou et al. 2024), linear warmup then cosine decay or
// constant LR, gradient accumulation over micro-batches, global-norm clipping. The loss
// of an optimizer step is the mean cross entropy over all its answer tokens (HF's mean
// over the unmasked labels of the whole batch). Micro-batches are length-bucketed
// (rows of similar length, a token budget per batch) so almost no compute goes to padding.
//
// Deterministic on CPU for a given seed and thread count. Thread-safety: one train() at a
// time per Trainer; the shared decoder may serve forward() on other threads meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "learning/adapter/adapter.h"
#include "learning/model/decoder.h"
#include "learning/train/dataset.h"

namespace kaizen::train {

enum class LrSchedule { kCosine, kConstant };

struct TrainOptions {
  // Adapter shape (ignored for a warm start, which keeps init_from's shape).
  int64_t rank = 16;                // LoRA r
  double alpha = 32;                // lora_alpha; scale = alpha / r
  bool use_rslora = false;          // scale = alpha / sqrt(r)
  std::vector<adapter::Target> targets = {adapter::Target::kQ,    adapter::Target::kK,
                                          adapter::Target::kV,    adapter::Target::kO,
                                          adapter::Target::kGate, adapter::Target::kUp,
                                          adapter::Target::kDown};
  std::shared_ptr<const adapter::Adapter> init_from;  // warm start (copied; never mutated)

  // Optimisation.
  int64_t epochs = 3;               // passes over the examples
  int64_t max_steps = 0;            // > 0: stop after this many optimizer steps
  double lr = 2e-4;                 // peak learning rate (of A; B gets lr * lr_b_ratio)
  double lr_b_ratio = 1.0;          // LoRA+: > 1 speeds up learning of B
  LrSchedule schedule = LrSchedule::kCosine;
  double warmup_ratio = 0.03;       // fraction of steps with linear warmup from lr/warmup
  double min_lr_ratio = 0.0;        // cosine floor, as a fraction of lr
  double weight_decay = 0.0;        // AdamW decoupled decay (0: LoRA's usual choice)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double clip = 1.0;                // max global grad norm; <= 0 disables clipping
  int64_t batch_tokens = 4096;      // padded tokens per micro-batch (rows * longest row)
  int64_t grad_accum = 1;           // micro-batches per optimizer step
  uint64_t seed = 0;                // LoRA init and batch order

  std::string metrics_path;         // JSONL, one line per optimizer step ("" = none)

  // Recipe for the randomly initialised demo/test models (hidden_size < 256, see README
  // "The demo model"): a model that knows no language needs a much larger step than a
  // pretrained one. Real checkpoints keep the defaults above.
  static TrainOptions for_model(const model::ModelConfig& config);
};

struct TrainProgress {
  int64_t step = 0;          // optimizer steps done (1-based after the first)
  int64_t total_steps = 0;
  int64_t epoch = 0;         // 0-based epoch of this step
  double loss = 0;           // mean answer-token loss of this step
  double lr = 0;             // learning rate of A used in this step
  double grad_norm = 0;      // before clipping
  int64_t tokens = 0;        // real tokens processed so far
  int64_t target_tokens = 0; // answer tokens processed so far
  double elapsed_s = 0;
  double tokens_per_s = 0;   // real tokens / elapsed
  double eta_s = 0;
};

// Called after every optimizer step; return false to stop after it (the adapter trained
// so far is returned, result.cancelled = true). Runs on the training thread.
using ProgressFn = std::function<bool(const TrainProgress&)>;

struct TrainResult {
  std::shared_ptr<adapter::Adapter> adapter;  // trained; tensors detached, no grad
  int64_t steps = 0;
  bool cancelled = false;
  std::vector<double> step_losses;  // one per optimizer step
  double seconds = 0;
  int64_t tokens = 0;               // real tokens processed
  int64_t padded_tokens = 0;        // tokens including padding
  double tokens_per_s = 0;
};

// Rehearsal for continual learning: every epoch trains on all the new examples plus the
// next `per_epoch` examples of `pool`, taken in turn from one seeded shuffle of it. The
// compute per epoch is that of a fixed replay sample of that size, but over the epochs
// every pool example is rehearsed (with pool.size() <= per_epoch * epochs, each at least
// once): a fixed sample leaves the rest of what was learned unrehearsed, and a small
// model forgets it (README, forgetting table).
struct Rehearsal {
  std::vector<Example> pool;
  size_t per_epoch = 0;
};

class Trainer {
 public:
  // Throws std::invalid_argument for inconsistent options (rank <= 0, lr <= 0, ...).
  Trainer(std::shared_ptr<const model::Decoder> base, TrainOptions options);

  // Trains on `examples` (each must fit: length >= 2 with at least one target token).
  // Throws std::invalid_argument for no usable examples; libtorch errors propagate.
  TrainResult train(const std::vector<Example>& examples, const ProgressFn& progress = {});
  // The same with rehearsal of `rehearsal.pool` (see Rehearsal); the pool's examples must
  // fit too.
  TrainResult train(const std::vector<Example>& examples, const Rehearsal& rehearsal,
                    const ProgressFn& progress = {});

  // Optimizer steps train() will take for these examples (and this rehearsal).
  int64_t planned_steps(const std::vector<Example>& examples, const Rehearsal& rehearsal = {}) const;

  const TrainOptions& options() const { return options_; }

 private:
  std::shared_ptr<const model::Decoder> base_;
  TrainOptions options_;
};

// Learning-rate factor (of the peak) at optimizer step `step` (0-based) of `total`.
double lr_factor(const TrainOptions& o, int64_t step, int64_t total);

}  // namespace kaizen::train
