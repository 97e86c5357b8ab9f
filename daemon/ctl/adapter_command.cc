// kaizenctl adapter merge|info: offline operations on PEFT adapter directories.
// (The online `adapters` group, the daemon's published adapters, is adapters_command.cc.)
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "daemon/ctl/command.h"
#include "daemon/ctl/flags.h"
#include "learning/adapter/merge.h"
#include "learning/adapter/peft.h"
#include "learning/model/config.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

int merge(const std::vector<std::string>& args) {
  Flags f(args, {"model", "adapter", "out"});
  if (f.help()) {
    std::puts("kaizenctl adapter merge --model DIR --adapter DIR --out DIR\n"
              "  writes a full HF model directory with W + (alpha/r) B A folded into the weights");
    return kExitOk;
  }
  const std::string out = f.require("out");
  adapter::merge_model_dir(f.require("model"), f.require("adapter"), out);
  if (f.json()) std::cout << json{{"out", out}}.dump() << "\n";
  else std::printf("wrote merged model to %s\n", out.c_str());
  return kExitOk;
}

int info(const std::vector<std::string>& args) {
  Flags f(args, {"adapter", "model"});
  if (f.help()) {
    std::puts("kaizenctl adapter info --adapter DIR [--model DIR]   (--model: also check it fits that model)");
    return kExitOk;
  }
  const std::string dir = f.require("adapter");
  adapter::PeftConfig c = adapter::read_peft_config(dir);
  json j = c.to_json();
  if (f.has("model")) {
    auto mc = model::ModelConfig::from_file(f.get("model") + "/config.json");
    auto a = adapter::load_peft_adapter(dir, mc);
    int64_t params = 0;
    for (const auto& t : a->parameters()) params += t.numel();
    j["parameters"] = params;
    j["modules"] = a->entries().size();
    j["scale"] = a->scale();
    j["fits_model"] = f.get("model");
  }
  if (f.json()) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::string targets = c.target_regex;
  for (const auto& t : c.target_modules) targets += (targets.empty() ? "" : ",") + t;
  std::printf("%s: LoRA r %lld alpha %g%s targets %s base %s\n", dir.c_str(), static_cast<long long>(c.r),
              c.lora_alpha, c.use_rslora ? " (rsLoRA)" : "", targets.c_str(),
              c.base_model_name_or_path.empty() ? "?" : c.base_model_name_or_path.c_str());
  if (j.contains("parameters")) {
    std::printf("  fits %s: %lld modules, %lld parameters, scale %g\n", f.get("model").c_str(),
                static_cast<long long>(j["modules"].get<int64_t>()), static_cast<long long>(j["parameters"].get<int64_t>()),
                j["scale"].get<double>());
  }
  return kExitOk;
}

int adapter_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help") {
    std::puts("kaizenctl adapter merge|info ... (--help on each)");
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "merge") return merge(rest);
  if (args[0] == "info") return info(rest);
  std::fprintf(stderr, "kaizenctl adapter: unknown subcommand '%s'\n", args[0].c_str());
  return kExitUsage;
}

}  // namespace

KAIZEN_CTL_COMMAND("adapter", "merge | info: PEFT adapter directories (offline)", adapter_command);

}  // namespace kaizen::ctl
