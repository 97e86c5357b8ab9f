#include "learning/adapter/target.h"

namespace kaizen::adapter {

namespace {
constexpr const char* kTargetNames[kNumTargets] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"};
}

const char* target_name(Target t) {
  return kTargetNames[static_cast<int>(t)];
}

std::optional<Target> target_from_name(const std::string& name) {
  for (int i = 0; i < kNumTargets; ++i) {
    if (name == kTargetNames[i]) return static_cast<Target>(i);
  }
  return std::nullopt;
}

std::string module_path(int64_t layer, Target t) {
  return "model.layers." + std::to_string(layer) + (is_attention(t) ? ".self_attn." : ".mlp.") +
         target_name(t);
}

}  // namespace kaizen::adapter
