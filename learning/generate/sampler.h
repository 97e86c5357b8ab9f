// Next-token selection: greedy, or temperature / top-k / top-p / min-p sampling with a
// repetition penalty, applied in Hugging Face's order (repetition penalty, temperature,
// top-k, top-p, min-p). Seedable: the same seed and logits give the same tokens.
// An optional token mask (constrained decoding, learning/grammar) removes tokens before
// anything else is decided, and logprobs are reported from the distribution the token
// was drawn from: log_softmax(penalised, masked logits / T), T = the temperature (1 when
// greedy), before top-k / top-p / min-p truncation, as vLLM's "processed" logprobs and
// OpenAI's (which reports logprobs at the request's temperature).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace kaizen::generate {

// The chosen token's logprob and the most likely alternatives (descending), natural log.
struct TokenLogprob {
  int64_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int64_t, float>> top;  // up to top_logprobs entries
};

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
  // generated), used by the repetition penalty. allowed (optional): a bitmask of
  // (V + 31) / 32 words, bit id % 32 of word id / 32 set iff token id may be chosen; at
  // least one bit must be set (std::invalid_argument otherwise). logprobs (optional):
  // filled for the chosen token with `top_logprobs` alternatives.
  int64_t sample(const torch::Tensor& logits, const std::vector<int64_t>& history,
                 const uint32_t* allowed = nullptr, TokenLogprob* logprobs = nullptr,
                 int top_logprobs = 0);
  const SamplingParams& params() const { return params_; }

 private:
  // Temperature sampling with top-k / top-p / min-p over x (V), scaled by inv_t.
  int64_t draw(const float* x, int64_t V, float inv_t);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;  // reused logits buffer, no per-token allocation
  std::vector<int32_t> order_;  // reused index buffer
  std::vector<double> probs_;   // reused probabilities (untruncated draws)
};

}  // namespace kaizen::generate
