#include "learning/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <torch/torch.h>

namespace kaizen::generate {

Sampler::Sampler(SamplingParams params) : params_(params) {
  if (params_.temperature < 0) throw std::invalid_argument("temperature must be >= 0");
  if (params_.top_p <= 0 || params_.top_p > 1) throw std::invalid_argument("top_p must be in (0, 1]");
  if (params_.min_p < 0 || params_.min_p > 1) throw std::invalid_argument("min_p must be in [0, 1]");
  if (params_.top_k < 0) throw std::invalid_argument("top_k must be >= 0");
  if (params_.repetition_penalty <= 0) throw std::invalid_argument("repetition_penalty must be > 0");
  rng_.seed(params_.seed ? *params_.seed : std::random_device{}());
}

int64_t Sampler::sample(const torch::Tensor& logits_in, const std::vector<int64_t>& history) {
  torch::Tensor logits = logits_in.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t V = logits.numel();
  scratch_.assign(logits.data_ptr<float>(), logits.data_ptr<float>() + V);
  float* x = scratch_.data();
  if (params_.repetition_penalty != 1.0) {
    const float p = static_cast<float>(params_.repetition_penalty);
    // HF applies the penalty once per distinct token, whatever its count.
    std::vector<int64_t> seen(history);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t id : seen) {
      if (id < 0 || id >= V) continue;
      x[id] = x[id] > 0 ? x[id] / p : x[id] * p;
    }
  }
  if (params_.temperature == 0.0) {
    return std::max_element(x, x + V) - x;
  }
  const float inv_t = static_cast<float>(1.0 / params_.temperature);
  // Candidates sorted by logit, descending; top-k bounds how many we sort.
  order_.resize(static_cast<size_t>(V));
  std::iota(order_.begin(), order_.end(), 0);
  const int64_t k = params_.top_k > 0 ? std::min(params_.top_k, V) : V;
  auto by_logit = [x](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  if (k < V) {
    std::nth_element(order_.begin(), order_.begin() + k, order_.end(), by_logit);
    order_.resize(static_cast<size_t>(k));
  }
  std::sort(order_.begin(), order_.end(), by_logit);
  // Softmax over the kept candidates at temperature T.
  const float max_logit = x[order_[0]] * inv_t;
  std::vector<double> probs(order_.size());
  double sum = 0;
  for (size_t i = 0; i < order_.size(); ++i) {
    probs[i] = std::exp(static_cast<double>(x[order_[i]] * inv_t - max_logit));
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;
  size_t keep = probs.size();
  if (params_.top_p < 1.0) {  // smallest prefix whose mass reaches top_p (at least one)
    double cum = 0;
    for (size_t i = 0; i < probs.size(); ++i) {
      cum += probs[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0) {
    const double floor = params_.min_p * probs[0];
    size_t n = 1;
    while (n < keep && probs[n] >= floor) ++n;
    keep = n;
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += probs[i];
  double u = std::uniform_real_distribution<double>(0.0, mass)(rng_);
  for (size_t i = 0; i < keep; ++i) {
    u -= probs[i];
    if (u <= 0) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace kaizen::generate
