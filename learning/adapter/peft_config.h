// What a Hugging Face PEFT LoRA adapter directory says, checked without libtorch:
// adapter_config.json (PeftConfig) and the tensor table of adapter_model.safetensors
// against a model (plan_peft_tensors). peft.h loads the tensors this plan accepts.
// Torch-free so that tests/fuzz can fuzz what a downloaded adapter can put in front of
// the loader. Format: peft.h, REFERENCE.md "HF PEFT LoRA adapter on disk".
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "learning/adapter/target.h"
#include "learning/model/config.h"
#include "learning/model/safetensors_header.h"

namespace kaizen::adapter {

// Every refusal is a PeftError whose message names the file and the problem (the tensor
// key, both shapes, the config key), so an operator can fix the adapter.
struct PeftError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

// The parts of adapter_config.json kaizen uses.
struct PeftConfig {
  int64_t r = 0;
  double lora_alpha = 0;
  bool use_rslora = false;
  double lora_dropout = 0;                  // recorded; never applied at inference
  std::vector<std::string> target_modules;  // a list (sorted) ...
  std::string target_regex;                 // ... or PEFT's regex form ("all-linear" too)
  std::string base_model_name_or_path;

  // Validates; `origin` names the file in messages. Throws PeftError.
  static PeftConfig from_json(const nlohmann::json& j, const std::string& origin);
  nlohmann::json to_json() const;  // every key PEFT writes, with PEFT's defaults
  // Whether the PEFT matcher selects the module at `path` ("model.layers.0.mlp.up_proj"):
  // list = exact path or suffix ".<name>", string = regex full match (PCRE2, as Python's
  // re.fullmatch for the patterns PEFT users write), under a backtracking limit: from_json
  // refuses a pattern that exceeds it on a long module path, matches() throws PeftError.
  bool matches(const std::string& path) const;
};

// Reads DIR/adapter_config.json (validated). Throws PeftError for a missing directory or
// file, invalid JSON, or a config kaizen cannot serve.
PeftConfig read_peft_config(const std::string& dir);

// (in, out) features of a target projection in a model of this config.
std::pair<int64_t, int64_t> target_dims(const model::ModelConfig& config, Target t);

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" -> layer 3, kQ, 'A'.
struct PeftTensorKey {
  int64_t layer = 0;
  Target target = Target::kQ;
  char which = 'A';  // 'A' (r, in) or 'B' (out, r)
};
// false (with `why`: what is wrong with the key) for anything else.
bool parse_peft_tensor_key(const std::string& key, PeftTensorKey* out, std::string* why);

// One module the adapter provides, with the names of its two tensors.
struct PeftModule {
  int64_t layer = 0;
  Target target = Target::kQ;
  std::string a_key, b_key;
};

// Checks the tensor table of `where` (an adapter_model.safetensors) against `config` and
// the model: every tensor a LoRA weight of a projection of a layer the model has, selected
// by target_modules, float, shaped (r, in) / (out, r) for that projection; every module
// with both A and B; at least one module. Returns the modules in (layer, target) order.
// Throws PeftError naming the tensor.
std::vector<PeftModule> plan_peft_tensors(const PeftConfig& config, const model::ModelConfig& model,
                                          const std::map<std::string, model::TensorInfo>& tensors,
                                          const std::string& where);

}  // namespace kaizen::adapter
