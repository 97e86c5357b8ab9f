// libFuzzer target: a PEFT LoRA adapter as a downloaded directory puts it in front of the
// loader — adapter_config.json text, a NUL byte, then adapter_model.safetensors bytes —
// checked against a small fixed Qwen3 model: PeftConfig::from_json, then the tensor
// table (parse_safetensors_header) through plan_peft_tensors. Bad input must be a
// PeftError or SafetensorsError. What is accepted must be what load_peft_adapter then
// relies on: the config survives to_json -> from_json unchanged; every planned module is
// a projection of a layer the model has, selected by target_modules, with both tensors
// present and shaped (r, in) / (out, r); every tensor belongs to exactly one module.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "learning/adapter/peft_config.h"
#include "tests/fuzz/fuzz_check.h"

using namespace kaizen;
using nlohmann::json;

namespace {

const model::ModelConfig& tiny_model() {
  static const model::ModelConfig config = model::ModelConfig::from_json(json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 8,
    "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
    "num_hidden_layers": 2, "vocab_size": 32, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
    "max_position_embeddings": 64, "tie_word_embeddings": true, "hidden_act": "silu"})"));
  return config;
}

void check_round_trip(const adapter::PeftConfig& c) {
  const adapter::PeftConfig back = adapter::PeftConfig::from_json(c.to_json(), "round trip");
  FUZZ_CHECK(back.r == c.r && back.lora_alpha == c.lora_alpha && back.use_rslora == c.use_rslora);
  FUZZ_CHECK(back.target_modules == c.target_modules && back.target_regex == c.target_regex);
  FUZZ_CHECK(back.base_model_name_or_path == c.base_model_name_or_path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string_view config_text = all.substr(0, nul);
  adapter::PeftConfig config;
  try {
    const json j = json::parse(config_text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    config = adapter::PeftConfig::from_json(j, "adapter_config.json");
  } catch (const adapter::PeftError&) {
    return 0;
  }
  check_round_trip(config);
  if (nul == std::string_view::npos) return 0;
  const auto* file = data + nul + 1;
  const size_t file_size = size - nul - 1;
  try {
    const model::SafetensorsHeader h =
        model::parse_safetensors_header("adapter_model.safetensors", file, file_size);
    const auto plan =
        adapter::plan_peft_tensors(config, tiny_model(), h.tensors, "adapter_model.safetensors");
    FUZZ_CHECK(!plan.empty());
    FUZZ_CHECK(plan.size() * 2 == h.tensors.size());  // every tensor is one module's A or B
    std::set<std::pair<int64_t, int>> seen;
    for (const auto& m : plan) {
      FUZZ_CHECK(m.layer >= 0 && m.layer < tiny_model().num_hidden_layers);
      FUZZ_CHECK(seen.insert({m.layer, static_cast<int>(m.target)}).second);
      FUZZ_CHECK(config.matches(adapter::module_path(m.layer, m.target)));
      const auto [in, out] = adapter::target_dims(tiny_model(), m.target);
      FUZZ_CHECK(h.tensors.at(m.a_key).shape == (std::vector<int64_t>{config.r, in}));
      FUZZ_CHECK(h.tensors.at(m.b_key).shape == (std::vector<int64_t>{out, config.r}));
      adapter::PeftTensorKey a, b;
      std::string why;
      FUZZ_CHECK(adapter::parse_peft_tensor_key(m.a_key, &a, &why) && a.which == 'A');
      FUZZ_CHECK(adapter::parse_peft_tensor_key(m.b_key, &b, &why) && b.which == 'B');
    }
  } catch (const adapter::PeftError&) {
  } catch (const model::SafetensorsError&) {
  }
  return 0;
}
