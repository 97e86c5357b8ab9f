#include "learning/model/kv_cache.h"

#include <algorithm>
#include <stdexcept>

namespace kaizen::model {

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::Device device,
                 torch::ScalarType dtype)
    : lengths_(static_cast<size_t>(batch), 0), capacity_(std::max<int64_t>(capacity, 1)) {
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    k_.push_back(torch::zeros({batch, config.num_key_value_heads, capacity_, config.head_dim}, opts));
    v_.push_back(torch::zeros_like(k_.back()));
  }
}

int64_t KVCache::max_length() const {
  return lengths_.empty() ? 0 : *std::max_element(lengths_.begin(), lengths_.end());
}

void KVCache::reserve(int64_t needed) {
  if (needed <= capacity_) return;
  int64_t cap = capacity_;
  while (cap < needed) cap *= 2;
  for (size_t l = 0; l < k_.size(); ++l) {
    for (torch::Tensor* t : {&k_[l], &v_[l]}) {
      auto sizes = t->sizes().vec();
      sizes[2] = cap;
      torch::Tensor grown = torch::zeros(sizes, t->options());
      grown.narrow(2, 0, capacity_).copy_(*t);
      *t = grown;
    }
  }
  capacity_ = cap;
}

void KVCache::truncate(int64_t b, int64_t length) {
  if (length < 0 || length > lengths_.at(static_cast<size_t>(b))) {
    throw std::out_of_range("KVCache::truncate: length beyond the cached sequence");
  }
  lengths_[static_cast<size_t>(b)] = length;
}

KVCache KVCache::slice(int64_t b, int64_t length) const {
  if (length > lengths_.at(static_cast<size_t>(b))) {
    throw std::out_of_range("KVCache::slice: length beyond the cached sequence");
  }
  KVCache out(*this);
  out.lengths_ = {length};
  out.capacity_ = std::max<int64_t>(length, 1);
  for (size_t l = 0; l < k_.size(); ++l) {
    out.k_[l] = k_[l].narrow(0, b, 1).narrow(2, 0, out.capacity_).clone();
    out.v_[l] = v_[l].narrow(0, b, 1).narrow(2, 0, out.capacity_).clone();
  }
  return out;
}

int64_t KVCache::bytes() const {
  int64_t n = 0;
  for (size_t l = 0; l < k_.size(); ++l) {
    n += k_[l].numel() * k_[l].element_size() + v_[l].numel() * v_[l].element_size();
  }
  return n;
}

}  // namespace kaizen::model
