// Folding a LoRA adapter into the base weights: W' = W + scale * B A for every module the
// adapter carries. The merged model computes base+adapter without the adapter's extra
// matmuls (what `kaizenctl adapter merge` writes as a plain HF model directory, and what
// merged-weight serving would use when a single adapter is hot).
#pragma once

#include <string>

#include "learning/adapter/adapter.h"
#include "learning/model/decoder.h"

namespace kaizen::adapter {

// Replaces each adapted projection weight of `decoder` with W + scale * B A, computed in
// float32 and stored in the decoder's dtype. The old weight tensors are not written to
// (they may alias a read-only mapped checkpoint): each gets a fresh tensor. Throws
// std::invalid_argument if the adapter's layer count or shapes do not fit the decoder.
// Not thread-safe with concurrent forward() on the same decoder.
void merge_into(model::Decoder& decoder, const Adapter& adapter);

// Loads the model in model_dir and the PEFT adapter in adapter_dir, merges, and writes a
// complete HF model directory to out_dir: config.json, model.safetensors, and the
// tokenizer/generation files copied from model_dir. Throws ModelLoadError/PeftError.
void merge_model_dir(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir);

}  // namespace kaizen::adapter
