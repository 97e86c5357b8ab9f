// Batches for LoRA training and evaluation: right-padded rows of similar length, so
// that padding costs little (examples are sorted by length into buckets bounded by a
// token budget), and HF-convention labels.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <torch/types.h>

#include "learning/train/dataset.h"

namespace kaizen::train {

inline constexpr int64_t kIgnoreIndex = -100;  // HF: label positions without loss

struct Batch {
  torch::Tensor ids;             // (B, T) int64, right-padded with 0
  std::vector<int64_t> lengths;  // real tokens of each row
  torch::Tensor labels;          // (B, T) int64, aligned with ids; kIgnoreIndex = no loss
  int64_t tokens = 0;            // sum(lengths)
  int64_t target_tokens = 0;     // label positions with loss (after the shift)
  int64_t padded_tokens() const { return ids.defined() ? ids.numel() : 0; }
};

// Builds one batch from the given examples (in that order).
Batch make_batch(const std::vector<const Example*>& rows);

// Groups example indices into batches whose padded size (rows * longest row) stays
// within batch_tokens (a longer single example still gets a batch of its own). Examples
// are ordered by length, ties broken by `rng`, so rows of a batch are nearly equal in
// length; the batch order is then shuffled by `rng` (no shuffle when rng is null, for
// evaluation).
std::vector<std::vector<size_t>> bucket_by_length(const std::vector<int64_t>& lengths, int64_t batch_tokens,
                                                  std::mt19937_64* rng);

}  // namespace kaizen::train
