// libFuzzer target: config.json text -> ModelConfig::from_json. Bad input must be a
// ConfigError (or a JSON parse error before it); an accepted config must hold what the
// model code divides and allocates by, and must survive to_json -> from_json unchanged.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "learning/model/config.h"
#include "tests/fuzz/fuzz_check.h"

using kaizen::model::ConfigError;
using kaizen::model::ModelConfig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr,
                                                 /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  ModelConfig c;
  try {
    c = ModelConfig::from_json(j, "fuzz/config.json");
  } catch (const ConfigError&) {
    return 0;
  }
  FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0);
  FUZZ_CHECK(c.num_hidden_layers > 0 && c.head_dim > 0);
  FUZZ_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0);
  FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0);
  const nlohmann::json out = c.to_json();
  ModelConfig again;
  try {
    again = ModelConfig::from_json(out, "fuzz/to_json");
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "to_json of an accepted config is refused: %s\n", e.what());
    std::abort();
  }
  FUZZ_CHECK(again.to_json() == out);
  return 0;
}
