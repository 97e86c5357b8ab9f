// Hugging Face config.json for the decoder-only architectures kaizen runs.
// One decoder serves them all; the differences are the flags below (llama.cpp's lesson:
// architectures differ in small flags, not in copies of the forward pass).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace kaizen::model {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Arch { kQwen3, kQwen2, kLlama };
const char* arch_name(Arch arch);  // "qwen3" | "qwen2" | "llama"

// RoPE frequency scaling (HF `rope_scaling`). Only the kinds that keep RoPE a pure
// function of the position are supported; others are refused at load with a message.
struct RopeScaling {
  enum class Kind { kNone, kLinear, kLlama3 } kind = Kind::kNone;
  double factor = 1.0;                         // linear and llama3
  double low_freq_factor = 1.0;                // llama3
  double high_freq_factor = 4.0;               // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  Arch arch = Arch::kQwen3;
  std::string architecture;        // e.g. "Qwen3ForCausalLM", as in config.json
  int64_t vocab_size = 0;          // rows of embed_tokens / lm_head
  int64_t hidden_size = 0;         // model width C
  int64_t intermediate_size = 0;   // MLP width
  int64_t num_hidden_layers = 0;   // L
  int64_t num_attention_heads = 0; // query heads H
  int64_t num_key_value_heads = 0; // kv heads (GQA); H % Hkv == 0
  int64_t head_dim = 0;            // D; explicit for Qwen3, hidden/heads otherwise
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens' weight
  bool qk_norm = false;              // Qwen3: RMSNorm over D per head on q and k before RoPE
  bool attention_bias = false;       // q/k/v projections carry a bias (Qwen2: yes)
  bool o_proj_bias = false;          // Llama's attention_bias also covers o_proj
  bool mlp_bias = false;             // Llama `mlp_bias`
  std::string torch_dtype = "float32";  // as stored; the runtime dtype is a load option
  std::vector<int64_t> eos_token_ids;   // from config.json (generation_config.json may add more)
  int64_t bos_token_id = -1;

  // Parses and validates (positive sizes, divisibility, supported rope_scaling).
  // Throws ConfigError whose message names the key and the file (when given).
  static ModelConfig from_json(const nlohmann::json& j, const std::string& origin = "config.json");
  static ModelConfig from_file(const std::string& path);
  nlohmann::json to_json() const;  // HF-compatible config.json contents
};

// generation_config.json: the stop ids and sampling defaults the model's authors ship.
struct GenerationDefaults {
  std::vector<int64_t> eos_token_ids;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  bool do_sample = false;
  static GenerationDefaults from_file(const std::string& path);  // missing file: defaults
};

}  // namespace kaizen::model
