// Hugging Face PEFT LoRA adapters on disk (docs/DESIGN.md decision 4, REFERENCE.md "HF PEFT
// LoRA adapter on disk"):
//   DIR/adapter_config.json        peft_type LORA, task_type CAUSAL_LM, r, lora_alpha,
//                                  target_modules, bias "none", use_rslora, ...
//   DIR/adapter_model.safetensors  base_model.model.<module path>.lora_A.weight (r, in)
//                                  base_model.model.<module path>.lora_B.weight (out, r)
// Follows peft/tuners/lora (LoraConfig, save_pretrained key layout with the ".default"
// adapter name stripped). The config and the tensor table are checked torch-free in
// peft_config.h; this file loads, saves and initialises the tensors. What vLLM refuses is refused
// here too, so an adapter that loads here also serves there: DoRA, bias other than "none",
// modules_to_save, fan_in_fan_out, per-module rank/alpha patterns, layers_to_transform.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "learning/adapter/adapter.h"
#include "learning/adapter/peft_config.h"
#include "learning/model/config.h"

namespace kaizen::adapter {

struct PeftLoadOptions {
  torch::Device device = torch::kCPU;       // where the adapter's tensors go
  torch::ScalarType dtype = torch::kFloat;  // compute dtype (the decoder's)
};

// Loads DIR as an Adapter for a model of `config`. Every tensor must be a lora_A/lora_B of
// a projection of a layer this model has (else "unknown module"), each module must have
// both, A must have r rows and B r columns, and the other dimension must match the
// projection's; modules the config's target_modules do not select are refused too.
// The tensors are copies in options.dtype on options.device (never aliases of the
// mapped file), not requiring grad. Throws PeftError.
std::shared_ptr<Adapter> load_peft_adapter(const std::string& dir, const model::ModelConfig& config,
                                           const PeftLoadOptions& options = {});

// Writes `adapter` to DIR (created if needed) as a PEFT adapter: float32 tensors, every
// present module; adapter_config.json lists target_modules() and the rank/alpha/rsLoRA of
// the adapter. Each file is written atomically (atomic_write_file: temporary, fsync,
// rename, fsync of DIR). Throws PeftError on I/O errors.
void save_peft_adapter(const Adapter& adapter, const std::string& dir);

// A fresh trainable adapter initialised as PEFT does (LoraLayer.reset_lora_parameters with
// init_lora_weights=True): A ~ Kaiming-uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)),
// B = 0, for every layer and each of `targets`, drawn from `seed` (CPU generator, so the
// same seed gives the same adapter on every device). Tensors require grad.
std::shared_ptr<Adapter> make_peft_init_adapter(const model::ModelConfig& config, int64_t rank,
                                                double alpha, bool use_rslora,
                                                const std::vector<Target>& targets, uint64_t seed,
                                                const PeftLoadOptions& options = {});

// A deep copy whose tensors are trainable leaves (requires grad), e.g. to warm-start
// training from a published adapter without touching the served one.
std::shared_ptr<Adapter> clone_trainable(const Adapter& adapter);

// Parses "q_proj,v_proj" / "all" / "attn" / "mlp" into targets; throws PeftError naming
// an unknown name.
std::vector<Target> parse_targets(const std::string& spec);

}  // namespace kaizen::adapter
