// The seven projections of a Llama-family decoder layer a LoRA adapter can target, in HF
// naming. Torch-free: the PEFT config parser (peft_config.h) and its fuzz target use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kaizen::adapter {

enum class Target : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kNumTargets = 7;
const char* target_name(Target t);                           // "q_proj", ...
std::optional<Target> target_from_name(const std::string&);  // inverse; nullopt if unknown
inline bool is_attention(Target t) {
  return t == Target::kQ || t == Target::kK || t == Target::kV || t == Target::kO;
}
// HF module path of a target in layer `layer`, e.g. "model.layers.3.self_attn.q_proj".
std::string module_path(int64_t layer, Target t);

}  // namespace kaizen::adapter
