#include "learning/adapter/peft_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <nlohmann/json.hpp>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace kaizen::adapter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

// Parsed by hand: the key comes from the file, and std::regex recurses per character (a
// 100,000-digit layer number overflowed the stack).
bool parse_peft_tensor_key(const std::string& key, PeftTensorKey* out, std::string* why) {
  if (key.find(".default.") != std::string::npos) {
    *why = "carries an adapter name ('.default.'); PEFT's save_pretrained strips it";
    return false;
  }
  const auto malformed = [&] {
    *why =
        "is not a LoRA weight of a decoder-layer projection (expected "
        "base_model.model.model.layers.N.{self_attn|mlp}.<proj>.lora_{A|B}.weight)";
    return false;
  };
  std::string_view rest(key);
  const auto take = [&](std::string_view lit) {
    if (rest.substr(0, lit.size()) != lit) return false;
    rest.remove_prefix(lit.size());
    return true;
  };
  if (!take("base_model.model.model.layers.")) return malformed();
  size_t digits = 0;
  while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
  if (digits == 0) return malformed();
  if (digits > 9) {
    *why = "has a layer number of " + std::to_string(digits) + " digits";
    return false;
  }
  const int64_t n = std::stoll(std::string(rest.substr(0, digits)));
  rest.remove_prefix(digits);
  if (!take(".")) return malformed();
  const bool attn = take("self_attn.");
  if (!attn && !take("mlp.")) return malformed();
  size_t name_len = 0;
  while (name_len < rest.size() &&
         ((rest[name_len] >= 'a' && rest[name_len] <= 'z') || rest[name_len] == '_')) {
    ++name_len;
  }
  const std::string module(rest.substr(0, name_len));
  rest.remove_prefix(name_len);
  if (module.empty() || !take(".lora_") || rest.size() != 8 || (rest[0] != 'A' && rest[0] != 'B') ||
      rest.substr(1) != ".weight") {
    return malformed();
  }
  auto t = target_from_name(module);
  if (!t || attn != is_attention(*t)) {
    *why = "names an unknown module '" + std::string(attn ? "self_attn." : "mlp.") + module + "'";
    return false;
  }
  out->layer = n;
  out->target = *t;
  out->which = rest[0];
  return true;
}

namespace {

// target_modules as a regex comes from the adapter's own file. std::regex backtracks
// without bound: "(.|.)*[A-Z]" took 13 s on one 28-character module path (doubling with
// each character), so a hostile adapter_config.json could hang the loader. PCRE2 (the
// engine Python's re resembles) with a backtracking limit turns that into an error.
constexpr uint32_t kRegexMatchLimit = 100'000;

// Full match of `path` against `pattern` (PEFT: re.fullmatch). Throws PeftError (with
// `origin`) when the pattern does not compile or exceeds the match limit.
bool regex_full_match(const std::string& pattern, const std::string& path,
                      const std::string& origin) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw PeftError(origin + ": target_modules regex '" + pattern + "' is invalid: " +
                    reinterpret_cast<const char*>(msg) + " at offset " + std::to_string(offset));
  }
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(context, kRegexMatchLimit);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(path.data()), path.size(), 0, 0,
                             data, context);
  pcre2_match_data_free(data);
  pcre2_match_context_free(context);
  pcre2_code_free(code);
  if (rc == PCRE2_ERROR_MATCHLIMIT) {
    throw PeftError(origin + ": target_modules regex '" + pattern + "' backtracks too much (over " +
                    std::to_string(kRegexMatchLimit) + " steps) on '" + path +
                    "'; simplify it or list the modules");
  }
  return rc >= 0;
}

// Module paths of the longest kind a model has, to check a regex's cost at load.
constexpr const char* kProbePaths[] = {"model.layers.999.self_attn.q_proj",
                                       "model.layers.999.mlp.down_proj",
                                       "model.layers.999.self_attn.o_proj"};

}  // namespace

std::pair<int64_t, int64_t> target_dims(const model::ModelConfig& c, Target t) {
  const int64_t C = c.hidden_size, I = c.intermediate_size;
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  switch (t) {
    case Target::kQ:
      return {C, q};
    case Target::kK:
      return {C, kv};
    case Target::kV:
      return {C, kv};
    case Target::kO:
      return {q, C};
    case Target::kGate:
      return {C, I};
    case Target::kUp:
      return {C, I};
    case Target::kDown:
      return {I, C};
  }
  return {0, 0};
}

PeftConfig PeftConfig::from_json(const json& j, const std::string& origin) {
  auto bad = [&](const std::string& msg) { return PeftError(origin + ": " + msg); };
  if (!j.is_object()) throw bad("not a JSON object");
  auto str_or = [&](const char* key, const std::string& def) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_string())
      throw bad(std::string(key) + " must be a string, got " + j[key].dump());
    return j[key].get<std::string>();
  };
  auto truthy = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null()) return false;
    if (j[key].is_boolean()) return j[key].get<bool>();
    throw bad(std::string(key) + " must be true or false, got " + j[key].dump());
  };
  const std::string peft_type = str_or("peft_type", "");
  if (peft_type != "LORA") throw bad("peft_type is '" + peft_type + "', expected 'LORA'");
  const std::string task = str_or("task_type", "CAUSAL_LM");
  if (task != "CAUSAL_LM") throw bad("task_type is '" + task + "', expected 'CAUSAL_LM'");
  const std::string bias = str_or("bias", "none");
  if (bias != "none") throw bad("bias '" + bias + "' is not supported (only 'none')");
  if (truthy("use_dora")) throw bad("use_dora=true (DoRA) is not supported");
  if (truthy("fan_in_fan_out")) throw bad("fan_in_fan_out=true is not supported");
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() &&
      !(j["modules_to_save"].is_array() && j["modules_to_save"].empty())) {
    throw bad("modules_to_save " + j["modules_to_save"].dump() +
              " is not supported (only LoRA weights, no fully trained modules)");
  }
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    throw bad("layers_to_transform is not supported");
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (j.contains(key) && !j[key].is_null() && !(j[key].is_object() && j[key].empty())) {
      throw bad(std::string(key) + " " + j[key].dump() +
                " is not supported (kaizen needs one uniform r and lora_alpha)");
    }
  }
  PeftConfig c;
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0) {
    throw bad("r must be a positive integer, got " + (j.contains("r") ? j["r"].dump() : "nothing"));
  }
  c.r = j["r"].get<int64_t>();
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number()) {
    throw bad("lora_alpha must be a number, got " +
              (j.contains("lora_alpha") ? j["lora_alpha"].dump() : "nothing"));
  }
  c.lora_alpha = j["lora_alpha"].get<double>();
  c.use_rslora = truthy("use_rslora");
  if (j.contains("lora_dropout") && j["lora_dropout"].is_number())
    c.lora_dropout = j["lora_dropout"].get<double>();
  c.base_model_name_or_path = str_or("base_model_name_or_path", "");
  const json& tm = j.contains("target_modules") ? j["target_modules"] : json();
  if (tm.is_string() && !tm.get<std::string>().empty()) {
    c.target_regex = tm.get<std::string>();
    if (c.target_regex != "all-linear") {
      for (const char* probe : kProbePaths) regex_full_match(c.target_regex, probe, origin);
    }
  } else if (tm.is_array() && !tm.empty()) {
    for (const auto& t : tm) {
      if (!t.is_string()) throw bad("target_modules must hold strings, got " + t.dump());
      c.target_modules.push_back(t.get<std::string>());
    }
    std::sort(c.target_modules.begin(), c.target_modules.end());
  } else {
    throw bad("target_modules must be a non-empty list or regex, got " + tm.dump());
  }
  return c;
}

json PeftConfig::to_json() const {
  json tm = target_regex.empty() ? json(target_modules) : json(target_regex);
  return json{{"peft_type", "LORA"},
              {"task_type", "CAUSAL_LM"},
              {"base_model_name_or_path", base_model_name_or_path},
              {"revision", nullptr},
              {"r", r},
              {"lora_alpha", lora_alpha},
              {"lora_dropout", lora_dropout},
              {"target_modules", tm},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"use_rslora", use_rslora},
              {"use_dora", false},
              {"modules_to_save", nullptr},
              {"init_lora_weights", true},
              {"layers_to_transform", nullptr},
              {"layers_pattern", nullptr},
              {"rank_pattern", json::object()},
              {"alpha_pattern", json::object()},
              {"inference_mode", true}};
}

bool PeftConfig::matches(const std::string& path) const {
  if (!target_regex.empty()) {
    if (target_regex == "all-linear") return path != "lm_head";
    return regex_full_match(target_regex, path, "adapter_config.json");
  }
  for (const auto& t : target_modules) {
    if (path == t) return true;
    if (path.size() > t.size() && path.compare(path.size() - t.size(), t.size(), t) == 0 &&
        path[path.size() - t.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

PeftConfig read_peft_config(const std::string& dir) {
  if (!fs::is_directory(dir)) throw PeftError(dir + ": adapter directory not found");
  const fs::path path = fs::path(dir) / kAdapterConfigFile;
  std::ifstream in(path);
  if (!in) throw PeftError(dir + ": no " + kAdapterConfigFile);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw PeftError(path.string() + ": invalid JSON: " + e.what());
  }
  return PeftConfig::from_json(j, path.string());
}

std::vector<PeftModule> plan_peft_tensors(const PeftConfig& cfg, const model::ModelConfig& model,
                                          const std::map<std::string, model::TensorInfo>& tensors,
                                          const std::string& where) {
  std::map<std::pair<int64_t, int>, PeftModule> modules;
  for (const auto& [key, info] : tensors) {
    PeftTensorKey k;
    std::string why;
    if (!parse_peft_tensor_key(key, &k, &why))
      throw PeftError(where + ": tensor " + key + " " + why);
    if (k.layer >= model.num_hidden_layers) {
      throw PeftError(where + ": tensor " + key + " is for layer " + std::to_string(k.layer) +
                      ", but the model has " + std::to_string(model.num_hidden_layers) + " layers");
    }
    const std::string mpath = module_path(k.layer, k.target);
    if (!cfg.matches(mpath)) {
      throw PeftError(where + ": tensor " + key + " is for module " + mpath +
                      ", which adapter_config.json's target_modules do not select");
    }
    const auto [in, out] = target_dims(model, k.target);
    const std::vector<int64_t> want =
        k.which == 'A' ? std::vector<int64_t>{cfg.r, in} : std::vector<int64_t>{out, cfg.r};
    if (info.shape != want) {
      std::string hint;
      if (info.shape.size() == 2) {
        const int64_t file_r = k.which == 'A' ? info.shape[0] : info.shape[1];
        if (file_r != cfg.r)
          hint = " (rank " + std::to_string(file_r) + " != r " + std::to_string(cfg.r) + ")";
      }
      throw PeftError(where + ": tensor " + key + " has shape " + shape_str(info.shape) +
                      ", the model and r imply " + shape_str(want) + hint);
    }
    if (info.dtype != "F16" && info.dtype != "BF16" && info.dtype != "F32" && info.dtype != "F64") {
      throw PeftError(where + ": tensor " + key + " has non-float dtype " + info.dtype);
    }
    PeftModule& m = modules[{k.layer, static_cast<int>(k.target)}];
    m.layer = k.layer;
    m.target = k.target;
    (k.which == 'A' ? m.a_key : m.b_key) = key;
  }
  if (modules.empty()) throw PeftError(where + ": holds no LoRA tensors");
  std::vector<PeftModule> plan;
  for (auto& [lt, m] : modules) {
    if (m.a_key.empty() || m.b_key.empty()) {
      throw PeftError(where + ": module " + module_path(m.layer, m.target) + " lacks " +
                      (m.a_key.empty() ? "lora_A.weight" : "lora_B.weight"));
    }
    plan.push_back(std::move(m));
  }
  return plan;
}

}  // namespace kaizen::adapter
