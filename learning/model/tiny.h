// Small randomly initialised models in real HF format: the embedded demo model and the
// test fixture. The initialisation is chosen so that LoRA can teach the model facts
// (see README "The demo model"): untied head, unit-variance input embeddings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "learning/model/config.h"
#include "learning/model/decoder.h"

namespace kaizen::model {

struct TinyModelSpec {
  Arch arch = Arch::kQwen3;
  int64_t vocab_size = 151936;   // Qwen3's padded vocabulary, so the real tokenizer fits
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t head_dim = 16;          // explicit (Qwen3 style); qwen2/llama use hidden/heads
  bool tie_word_embeddings = false;
  double embed_std = 1.0;         // input embeddings
  double layer_std = 0.1;         // every projection weight (and biases)
  double head_std = 0.3;          // untied lm_head
  double rope_theta = 1e6;
  uint64_t seed = 0;
};

// Qwen3-0.6B's shape (REFERENCE.md: hidden 1024, intermediate 3072, 16 heads, 8 kv
// heads, head_dim 128, tied embeddings) with `layers` layers and std-0.02 weights: what
// the benchmarks time.
TinyModelSpec qwen3_0_6b_shape(int64_t layers = 28);

// The demo model's initialisation at hidden 256, 4 layers (intermediate 512, 4 heads of
// 64, 2 kv heads): the smallest random model that takes the real-checkpoint training
// recipe and gate defaults (hidden >= 256); the gate's calibration uses it.
TinyModelSpec wide_random_spec();

ModelConfig tiny_config(const TinyModelSpec& spec);
// A decoder with random weights drawn from spec.seed; norms are ones.
std::shared_ptr<Decoder> make_random_decoder(const TinyModelSpec& spec);
// Writes config.json, model.safetensors, generation_config.json, and copies
// tokenizer.json + tokenizer_config.json from tokenizer_dir.
void write_tiny_model(const TinyModelSpec& spec, const std::string& out_dir,
                      const std::string& tokenizer_dir);

}  // namespace kaizen::model
