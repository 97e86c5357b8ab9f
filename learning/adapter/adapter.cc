#include "learning/adapter/adapter.h"

#include <cmath>
#include <stdexcept>

namespace kaizen::adapter {

Adapter::Adapter(int64_t num_layers, int64_t rank, double alpha, bool use_rslora)
    : rank_(rank), alpha_(alpha), use_rslora_(use_rslora), layers_(static_cast<size_t>(num_layers)) {
  if (rank <= 0) throw std::invalid_argument("LoRA rank must be positive");
  scale_ = use_rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / rank;
}

void Adapter::set(int64_t layer, Target t, LoraPair pair) {
  if (layer < 0 || layer >= num_layers()) {
    throw std::out_of_range("adapter layer " + std::to_string(layer) + " out of range");
  }
  layers_[static_cast<size_t>(layer)][static_cast<int>(t)] = std::move(pair);
}

std::vector<std::string> Adapter::target_modules() const {
  std::vector<std::string> out;
  for (int i = 0; i < kNumTargets; ++i) {
    for (const auto& layer : layers_) {
      if (layer[i].defined()) {
        out.emplace_back(target_name(static_cast<Target>(i)));
        break;
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, const LoraPair*>> Adapter::entries() const {
  std::vector<std::pair<std::string, const LoraPair*>> out;
  for (size_t l = 0; l < layers_.size(); ++l) {
    for (int i = 0; i < kNumTargets; ++i) {
      if (layers_[l][i].defined()) {
        out.emplace_back(module_path(static_cast<int64_t>(l), static_cast<Target>(i)), &layers_[l][i]);
      }
    }
  }
  return out;
}

std::vector<torch::Tensor> Adapter::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [path, pair] : entries()) {
    out.push_back(pair->a);
    out.push_back(pair->b);
  }
  return out;
}

}  // namespace kaizen::adapter
