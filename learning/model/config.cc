#include "learning/model/config.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace kaizen::model {

using nlohmann::json;

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kQwen3: return "qwen3";
    case Arch::kQwen2: return "qwen2";
    case Arch::kLlama: return "llama";
  }
  return "?";
}

namespace {

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
}

class Reader {
 public:
  Reader(const json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw ConfigError(origin_ + ": " + key + ": " + what);
  }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  int64_t integer(const std::string& key) const {
    if (!has(key)) fail(key, "missing");
    const json& v = j_.at(key);
    if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
    return v.get<int64_t>();
  }
  int64_t integer(const std::string& key, int64_t def) const { return has(key) ? integer(key) : def; }
  int64_t positive(const std::string& key) const {
    int64_t v = integer(key);
    if (v <= 0) fail(key, "must be positive, got " + std::to_string(v));
    return v;
  }
  double number(const std::string& key, double def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_number()) fail(key, "expected a number, got " + v.dump());
    return v.get<double>();
  }
  bool boolean(const std::string& key, bool def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "expected true/false, got " + v.dump());
    return v.get<bool>();
  }
  std::string string(const std::string& key, const std::string& def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  // eos_token_id may be an int or a list of ints.
  std::vector<int64_t> ids(const std::string& key) const {
    std::vector<int64_t> out;
    if (!has(key)) return out;
    const json& v = j_.at(key);
    if (v.is_number_integer()) return {v.get<int64_t>()};
    if (!v.is_array()) fail(key, "expected an integer or a list of integers");
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail(key, "expected integers, got " + e.dump());
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  const json& raw(const std::string& key) const { return j_.at(key); }

 private:
  const json& j_;
  std::string origin_;
};

RopeScaling parse_rope_scaling(const Reader& r, const std::string& origin) {
  RopeScaling s;
  if (!r.has("rope_scaling")) return s;
  const json& j = r.raw("rope_scaling");
  if (!j.is_object()) throw ConfigError(origin + ": rope_scaling: expected an object");
  Reader rs(j, origin + ": rope_scaling");
  std::string type = rs.string("rope_type", rs.string("type", "default"));
  if (type == "default") return s;
  if (type == "linear") {
    s.kind = RopeScaling::Kind::kLinear;
    s.factor = rs.number("factor", 1.0);
  } else if (type == "llama3") {
    s.kind = RopeScaling::Kind::kLlama3;
    s.factor = rs.number("factor", 8.0);
    s.low_freq_factor = rs.number("low_freq_factor", 1.0);
    s.high_freq_factor = rs.number("high_freq_factor", 4.0);
    s.original_max_position_embeddings = rs.integer("original_max_position_embeddings", 8192);
    if (s.high_freq_factor <= s.low_freq_factor) {
      throw ConfigError(origin + ": rope_scaling: high_freq_factor must exceed low_freq_factor");
    }
  } else {
    throw ConfigError(origin + ": rope_scaling type '" + type +
                      "' is not supported (supported: default, linear, llama3)");
  }
  if (s.factor <= 0) throw ConfigError(origin + ": rope_scaling.factor must be positive");
  return s;
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) throw ConfigError(origin + ": expected a JSON object");
  Reader r(j, origin);
  ModelConfig c;
  std::string arch;
  if (r.has("architectures")) {
    const json& a = r.raw("architectures");
    if (!a.is_array() || a.empty() || !a[0].is_string()) {
      r.fail("architectures", "expected a non-empty list of strings");
    }
    arch = a[0].get<std::string>();
  }
  const std::string model_type = r.string("model_type", "");
  if (arch == "Qwen3ForCausalLM" || (arch.empty() && model_type == "qwen3")) {
    c.arch = Arch::kQwen3;
  } else if (arch == "Qwen2ForCausalLM" || (arch.empty() && model_type == "qwen2")) {
    c.arch = Arch::kQwen2;
  } else if (arch == "LlamaForCausalLM" || (arch.empty() && model_type == "llama")) {
    c.arch = Arch::kLlama;
  } else {
    throw ConfigError(origin + ": architecture '" + (arch.empty() ? model_type : arch) +
                      "' is not supported (supported: Qwen3ForCausalLM, Qwen2ForCausalLM, "
                      "LlamaForCausalLM)");
  }
  c.architecture = arch.empty() ? std::string(c.arch == Arch::kQwen3   ? "Qwen3ForCausalLM"
                                              : c.arch == Arch::kQwen2 ? "Qwen2ForCausalLM"
                                                                       : "LlamaForCausalLM")
                                : arch;
  c.vocab_size = r.positive("vocab_size");
  c.hidden_size = r.positive("hidden_size");
  c.intermediate_size = r.positive("intermediate_size");
  c.num_hidden_layers = r.positive("num_hidden_layers");
  c.num_attention_heads = r.positive("num_attention_heads");
  c.num_key_value_heads = r.has("num_key_value_heads") ? r.positive("num_key_value_heads")
                                                       : c.num_attention_heads;
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    r.fail("num_key_value_heads", "must divide num_attention_heads (" +
                                      std::to_string(c.num_attention_heads) + ")");
  }
  if (r.has("head_dim")) {
    c.head_dim = r.positive("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      r.fail("hidden_size", "not divisible by num_attention_heads and no head_dim given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) r.fail("head_dim", "must be even for RoPE");
  c.max_position_embeddings = r.integer("max_position_embeddings", 32768);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  if (c.rms_norm_eps <= 0) r.fail("rms_norm_eps", "must be positive");
  c.rope_theta = r.number("rope_theta", 10000.0);
  if (c.rope_theta <= 0) r.fail("rope_theta", "must be positive");
  c.rope_scaling = parse_rope_scaling(r, origin);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  const std::string act = r.string("hidden_act", "silu");
  if (act != "silu") r.fail("hidden_act", "'" + act + "' is not supported (only silu)");
  switch (c.arch) {
    case Arch::kQwen3:
      c.qk_norm = true;
      c.attention_bias = r.boolean("attention_bias", false);
      c.o_proj_bias = c.attention_bias;
      break;
    case Arch::kQwen2:
      c.attention_bias = true;  // Qwen2 always has q/k/v bias, never o_proj bias
      break;
    case Arch::kLlama:
      c.attention_bias = r.boolean("attention_bias", false);
      c.o_proj_bias = c.attention_bias;
      c.mlp_bias = r.boolean("mlp_bias", false);
      break;
  }
  c.torch_dtype = r.string("torch_dtype", r.string("dtype", "float32"));
  c.eos_token_ids = r.ids("eos_token_id");
  c.bos_token_id = r.has("bos_token_id") ? r.integer("bos_token_id") : -1;
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  return from_json(read_json_file(path), path);
}

json ModelConfig::to_json() const {
  json j;
  j["architectures"] = {architecture};
  j["model_type"] = arch_name(arch);
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["torch_dtype"] = torch_dtype;
  if (arch != Arch::kQwen2) j["attention_bias"] = attention_bias;
  if (arch == Arch::kLlama) j["mlp_bias"] = mlp_bias;
  if (!eos_token_ids.empty()) {
    j["eos_token_id"] = eos_token_ids.size() == 1 ? json(eos_token_ids[0]) : json(eos_token_ids);
  }
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  switch (rope_scaling.kind) {
    case RopeScaling::Kind::kNone: j["rope_scaling"] = nullptr; break;
    case RopeScaling::Kind::kLinear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope_scaling.factor}};
      break;
    case RopeScaling::Kind::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", rope_scaling.factor},
                           {"low_freq_factor", rope_scaling.low_freq_factor},
                           {"high_freq_factor", rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings",
                            rope_scaling.original_max_position_embeddings}};
      break;
  }
  return j;
}

GenerationDefaults GenerationDefaults::from_file(const std::string& path) {
  GenerationDefaults g;
  if (!std::filesystem::exists(path)) return g;
  json j = read_json_file(path);
  if (!j.is_object()) throw ConfigError(path + ": expected a JSON object");
  Reader r(j, path);
  g.eos_token_ids = r.ids("eos_token_id");
  g.temperature = r.number("temperature", 1.0);
  g.top_p = r.number("top_p", 1.0);
  g.top_k = r.integer("top_k", 0);
  g.do_sample = r.boolean("do_sample", false);
  return g;
}

}  // namespace kaizen::model
