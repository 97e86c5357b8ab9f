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

#include "learning/model/durable_file.h"
#include "learning/model/safetensors.h"

namespace kaizen::adapter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kKeyPrefix = "base_model.model.";

}  // namespace

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
  torch::NoGradGuard no_grad;
  for (const PeftModule& m : plan_peft_tensors(cfg, config, file->tensors(), where)) {
    LoraPair p;
    for (const std::string* key : {&m.a_key, &m.b_key}) {
      torch::Tensor v;
      try {
        v = file->tensor(*key);
      } catch (const model::SafetensorsError& e) {
        throw PeftError(e.what());
      }
      if (!v.is_floating_point())
        throw PeftError(where + ": tensor " + *key + " is not a float tensor");
      v = v.to(options.device, options.dtype, /*non_blocking=*/false, /*copy=*/true);
      if (!torch::isfinite(v).all().item<bool>())
        throw PeftError(where + ": tensor " + *key + " holds NaN or Inf");
      (key == &m.a_key ? p.a : p.b) = v;
    }
    adapter->set(m.layer, m.target, std::move(p));
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
