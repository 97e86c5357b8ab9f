// Next-token selection: greedy, or temperature / top-k / top-p / min-p sampling with a
// repetition penalty, applied in Hugging Face's order (repetition penalty, temperature,
// top-k, top-p, min-p). Seedable: the same seed and logits give the same tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <torch/types.h>

namespace kaizen::generate {

struct SamplingParams {
  double temperature = 0.0;         // 0 = greedy (argmax)
  int64_t top_k = 0;                // 0 = off
  double top_p = 1.0;               // 1 = off
  double min_p = 0.0;               // 0 = off; drop tokens below min_p * max prob
  double repetition_penalty = 1.0;  // 1 = off; HF semantics (divide positive logits)
  std::optional<uint64_t> seed;     // unset: seeded from std::random_device
};

class Sampler {
 public:
  explicit Sampler(SamplingParams params);
  // logits: (V) for one sequence, any device/dtype. history: ids seen so far (prompt +
  // generated), used by the repetition penalty.
  int64_t sample(const torch::Tensor& logits, const std::vector<int64_t>& history);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;  // reused logits buffer, no per-token allocation
  std::vector<int32_t> order_;  // reused index buffer
};

}  // namespace kaizen::generate
