#include "learning/adapter/peft.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "learning/model/durable_file.h"
#include "learning/model/safetensors.h"

namespace kaizen::adapter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kKeyPrefix = "base_model.model.";

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" -> (3, kQ, 'A').
// Returns false (with `why`) for anything else. Parsed by hand: the key comes from the
// file, and std::regex recurses per character (a 100,000-digit layer number overflowed
// the stack).
bool parse_key(const std::string& key, int64_t* layer, Target* target, char* which, std::string* why) {
  if (key.find(".default.") != std::string::npos) {
    *why = "carries an adapter name ('.default.'); PEFT's save_pretrained strips it";
    return false;
  }
  const auto malformed = [&] {
    *why = "is not a LoRA weight of a decoder-layer projection (expected "
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
  while (name_len < rest.size() && ((rest[name_len] >= 'a' && rest[name_len] <= 'z') || rest[name_len] == '_')) {
    ++name_len;
  }
  const std::string module(rest.substr(0, name_len));
  rest.remove_prefix(name_len);
  if (module.empty() || !take(".lora_") || rest.size() != 8 || (rest[0] != 'A' && rest[0] != 'B') ||
      rest.substr(1) != ".weight") {
    return malformed();
  }
  auto t = target_from_name(module);
  if (!t || attn != (*t == Target::kQ || *t == Target::kK || *t == Target::kV || *t == Target::kO)) {
    *why = "names an unknown module '" + std::string(attn ? "self_attn." : "mlp.") + module + "'";
    return false;
  }
  *layer = n;
  *target = *t;
  *which = rest[0];
  return true;
}

// target_modules as a regex comes from the adapter's own file. std::regex backtracks
// without bound: "(.|.)*[A-Z]" took 13 s on one 28-character module path (doubling with
// each character), so a hostile adapter_config.json could hang the loader. PCRE2 (the
// engine Python's re resembles) with a backtracking limit turns that into an error.
constexpr uint32_t kRegexMatchLimit = 100'000;

// Full match of `path` against `pattern` (PEFT: re.fullmatch). Throws PeftError (with
// `origin`) when the pattern does not compile or exceeds the match limit.
bool regex_full_match(const std::string& pattern, const std::string& path, const std::string& origin) {
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
    throw PeftError(origin + ": target_modules regex '" + pattern +
                    "' backtracks too much (over " + std::to_string(kRegexMatchLimit) +
                    " steps) on '" + path + "'; simplify it or list the modules");
  }
  return rc >= 0;
}

// Module paths of the longest kind a model has, to check a regex's cost at load.
constexpr const char* kProbePaths[] = {"model.layers.999.self_attn.q_proj", "model.layers.999.mlp.down_proj",
                                       "model.layers.999.self_attn.o_proj"};

}  // namespace

std::pair<int64_t, int64_t> target_dims(const model::ModelConfig& c, Target t) {
  const int64_t C = c.hidden_size, I = c.intermediate_size;
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  switch (t) {
    case Target::kQ: return {C, q};
    case Target::kK: return {C, kv};
    case Target::kV: return {C, kv};
    case Target::kO: return {q, C};
    case Target::kGate: return {C, I};
    case Target::kUp: return {C, I};
    case Target::kDown: return {I, C};
  }
  return {0, 0};
}

PeftConfig PeftConfig::from_json(const json& j, const std::string& origin) {
  auto bad = [&](const std::string& msg) { return PeftError(origin + ": " + msg); };
  if (!j.is_object()) throw bad("not a JSON object");
  auto str_or = [&](const char* key, const std::string& def) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_string()) throw bad(std::string(key) + " must be a string, got " + j[key].dump());
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
  if (j.contains("lora_dropout") && j["lora_dropout"].is_number()) c.lora_dropout = j["lora_dropout"].get<double>();
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

std::shared_ptr<Adapter> load_peft_adapter(const std::string& dir, const model::ModelConfig& config,
                                           const PeftLoadOptions& options) {
  const PeftConfig cfg = read_peft_config(dir);
  const fs::path wpath = fs::path(dir) / kAdapterWeightsFile;
  const std::string where = wpath.string();
  if (!fs::exists(wpath)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin")) {
      throw PeftError(dir + ": only adapter_model.bin (a pickle) found; kaizen reads safetensors "
                      "(save with safe_serialization=True)");
    }
    throw PeftError(dir + ": no " + kAdapterWeightsFile);
  }
  std::shared_ptr<model::SafetensorsFile> file;
  try {
    file = model::SafetensorsFile::open(where);
  } catch (const model::SafetensorsError& e) {
    throw PeftError(e.what());
  }
  auto adapter = std::make_shared<Adapter>(config.num_hidden_layers, cfg.r, cfg.lora_alpha, cfg.use_rslora);
  adapter->base_model_name_or_path = cfg.base_model_name_or_path;
  std::map<std::pair<int64_t, int>, LoraPair> pairs;
  torch::NoGradGuard no_grad;
  for (const auto& [key, info] : file->tensors()) {
    int64_t layer = 0;
    Target t;
    char which = 0;
    std::string why;
    if (!parse_key(key, &layer, &t, &which, &why)) throw PeftError(where + ": tensor " + key + " " + why);
    if (layer >= config.num_hidden_layers) {
      throw PeftError(where + ": tensor " + key + " is for layer " + std::to_string(layer) +
                      ", but the model has " + std::to_string(config.num_hidden_layers) + " layers");
    }
    const std::string mpath = module_path(layer, t);
    if (!cfg.matches(mpath)) {
      throw PeftError(where + ": tensor " + key + " is for module " + mpath +
                      ", which adapter_config.json's target_modules do not select");
    }
    const auto [in, out] = target_dims(config, t);
    const std::vector<int64_t> want = which == 'A' ? std::vector<int64_t>{cfg.r, in}
                                                   : std::vector<int64_t>{out, cfg.r};
    if (info.shape != want) {
      std::string hint;
      if (info.shape.size() == 2) {
        const int64_t file_r = which == 'A' ? info.shape[0] : info.shape[1];
        if (file_r != cfg.r) hint = " (rank " + std::to_string(file_r) + " != r " + std::to_string(cfg.r) + ")";
      }
      throw PeftError(where + ": tensor " + key + " has shape " + shape_str(info.shape) +
                      ", the model and r imply " + shape_str(want) + hint);
    }
    torch::Tensor v;
    try {
      v = file->tensor(key);
    } catch (const model::SafetensorsError& e) {
      throw PeftError(e.what());
    }
    if (!v.is_floating_point()) throw PeftError(where + ": tensor " + key + " has non-float dtype " + info.dtype);
    v = v.to(options.device, options.dtype, /*non_blocking=*/false, /*copy=*/true);
    if (!torch::isfinite(v).all().item<bool>()) throw PeftError(where + ": tensor " + key + " holds NaN or Inf");
    LoraPair& p = pairs[{layer, static_cast<int>(t)}];
    (which == 'A' ? p.a : p.b) = v;
  }
  if (pairs.empty()) throw PeftError(where + ": holds no LoRA tensors");
  for (auto& [lt, p] : pairs) {
    const std::string mpath = module_path(lt.first, static_cast<Target>(lt.second));
    if (!p.a.defined() || !p.b.defined()) {
      throw PeftError(where + ": module " + mpath + " lacks " +
                      (p.a.defined() ? "lora_B.weight" : "lora_A.weight"));
    }
    adapter->set(lt.first, static_cast<Target>(lt.second), std::move(p));
  }
  return adapter;
}

void save_peft_adapter(const Adapter& adapter, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw PeftError(dir + ": cannot create directory: " + ec.message());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [path, pair] : adapter.entries()) {
    tensors.emplace_back(kKeyPrefix + path + ".lora_A.weight", pair->a.detach().to(torch::kCPU, torch::kFloat));
    tensors.emplace_back(kKeyPrefix + path + ".lora_B.weight", pair->b.detach().to(torch::kCPU, torch::kFloat));
  }
  if (tensors.empty()) throw PeftError("refusing to save an adapter with no modules to " + dir);
  try {
    model::save_safetensors((fs::path(dir) / kAdapterWeightsFile).string(), tensors, {{"format", "pt"}});
  } catch (const model::SafetensorsError& e) {
    throw PeftError(e.what());
  }
  PeftConfig c;
  c.r = adapter.rank();
  c.lora_alpha = adapter.alpha();
  c.use_rslora = adapter.use_rslora();
  c.target_modules = adapter.target_modules();
  std::sort(c.target_modules.begin(), c.target_modules.end());
  c.base_model_name_or_path = adapter.base_model_name_or_path;
  try {
    model::atomic_write_file((fs::path(dir) / kAdapterConfigFile).string(),
                             c.to_json().dump(2) + "\n");
  } catch (const model::DurableFileError& e) {
    throw PeftError(e.what());
  }
}

std::shared_ptr<Adapter> make_peft_init_adapter(const model::ModelConfig& config, int64_t rank,
                                                double alpha, bool use_rslora,
                                                const std::vector<Target>& targets, uint64_t seed,
                                                const PeftLoadOptions& options) {
  if (targets.empty()) throw PeftError("LoRA needs at least one target module");
  auto adapter = std::make_shared<Adapter>(config.num_hidden_layers, rank, alpha, use_rslora);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    for (Target t : targets) {
      const auto [in, out] = target_dims(config, t);
      // kaiming_uniform_(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/in) = 1/sqrt(in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      torch::Tensor a = at::empty({rank, in}, torch::kFloat).uniform_(-bound, bound, gen);
      LoraPair p;
      p.a = a.to(options.device, options.dtype).set_requires_grad(true);
      p.b = torch::zeros({out, rank}, torch::TensorOptions().device(options.device).dtype(options.dtype))
                .set_requires_grad(true);
      adapter->set(l, t, std::move(p));
    }
  }
  return adapter;
}

std::shared_ptr<Adapter> clone_trainable(const Adapter& src) {
  auto out = std::make_shared<Adapter>(src.num_layers(), src.rank(), src.alpha(), src.use_rslora());
  out->base_model_name_or_path = src.base_model_name_or_path;
  torch::NoGradGuard no_grad;
  for (int64_t l = 0; l < src.num_layers(); ++l) {
    for (int i = 0; i < kNumTargets; ++i) {
      const LoraPair* p = src.find(l, static_cast<Target>(i));
      if (!p) continue;
      LoraPair q;
      q.a = p->a.detach().clone().set_requires_grad(true);
      q.b = p->b.detach().clone().set_requires_grad(true);
      out->set(l, static_cast<Target>(i), std::move(q));
    }
  }
  return out;
}

std::vector<Target> parse_targets(const std::string& spec) {
  if (spec == "all" || spec == "all-linear") {
    return {Target::kQ, Target::kK, Target::kV, Target::kO, Target::kGate, Target::kUp, Target::kDown};
  }
  if (spec == "attn") return {Target::kQ, Target::kK, Target::kV, Target::kO};
  if (spec == "mlp") return {Target::kGate, Target::kUp, Target::kDown};
  std::vector<Target> out;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto t = target_from_name(item);
    if (!t) {
      throw PeftError("unknown LoRA target '" + item +
                      "' (expected q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, all, attn or mlp)");
    }
    if (std::find(out.begin(), out.end(), *t) == out.end()) out.push_back(*t);
  }
  if (out.empty()) throw PeftError("no LoRA targets in '" + spec + "'");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kaizen::adapter
