// The causal-LM loss of HF (transformers loss_utils.ForCausalLMLoss): logits at position
// t predict labels[t + 1], labels == -100 are ignored, logits upcast to float32 — but
// computed only at the label positions and in row chunks, with the softmax gradient
// formed in place. With Qwen3's 151,936-token vocabulary a (T, V) logits tensor and its
// autograd copies would otherwise dominate both time and memory.
#pragma once

#include <cstdint>

#include "learning/adapter/adapter.h"
#include "learning/model/decoder.h"
#include "learning/train/batch.h"

namespace kaizen::train {

struct LossSums {
  double loss_sum = 0;     // sum of cross entropy over target tokens (nats)
  int64_t targets = 0;     // target tokens counted
  int64_t correct = 0;     // targets that are the argmax of their logits (teacher forcing)
  double mean() const { return targets ? loss_sum / static_cast<double>(targets) : 0.0; }
};

struct LossOptions {
  // > 0: backpropagate loss_sum * backward_scale into the adapter's tensors (their .grad
  // accumulates, as with loss.backward()). 0: forward only (evaluation).
  double backward_scale = 0;
  // Label positions per (rows, V) logits chunk; 0 = 256. Each chunk reads the (V, C)
  // output weight twice (logits, then the gradient), so fewer, larger chunks are faster
  // (27-row chunks made Qwen3-0.6B training 1.3x slower); the chunk lives in a per-thread
  // buffer that is reused, not reallocated.
  int64_t chunk_rows = 0;
};

// Runs the decoder on `batch` with `adapter` (nullptr = base) and returns the loss sums.
// With backward_scale > 0 the adapter tensors must require grad and grad mode must be on.
LossSums causal_lm_loss(const model::Decoder& decoder, const adapter::Adapter* adapter, const Batch& batch,
                        const LossOptions& options);

}  // namespace kaizen::train
