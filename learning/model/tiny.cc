#include "learning/model/tiny.h"

#include <filesystem>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learning/model/loader.h"

namespace kaizen::model {

namespace fs = std::filesystem;

TinyModelSpec qwen3_0_6b_shape(int64_t layers) {
  TinyModelSpec s;
  s.hidden_size = 1024;
  s.intermediate_size = 3072;
  s.num_layers = layers;
  s.num_heads = 16;
  s.num_kv_heads = 8;
  s.head_dim = 128;
  s.tie_word_embeddings = true;
  s.embed_std = s.layer_std = 0.02;
  return s;
}

TinyModelSpec wide_random_spec() {
  TinyModelSpec s;
  s.hidden_size = 256;
  s.intermediate_size = 512;
  s.num_layers = 4;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 64;
  return s;
}

ModelConfig tiny_config(const TinyModelSpec& s) {
  ModelConfig c;
  c.arch = s.arch;
  c.architecture = s.arch == Arch::kQwen3   ? "Qwen3ForCausalLM"
                   : s.arch == Arch::kQwen2 ? "Qwen2ForCausalLM"
                                            : "LlamaForCausalLM";
  c.vocab_size = s.vocab_size;
  c.hidden_size = s.hidden_size;
  c.intermediate_size = s.intermediate_size;
  c.num_hidden_layers = s.num_layers;
  c.num_attention_heads = s.num_heads;
  c.num_key_value_heads = s.num_kv_heads;
  c.head_dim = s.arch == Arch::kQwen3 ? s.head_dim : s.hidden_size / s.num_heads;
  c.max_position_embeddings = 40960;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = s.rope_theta;
  c.tie_word_embeddings = s.tie_word_embeddings;
  c.qk_norm = s.arch == Arch::kQwen3;
  c.attention_bias = s.arch == Arch::kQwen2;
  c.torch_dtype = "float32";
  c.eos_token_ids = {151645};
  c.bos_token_id = 151643;
  // Round-trip through JSON so the spec is validated exactly like a real config.json.
  return ModelConfig::from_json(c.to_json(), "tiny model spec");
}

std::shared_ptr<Decoder> make_random_decoder(const TinyModelSpec& spec) {
  auto decoder = std::make_shared<Decoder>(tiny_config(spec), DecoderOptions{});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  for (const auto& [name, shape] : decoder->parameter_shapes()) {
    const bool is_norm = name.find("norm") != std::string::npos;
    torch::Tensor t;
    if (is_norm) {
      t = torch::ones(shape);
    } else {
      const double std = name == "model.embed_tokens.weight" ? spec.embed_std
                         : name == "lm_head.weight"          ? spec.head_std
                                                             : spec.layer_std;
      t = at::normal(0.0, std, shape, gen);
    }
    decoder->set_weight(name, t);
  }
  return decoder;
}

void write_tiny_model(const TinyModelSpec& spec, const std::string& out_dir,
                      const std::string& tokenizer_dir) {
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    if (!fs::exists(fs::path(tokenizer_dir) / f)) {
      throw ModelLoadError("tokenizer files: " + (fs::path(tokenizer_dir) / f).string() +
                           " not found (run scripts/install-deps.sh or pass --tokenizer-dir)");
    }
  }
  auto decoder = make_random_decoder(spec);
  fs::create_directories(out_dir);
  save_decoder(*decoder, out_dir);
  nlohmann::json gen = {{"bos_token_id", 151643},
                        {"eos_token_id", {151645, 151643}},
                        {"pad_token_id", 151643},
                        {"do_sample", true},
                        {"temperature", 0.7},
                        {"top_p", 0.8},
                        {"top_k", 20}};
  std::ofstream(fs::path(out_dir) / "generation_config.json") << gen.dump(2) << "\n";
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(fs::path(tokenizer_dir) / f, fs::path(out_dir) / f,
                  fs::copy_options::overwrite_existing);
  }
}

}  // namespace kaizen::model
