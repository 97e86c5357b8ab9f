// PEFT adapters against the independent Python reference (tools/ref/lora.py, written from
// peft/tuners/lora): an adapter written by the reference loads here and gives the
// reference's logits; one written here loads there and gives ours. Plus every refusal
// names its problem, nullptr = the base model bit for bit, and merging is exact.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learning/adapter/merge.h"
#include "learning/adapter/peft.h"
#include "learning/model/loader.h"
#include "learning/model/safetensors.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::adapter {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;
using testing::run_ref;
using testing::TempDir;
using ::testing::HasSubstr;

const std::vector<int64_t> kIds = {151644, 872, 198, 9707, 11, 1879, 0, 42, 151645, 198, 151644, 77091, 198, 3555};

std::string join(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

torch::Tensor logits(const model::Decoder& d, const Adapter* a) {
  c10::InferenceMode guard;
  return d.forward(torch::tensor(kIds).view({1, -1}), nullptr, a)[0];
}

torch::Tensor ref_logits(const std::string& model, const std::string& adapter, const TempDir& tmp) {
  const std::string out = tmp / "ref_logits.safetensors";
  run_ref("logits --model " + quote(model) + " --ids " + join(kIds) + (adapter.empty() ? "" : " --adapter " + quote(adapter)) +
          " --out " + quote(out));
  return model::SafetensorsFile::open(out)->tensor("logits").clone();
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct RefCase {
  std::string name;
  std::string model_args;
  std::string adapter_args;
};

class PeftVsReference : public ::testing::TestWithParam<RefCase> {};

TEST_P(PeftVsReference, ReferenceAdapterGivesReferenceLogits) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  const std::string model = tmp / "model", adapter = tmp / "adapter";
  run_ref("make-model --out " + quote(model) + " --seed 4 " + GetParam().model_args);
  run_ref("make-adapter --model " + quote(model) + " --out " + quote(adapter) + " --seed 9 --random-b --b-std 0.2 " +
          GetParam().adapter_args);
  auto d = model::load_decoder(model);
  auto a = load_peft_adapter(adapter, d->config());
  torch::Tensor ours = logits(*d, a.get());
  torch::Tensor ref = ref_logits(model, adapter, tmp);
  ASSERT_EQ(ours.sizes(), ref.sizes());
  EXPECT_LT(max_diff(ours, ref), 1e-4) << GetParam().name;
  // Not vacuous: the adapter moves the logits well beyond the tolerance.
  EXPECT_GT(max_diff(ours, logits(*d, nullptr)), 1e-2);
}

TEST_P(PeftVsReference, OurAdapterLoadsInReference) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  const std::string model = tmp / "model", adapter = tmp / "ours";
  run_ref("make-model --out " + quote(model) + " --seed 6 " + GetParam().model_args);
  auto d = model::load_decoder(model);
  std::vector<Target> targets = parse_targets(GetParam().name == "qv_rslora" ? "q_proj,v_proj" : "all");
  auto a = make_peft_init_adapter(d->config(), 4, 8, GetParam().name == "qv_rslora", targets, 3);
  {
    torch::NoGradGuard g;
    for (auto& t : a->parameters()) t.normal_(0, 0.2);  // nonzero B: every path matters
  }
  save_peft_adapter(*a, adapter);
  torch::Tensor ours = logits(*d, a.get());
  torch::Tensor ref = ref_logits(model, adapter, tmp);
  EXPECT_LT(max_diff(ours, ref), 1e-4);
  EXPECT_GT(max_diff(ours, logits(*d, nullptr)), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Cases, PeftVsReference,
                         ::testing::Values(RefCase{"qwen3_all", "--arch qwen3", "--rank 4 --alpha 8"},
                                           RefCase{"qv_rslora", "--arch qwen3 --tied", "--rank 4 --alpha 8 --targets q_proj,v_proj --rslora"},
                                           RefCase{"qwen2_all", "--arch qwen2", "--rank 4 --alpha 8"},
                                           RefCase{"llama_mlp", "--arch llama", "--rank 4 --alpha 8 --targets gate_proj,up_proj,down_proj"}),
                         [](const auto& info) { return info.param.name; });

model::TinyModelSpec small_spec() {
  model::TinyModelSpec s;
  s.seed = 2;
  return s;
}

std::shared_ptr<Adapter> random_adapter(const model::ModelConfig& c, int64_t rank = 4) {
  auto a = make_peft_init_adapter(c, rank, 2.0 * rank, false, parse_targets("all"), 1);
  torch::NoGradGuard g;
  for (auto& t : a->parameters()) t.normal_(0, 0.1);
  return a;
}

TEST(Adapter, NullptrIsTheBaseModelBitForBit) {
  auto d = model::make_random_decoder(small_spec());
  torch::Tensor before = logits(*d, nullptr);
  auto a = random_adapter(d->config());
  torch::Tensor with = logits(*d, a.get());
  EXPECT_GT(max_diff(before, with), 1e-3);
  EXPECT_TRUE(torch::equal(before, logits(*d, nullptr)));  // no state left behind
  // A B = 0 adapter (PEFT's init) adds exactly zero.
  auto zero = make_peft_init_adapter(d->config(), 4, 8, false, parse_targets("all"), 1);
  EXPECT_TRUE(torch::equal(before, logits(*d, zero.get())));
  // Generation path (single row, mv fast path) too.
  c10::InferenceMode guard;
  auto step = [&](const Adapter* ad) {
    auto cache = d->make_cache(1, 32);
    d->forward(torch::tensor(kIds).view({1, -1}), &cache, ad);
    return d->forward(torch::tensor({int64_t{5}}).view({1, 1}), &cache, ad, model::LogitsFor::kLast);
  };
  torch::Tensor base_step = step(nullptr);
  step(a.get());
  EXPECT_TRUE(torch::equal(base_step, step(nullptr)));
}

TEST(Adapter, SaveLoadRoundTripAndPeftLayout) {
  TempDir tmp;
  auto d = model::make_random_decoder(small_spec());
  auto a = random_adapter(d->config());
  a->base_model_name_or_path = "Qwen/Qwen3-0.6B";
  save_peft_adapter(*a, tmp / "a");
  auto b = load_peft_adapter(tmp / "a", d->config());
  ASSERT_EQ(a->entries().size(), b->entries().size());
  for (size_t i = 0; i < a->entries().size(); ++i) {
    EXPECT_EQ(a->entries()[i].first, b->entries()[i].first);
    EXPECT_TRUE(torch::equal(a->entries()[i].second->a, b->entries()[i].second->a));
    EXPECT_TRUE(torch::equal(a->entries()[i].second->b, b->entries()[i].second->b));
  }
  EXPECT_EQ(b->rank(), 4);
  EXPECT_DOUBLE_EQ(b->scale(), 2.0);
  EXPECT_EQ(b->base_model_name_or_path, "Qwen/Qwen3-0.6B");
  json cfg = json::parse(std::ifstream(tmp / "a/adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["bias"], "none");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["use_dora"], false);
  EXPECT_TRUE(cfg["modules_to_save"].is_null());
  EXPECT_EQ(cfg["target_modules"], json({"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  auto file = model::SafetensorsFile::open(tmp / "a/adapter_model.safetensors");
  const auto& info = file->info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
  EXPECT_EQ(info.shape, (std::vector<int64_t>{4, 128}));
  EXPECT_EQ(info.dtype, "F32");
  EXPECT_EQ(file->info("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight").shape,
            (std::vector<int64_t>{32, 4}));
  EXPECT_EQ(file->tensors().size(), 2u * 7 * 2);
}

TEST(Adapter, PeftInitIsKaimingUniformAndZeroB) {
  auto d = model::make_random_decoder(small_spec());
  auto a = make_peft_init_adapter(d->config(), 8, 16, false, parse_targets("q_proj,down_proj"), 5);
  EXPECT_EQ(a->target_modules(), (std::vector<std::string>{"q_proj", "down_proj"}));
  const LoraPair* q = a->find(0, Target::kQ);
  const LoraPair* down = a->find(1, Target::kDown);
  ASSERT_TRUE(q && down && !a->find(0, Target::kK));
  EXPECT_TRUE(q->a.requires_grad());
  EXPECT_EQ(q->b.abs().max().item<float>(), 0.0f);
  EXPECT_LE(q->a.abs().max().item<double>(), 1.0 / std::sqrt(64.0));
  EXPECT_GT(q->a.abs().max().item<double>(), 0.9 / std::sqrt(64.0));
  EXPECT_LE(down->a.abs().max().item<double>(), 1.0 / std::sqrt(128.0));
  auto again = make_peft_init_adapter(d->config(), 8, 16, false, parse_targets("q_proj,down_proj"), 5);
  EXPECT_TRUE(torch::equal(q->a, again->find(0, Target::kQ)->a));
}

// ---- refusals: each names the problem ----

class PeftRefusals : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = model::make_random_decoder(small_spec());
    save_peft_adapter(*random_adapter(d_->config()), dir());
  }
  std::string dir() const { return tmp_ / "adapter"; }
  json config() const { return json::parse(std::ifstream(tmp_ / "adapter/adapter_config.json")); }
  void write_config(const json& j) const { std::ofstream(tmp_ / "adapter/adapter_config.json") << j.dump(); }
  void edit_tensors(const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& fn) const {
    auto f = model::SafetensorsFile::open(tmp_ / "adapter/adapter_model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (const auto& [k, info] : f->tensors()) ts.emplace_back(k, f->tensor(k).clone());
    fn(ts);
    model::save_safetensors(tmp_ / "adapter/adapter_model.safetensors", ts);
  }
  std::string refusal(const model::ModelConfig* c = nullptr) const {
    try {
      load_peft_adapter(dir(), c ? *c : d_->config());
    } catch (const PeftError& e) {
      return e.what();
    }
    return "(loaded without error)";
  }
  TempDir tmp_;
  std::shared_ptr<model::Decoder> d_;
};

TEST_F(PeftRefusals, ConfigProblems) {
  const json original = config();
  auto with = [&](const char* key, json v) {
    json j = original;
    j[key] = v;
    write_config(j);
    return refusal();
  };
  EXPECT_THAT(with("use_dora", true), HasSubstr("DoRA"));
  EXPECT_THAT(with("bias", "all"), HasSubstr("bias 'all'"));
  EXPECT_THAT(with("modules_to_save", json{"lm_head"}), HasSubstr("modules_to_save"));
  EXPECT_THAT(with("peft_type", "IA3"), HasSubstr("peft_type is 'IA3'"));
  EXPECT_THAT(with("r", 0), HasSubstr("r must be a positive integer"));
  EXPECT_THAT(with("rank_pattern", json{{"q_proj", 8}}), HasSubstr("rank_pattern"));
  EXPECT_THAT(with("fan_in_fan_out", true), HasSubstr("fan_in_fan_out"));
  EXPECT_THAT(with("target_modules", json::array()), HasSubstr("target_modules"));
  EXPECT_THAT(with("task_type", "SEQ_CLS"), HasSubstr("task_type"));
  EXPECT_THAT(with("lora_alpha", "big"), HasSubstr("lora_alpha"));
  std::ofstream(tmp_ / "adapter/adapter_config.json") << "{\"peft_type\": \"LORA\",";
  EXPECT_THAT(refusal(), HasSubstr("invalid JSON"));
}

TEST_F(PeftRefusals, RankMismatchNamesTheTensorAndBothShapes) {
  json j = config();
  j["r"] = 8;
  write_config(j);
  const std::string msg = refusal();
  EXPECT_THAT(msg, HasSubstr("down_proj.lora_A.weight has shape [4, 128]"));
  EXPECT_THAT(msg, HasSubstr("imply [8, 128]"));
  EXPECT_THAT(msg, HasSubstr("rank 4 != r 8"));
}

TEST_F(PeftRefusals, WrongShapeForThisModel) {
  model::TinyModelSpec wide = small_spec();
  wide.hidden_size = 96;
  wide.num_heads = 6;
  wide.num_kv_heads = 2;
  const model::ModelConfig other = model::tiny_config(wide);
  EXPECT_THAT(refusal(&other), HasSubstr("lora_B.weight has shape [64, 4], the model and r imply [96, 4]"));
  model::TinyModelSpec shallow = small_spec();
  shallow.num_layers = 1;
  const model::ModelConfig one = model::tiny_config(shallow);
  EXPECT_THAT(refusal(&one), HasSubstr("is for layer 1, but the model has 1 layers"));
}

TEST_F(PeftRefusals, UnknownModulesAndKeys) {
  edit_tensors([](auto& ts) {
    ts.emplace_back("base_model.model.lm_head.lora_A.weight", torch::zeros({4, 64}));
  });
  EXPECT_THAT(refusal(), HasSubstr("base_model.model.lm_head.lora_A.weight is not a LoRA weight"));
  SetUp();
  edit_tensors([](auto& ts) {
    ts.emplace_back("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", torch::zeros({4, 64}));
  });
  EXPECT_THAT(refusal(), HasSubstr("unknown module 'self_attn.qkv_proj'"));
  SetUp();
  edit_tensors([](auto& ts) {
    for (auto& [k, t] : ts) {
      if (k == "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight") {
        k = "base_model.model.model.layers.0.mlp.up_proj.lora_A.default.weight";
      }
    }
  });
  EXPECT_THAT(refusal(), HasSubstr("'.default.'"));
}

TEST_F(PeftRefusals, MissingHalfOrUnselectedModule) {
  edit_tensors([](auto& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(),
                            [](auto& kv) { return kv.first == "base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight"; }),
             ts.end());
  });
  EXPECT_THAT(refusal(), HasSubstr("model.layers.1.self_attn.o_proj lacks lora_B.weight"));
  SetUp();
  json j = config();
  j["target_modules"] = json{"q_proj", "k_proj", "v_proj", "o_proj"};
  write_config(j);
  EXPECT_THAT(refusal(), HasSubstr("target_modules do not select"));
  j["target_modules"] = "all-linear";  // PEFT's string form selects them all
  write_config(j);
  EXPECT_EQ(refusal(), "(loaded without error)");
}

// Hostile adapter files: what took the loader down before (found while fuzzing the
// parsers). A catastrophically backtracking target_modules regex ("(.|.)*[A-Z]") made
// std::regex take 13 s on one 28-character module path, doubling per character; a 100,000-digit layer number in a tensor name overflowed
// std::regex's recursion (SIGSEGV). Both are refusals now.
TEST_F(PeftRefusals, HostileRegexAndTensorNamesAreRefusedQuickly) {
  json j = config();
  j["target_modules"] = "(.|.)*[A-Z]";  // PCRE2 rejects "(.|.)*x" at once (no x in the path)
  write_config(j);
  EXPECT_THAT(refusal(), HasSubstr("backtracks too much"));
  j["target_modules"] = "model\\.layers\\.[0-9]+\\.(self_attn|mlp)\\.[a-z_]+";  // PEFT's full match
  write_config(j);
  EXPECT_EQ(refusal(), "(loaded without error)");
  j["target_modules"] = ".*\\.(q_proj|v_proj)";  // selects fewer than the file holds
  write_config(j);
  EXPECT_THAT(refusal(), HasSubstr("target_modules do not select"));
  j["target_modules"] = "(unclosed";
  write_config(j);
  EXPECT_THAT(refusal(), HasSubstr("is invalid"));

  SetUp();
  edit_tensors([](auto& ts) {
    ts.emplace_back("base_model.model.model.layers." + std::string(100000, '1') + ".mlp.up_proj.lora_A.weight",
                    torch::zeros({4, 64}));
  });
  EXPECT_THAT(refusal(), HasSubstr("has a layer number of 100000 digits"));
  SetUp();
  edit_tensors([](auto& ts) {
    ts.emplace_back("base_model.model.model.layers.0.mlp.up_proj.lora_C.weight", torch::zeros({4, 64}));
  });
  EXPECT_THAT(refusal(), HasSubstr("is not a LoRA weight"));
}

TEST_F(PeftRefusals, MissingFiles) {
  fs::remove(tmp_ / "adapter/adapter_model.safetensors");
  EXPECT_THAT(refusal(), HasSubstr("no adapter_model.safetensors"));
  fs::remove(tmp_ / "adapter/adapter_config.json");
  EXPECT_THAT(refusal(), HasSubstr("no adapter_config.json"));
  fs::remove_all(tmp_ / "adapter");
  EXPECT_THAT(refusal(), HasSubstr("adapter directory not found"));
  EXPECT_THROW(parse_targets("q_proj,qkv"), PeftError);
}

// ---- merge ----

TEST(Merge, MergedWeightsGiveBasePlusAdapterLogits) {
  TempDir tmp;
  model::TinyModelSpec spec = small_spec();
  auto d = model::make_random_decoder(spec);
  auto a = random_adapter(d->config(), 8);
  torch::Tensor expected = logits(*d, a.get());
  merge_into(*d, *a);
  torch::Tensor merged = logits(*d, nullptr);
  EXPECT_LT(max_diff(merged, expected), 1e-5);
  EXPECT_GT(expected.std().item<double>(), 1e-2);
}

TEST(Merge, ModelDirectoryRoundTripMatchesReference) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  const std::string model = tmp / "model", adapter = tmp / "adapter", out = tmp / "merged";
  run_ref("make-model --out " + quote(model) + " --seed 8 --arch qwen3");
  run_ref("make-adapter --model " + quote(model) + " --out " + quote(adapter) + " --seed 2 --random-b --b-std 0.2 --rank 8 --alpha 16");
  std::ofstream(fs::path(model) / "tokenizer_config.json") << "{}";
  merge_model_dir(model, adapter, out);
  EXPECT_TRUE(fs::exists(fs::path(out) / "tokenizer_config.json"));
  auto merged = model::load_decoder(out);
  torch::Tensor ref = ref_logits(model, adapter, tmp);
  EXPECT_LT(max_diff(logits(*merged, nullptr), ref), 1e-4);
  auto base = model::load_decoder(model);
  auto a = load_peft_adapter(adapter, base->config());
  EXPECT_LT(max_diff(logits(*merged, nullptr), logits(*base, a.get())), 1e-5);
}

}  // namespace
}  // namespace kaizen::adapter
