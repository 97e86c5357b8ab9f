// A LoRA adapter as a value (docs/DESIGN.md decision 2): per decoder layer and target
// projection, A (r, in) and B (out, r), applied as y = W x + scale * B (A x).
// Serving shares adapters as std::shared_ptr<const Adapter>; the decoder never
// mutates one. Training builds its own Adapter whose tensors require grad.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "learning/adapter/target.h"

namespace kaizen::adapter {

struct LoraPair {
  torch::Tensor a;  // (r, in)
  torch::Tensor b;  // (out, r)
  bool defined() const { return a.defined(); }
};

class Adapter {
 public:
  // An adapter with no modules for a model of `num_layers` layers.
  Adapter(int64_t num_layers, int64_t rank, double alpha, bool use_rslora = false);

  int64_t rank() const { return rank_; }
  double alpha() const { return alpha_; }
  bool use_rslora() const { return use_rslora_; }
  // alpha / r (or alpha / sqrt(r) with rsLoRA), the factor on B (A x).
  double scale() const { return scale_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }

  // nullptr when the projection carries no LoRA. O(1); called on every projection.
  const LoraPair* find(int64_t layer, Target t) const {
    const LoraPair& p = layers_[static_cast<size_t>(layer)][static_cast<int>(t)];
    return p.defined() ? &p : nullptr;
  }
  void set(int64_t layer, Target t, LoraPair pair);
  // Target names present in any layer, in canonical order.
  std::vector<std::string> target_modules() const;
  // All (module path, pair) entries in layer order; for saving and optimizers.
  std::vector<std::pair<std::string, const LoraPair*>> entries() const;
  std::vector<torch::Tensor> parameters() const;  // a0, b0, a1, b1, ... in entries() order

  // Metadata carried to/from adapter_config.json.
  std::string base_model_name_or_path;

 private:
  int64_t rank_;
  double alpha_;
  bool use_rslora_;
  double scale_;
  std::vector<std::array<LoraPair, kNumTargets>> layers_;
};

}  // namespace kaizen::adapter
