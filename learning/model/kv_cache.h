// Key/value cache for a batch of B sequences, each with its own length, so that a
// forward step can mix sequences at different positions (continuous batching).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "learning/model/config.h"

namespace kaizen::model {

class KVCache {
 public:
  // Room for `capacity` positions per sequence; grows by doubling when a forward step
  // needs more. Tensors live on `device` in `dtype` (the model's compute dtype).
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::Device device,
          torch::ScalarType dtype);

  int64_t batch() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t capacity() const { return capacity_; }
  int64_t length(int64_t b) const { return lengths_[static_cast<size_t>(b)]; }
  const std::vector<int64_t>& lengths() const { return lengths_; }
  int64_t max_length() const;

  // Grows every layer's storage to hold at least `needed` positions per sequence.
  void reserve(int64_t needed);
  // Forgets everything after position `length` of sequence b (e.g. to reuse a prefix).
  void truncate(int64_t b, int64_t length);
  // A deep copy of sequence b's first `length` positions as a batch-1 cache; this is
  // how a cached prefix is handed to a new request without sharing mutable state.
  KVCache slice(int64_t b, int64_t length) const;
  // Bytes held by the cache tensors.
  int64_t bytes() const;

  // Layer storage: (B, Hkv, capacity, D). Written by the decoder only.
  torch::Tensor& k(int64_t layer) { return k_[static_cast<size_t>(layer)]; }
  torch::Tensor& v(int64_t layer) { return v_[static_cast<size_t>(layer)]; }
  void advance(int64_t b, int64_t n) { lengths_[static_cast<size_t>(b)] += n; }

 private:
  std::vector<torch::Tensor> k_, v_;
  std::vector<int64_t> lengths_;
  int64_t capacity_;
};

}  // namespace kaizen::model
