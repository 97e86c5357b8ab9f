#include "learning/adapter/merge.h"

#include <filesystem>
#include <stdexcept>

#include <torch/torch.h>

#include "learning/adapter/peft.h"
#include "learning/model/loader.h"

namespace kaizen::adapter {

namespace fs = std::filesystem;

void merge_into(model::Decoder& decoder, const Adapter& adapter) {
  if (adapter.num_layers() != decoder.config().num_hidden_layers) {
    throw std::invalid_argument("merge: adapter has " + std::to_string(adapter.num_layers()) +
                                " layers, the model " + std::to_string(decoder.config().num_hidden_layers));
  }
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> weights;
  for (auto& [name, w] : decoder.named_weights()) weights[name] = w;
  for (const auto& [path, pair] : adapter.entries()) {
    const std::string name = path + ".weight";
    auto it = weights.find(name);
    if (it == weights.end()) throw std::invalid_argument("merge: model has no weight " + name);
    const torch::Tensor& w = it->second;
    torch::Tensor delta = torch::matmul(pair->b.to(torch::kFloat), pair->a.to(torch::kFloat).to(pair->b.device()));  // (out, in)
    if (delta.sizes() != w.sizes()) {
      throw std::invalid_argument("merge: " + name + " has shape " + c10::str(w.sizes()) +
                                  ", the adapter's B A has " + c10::str(delta.sizes()));
    }
    torch::Tensor merged = w.to(torch::kFloat) + adapter.scale() * delta.to(w.device());
    decoder.set_weight(name, merged);  // converts to the decoder's dtype; fresh storage
  }
}

void merge_model_dir(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir) {
  model::LoadOptions lo;
  lo.device = "cpu";
  lo.dtype = "float32";
  auto decoder = model::load_decoder(model_dir, lo);
  auto adapter = load_peft_adapter(adapter_dir, decoder->config());
  merge_into(*decoder, *adapter);
  fs::create_directories(out_dir);
  model::save_decoder(*decoder, out_dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                        "special_tokens_map.json", "vocab.json", "merges.txt"}) {
    const fs::path src = fs::path(model_dir) / f;
    if (fs::exists(src)) fs::copy_file(src, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
  }
}

}  // namespace kaizen::adapter
