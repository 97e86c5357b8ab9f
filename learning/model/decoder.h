// The decoder-only transformer of Qwen3, Qwen2 and Llama as one module whose
// parameter names are the Hugging Face keys (model.layers.0.self_attn.q_proj.weight,
// ...), so loading a checkpoint is a lookup.
//
// Reference: transformers/models/qwen3/modeling_qwen3.py (Qwen3Attention,
// Qwen3RMSNorm, Qwen3MLP, apply_rotary_pos_emb), qwen2/modeling_qwen2.py,
// llama/modeling_llama.py; rope scaling from modeling_rope_utils.py.
//
// Thread-safety: after load the weights are immutable; forward() may run on several
// threads at once as long as each uses its own KVCache. The base weights never
// require grad; gradients flow only into an adapter's tensors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "learning/adapter/adapter.h"
#include "learning/model/config.h"
#include "learning/model/kv_cache.h"

namespace kaizen::model {

class Linear;
class RMSNorm;
class DecoderLayer;
struct StepRope;

struct DecoderOptions {
  torch::Device device = torch::kCPU;      // where weights and activations live
  torch::ScalarType dtype = torch::kFloat; // compute dtype (fp32 on CPU, bf16 on CUDA)
};

// Which positions get logits from forward().
enum class LogitsFor {
  kAll,   // (B, T, V): every position (scoring, training, `model logits`)
  kLast,  // (B, V): the last valid position of each row (generation; skips T-1 lm_head rows)
};

class Decoder : public torch::nn::Module {
 public:
  // Builds the module tree with placeholder tensors of the right shapes; load_weights()
  // or init_random() fills them.
  Decoder(ModelConfig config, DecoderOptions options);

  const ModelConfig& config() const { return config_; }
  const DecoderOptions& options() const { return options_; }

  // Every parameter's HF name and expected shape (tied lm_head not included).
  std::vector<std::pair<std::string, std::vector<int64_t>>> parameter_shapes() const;

  // ids: (B, T) int64, right-padded; lengths[b] = valid new tokens of row b (all T when
  // empty). With a cache, row b continues at position cache->length(b) and the cache
  // advances by lengths[b]; without one, every row starts at position 0.
  // adapter: nullptr = the base model, bit for bit.
  torch::Tensor forward(const torch::Tensor& ids, KVCache* cache,
                        const adapter::Adapter* adapter, LogitsFor which = LogitsFor::kAll,
                        const std::vector<int64_t>& lengths = {}) const;

  // One decode step for B independent sequences (continuous batching across requests):
  // row b feeds token ids[b] at position caches[b]->length(0) of its own batch-1 cache,
  // with its own adapter (nullptr = base). The projections run once over all B rows, so
  // every weight is read once per step instead of once per sequence (decode is bound by
  // reading weights); attention runs row by row on each row's cache, so rows at very
  // different lengths cost no padding. LoRA deltas apply per group of rows sharing an
  // adapter. With B = 1 the result is bit for bit forward(ids, cache, adapter, kLast).
  // Returns (B, V) logits; every cache advances by one. Inference only (no autograd).
  // Throws std::invalid_argument on mismatched sizes, a cache of batch != 1 or an
  // adapter made for another layer count; no cache advances then.
  torch::Tensor decode_step(const std::vector<int64_t>& ids, const std::vector<KVCache*>& caches,
                            const std::vector<const adapter::Adapter*>& adapters) const;

  // The final-norm hidden states (B, T, C) — training computes logits only where it
  // needs them, since (T, V) with V = 151936 dominates memory otherwise.
  torch::Tensor hidden_states(const torch::Tensor& ids, KVCache* cache,
                              const adapter::Adapter* adapter,
                              const std::vector<int64_t>& lengths = {}) const;
  // (..., C) -> (..., V)
  torch::Tensor lm_head(const torch::Tensor& hidden) const;
  // The (V, C) output projection (embed_tokens' weight when tied); the LoRA trainer forms
  // the gradient of the loss w.r.t. hidden states from it without autograd on (N, V).
  const torch::Tensor& lm_head_weight() const;

  // Named weights for saving (HF names; includes lm_head.weight only when untied).
  std::vector<std::pair<std::string, torch::Tensor>> named_weights() const;
  // Replaces one weight (shape-checked); used by the loader, random init and merge.
  void set_weight(const std::string& name, const torch::Tensor& value);

  KVCache make_cache(int64_t batch, int64_t capacity) const {
    return KVCache(config_, batch, capacity, options_.device, options_.dtype);
  }

 private:
  torch::Tensor run_layers(const torch::Tensor& ids, KVCache* cache,
                           const adapter::Adapter* adapter, const std::vector<int64_t>& lengths) const;
  // cos/sin (P, D) tables in fp32, grown on demand (guarded: forward is const and shared).
  std::pair<torch::Tensor, torch::Tensor> rope_tables(int64_t positions) const;
  // RoPE at positions pos (B, T) int64, from tables of at least `positions` rows.
  StepRope rope_at(const torch::Tensor& pos, int64_t positions) const;

  ModelConfig config_;
  DecoderOptions options_;
  torch::Tensor embed_;            // model.embed_tokens.weight (V, C)
  std::shared_ptr<RMSNorm> norm_;  // model.norm
  std::shared_ptr<Linear> lm_head_;  // null when tied
  std::vector<std::shared_ptr<DecoderLayer>> layers_;
  torch::Tensor inv_freq_;         // (D/2) fp32, after rope scaling
  mutable std::mutex rope_mu_;     // guards rope_cos_/rope_sin_ growth
  mutable torch::Tensor rope_cos_, rope_sin_;
};

}  // namespace kaizen::model
