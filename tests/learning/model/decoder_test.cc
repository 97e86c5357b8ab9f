// The decoder against the independent Python reference (tools/ref, written from the
// HF modeling code): logits at every position within 1e-4, with and without the KV
// cache, for batched ragged sequences, for every architecture.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learning/adapter/peft.h"
#include "learning/model/loader.h"
#include "learning/model/safetensors.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::model {
namespace {

using testing::quote;
using testing::run_ref;
using testing::TempDir;

std::string join(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

torch::Tensor ref_logits(const std::string& model, const std::vector<int64_t>& ids, const TempDir& tmp) {
  const std::string out = tmp / "ref_logits.safetensors";
  run_ref("logits --model " + quote(model) + " --ids " + join(ids) + " --out " + quote(out));
  return SafetensorsFile::open(out)->tensor("logits").clone();
}

torch::Tensor cpp_logits(const Decoder& d, const std::vector<int64_t>& ids) {
  c10::InferenceMode guard;
  return d.forward(torch::tensor(ids).view({1, -1}), nullptr, nullptr)[0];
}

const std::vector<int64_t> kIds = {151644, 872, 198, 9707, 11, 1879, 0, 42, 151645, 198, 151644, 77091, 198, 3555};

struct ArchCase {
  std::string name;
  std::string make_args;  // ref.py make-model flags
};

class DecoderVsReference : public ::testing::TestWithParam<ArchCase> {};

TEST_P(DecoderVsReference, LogitsMatchEveryPosition) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  const std::string model = tmp / "model";
  run_ref("make-model --out " + quote(model) + " --seed 3 " + GetParam().make_args);
  auto decoder = load_decoder(model);
  torch::Tensor ref = ref_logits(model, kIds, tmp);
  torch::Tensor ours = cpp_logits(*decoder, kIds);
  ASSERT_EQ(ref.sizes(), ours.sizes());
  const double diff = (ref - ours).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << GetParam().name;
  // The comparison is not vacuous: logits vary across positions and vocab.
  EXPECT_GT(ours.std().item<double>(), 1e-3);
}

TEST_P(DecoderVsReference, CacheStepByStepEqualsFullForward) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  const std::string model = tmp / "model";
  run_ref("make-model --out " + quote(model) + " --seed 5 " + GetParam().make_args);
  auto d = load_decoder(model);
  torch::Tensor full = cpp_logits(*d, kIds);
  c10::InferenceMode guard;
  KVCache cache = d->make_cache(1, 2);  // small on purpose: growth is exercised
  const int64_t split = 5;
  std::vector<int64_t> head(kIds.begin(), kIds.begin() + split);
  std::vector<torch::Tensor> rows = {d->forward(torch::tensor(head).view({1, -1}), &cache, nullptr)[0]};
  for (size_t t = split; t < kIds.size(); ++t) {
    rows.push_back(d->forward(torch::tensor({kIds[t]}).view({1, 1}), &cache, nullptr)[0]);
  }
  torch::Tensor cached = torch::cat(rows, 0);
  EXPECT_LT((cached - full).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(cache.length(0), static_cast<int64_t>(kIds.size()));
  // And the reference's own cached path agrees with ours.
  const std::string out = tmp / "ref_cached.safetensors";
  run_ref("logits-cached --model " + quote(model) + " --ids " + join(kIds) + " --split 5 --out " + quote(out));
  torch::Tensor ref = SafetensorsFile::open(out)->tensor("logits");
  EXPECT_LT((ref - cached).abs().max().item<double>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Archs, DecoderVsReference,
    ::testing::Values(ArchCase{"qwen3", "--arch qwen3"}, ArchCase{"qwen3_tied", "--arch qwen3 --tied"},
                      ArchCase{"qwen2", "--arch qwen2 --hidden 64 --heads 4 --kv-heads 2"},
                      ArchCase{"llama", "--arch llama --hidden 64 --heads 4 --kv-heads 2"},
                      ArchCase{"llama_rope_llama3",
                               "--arch llama --rope-scaling-json "
                               "'{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                               "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":16}'"},
                      ArchCase{"qwen2_rope_linear", "--arch qwen2 --rope-scaling-json "
                                                    "'{\"rope_type\":\"linear\",\"factor\":2.0}'"}),
    [](const auto& info) { return info.param.name; });

TEST(Decoder, RaggedBatchWithCacheEqualsSingleSequences) {
  TinyModelSpec spec;
  spec.seed = 11;
  auto d = make_random_decoder(spec);
  c10::InferenceMode guard;
  const std::vector<int64_t> a = {10, 20, 30, 40, 50, 60, 70};
  const std::vector<int64_t> b = {7, 8, 9};
  torch::Tensor ra = d->forward(torch::tensor(a).view({1, -1}), nullptr, nullptr)[0];
  torch::Tensor rb = d->forward(torch::tensor(b).view({1, -1}), nullptr, nullptr)[0];
  // Right-padded batch, prefill a[:4] and b[:2], then the rest with different lengths.
  KVCache cache = d->make_cache(2, 4);
  torch::Tensor ids1 = torch::tensor({10, 20, 30, 40, 7, 8, 0, 0}).view({2, 4});
  torch::Tensor l1 = d->forward(ids1, &cache, nullptr, LogitsFor::kAll, {4, 2});
  EXPECT_LT((l1[0] - ra.narrow(0, 0, 4)).abs().max().item<double>(), 1e-4);
  EXPECT_LT((l1[1].narrow(0, 0, 2) - rb.narrow(0, 0, 2)).abs().max().item<double>(), 1e-4);
  torch::Tensor ids2 = torch::tensor({50, 60, 70, 9, 0, 0}).view({2, 3});
  torch::Tensor l2 = d->forward(ids2, &cache, nullptr, LogitsFor::kLast, {3, 1});  // (2, V)
  EXPECT_LT((l2[0] - ra[6]).abs().max().item<double>(), 1e-4);
  EXPECT_LT((l2[1] - rb[2]).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(cache.length(0), 7);
  EXPECT_EQ(cache.length(1), 3);
  // Without a cache too.
  torch::Tensor l3 = d->forward(torch::tensor({10, 20, 30, 40, 50, 60, 70, 7, 8, 9, 0, 0, 0, 0}).view({2, 7}),
                                nullptr, nullptr, LogitsFor::kAll, {7, 3});
  EXPECT_LT((l3[0] - ra).abs().max().item<double>(), 1e-4);
  EXPECT_LT((l3[1].narrow(0, 0, 3) - rb).abs().max().item<double>(), 1e-4);
}

// Continuous batching: one decode_step over rows at different positions, each with its
// own cache and adapter (two rows share one), gives every row the logits its own
// single-sequence forward gives, step after step; with one row it is that forward, bit
// for bit.
TEST(Decoder, DecodeStepBatchesRowsWithTheirOwnCachesAndAdapters) {
  TinyModelSpec spec;
  spec.seed = 13;
  auto d = make_random_decoder(spec);
  auto random_adapter = [&](uint64_t seed, int64_t rank) {
    auto a = adapter::make_peft_init_adapter(d->config(), rank, 2.0 * rank, false,
                                             adapter::parse_targets("all"), seed);
    torch::NoGradGuard g;
    for (auto& t : a->parameters()) t.normal_(0, 0.1);
    return a;
  };
  auto lora_a = random_adapter(1, 4);
  auto lora_b = random_adapter(2, 8);
  const std::vector<const adapter::Adapter*> adapters = {nullptr, lora_a.get(), lora_b.get(), lora_a.get()};
  const std::vector<std::vector<int64_t>> prompts = {
      {151644, 872, 198, 9707}, {5, 6, 7, 8, 9, 10, 11, 12, 13}, {42}, {300, 301, 302, 303, 304, 305}};
  c10::InferenceMode guard;
  std::vector<KVCache> batched, alone;
  std::vector<int64_t> next;
  for (size_t b = 0; b < prompts.size(); ++b) {
    batched.push_back(d->make_cache(1, 2));  // small: growth inside decode_step is exercised
    alone.push_back(d->make_cache(1, 2));
    torch::Tensor ids = torch::tensor(prompts[b]).view({1, -1});
    torch::Tensor l = d->forward(ids, &batched[b], adapters[b], LogitsFor::kLast);
    d->forward(ids, &alone[b], adapters[b], LogitsFor::kLast);
    next.push_back(l[0].argmax().item<int64_t>());
  }
  std::vector<KVCache*> caches;
  for (auto& c : batched) caches.push_back(&c);
  for (int step = 0; step < 6; ++step) {
    torch::Tensor together = d->decode_step(next, caches, adapters);  // (B, V)
    ASSERT_EQ(together.sizes(), (std::vector<int64_t>{4, spec.vocab_size}));
    for (size_t b = 0; b < prompts.size(); ++b) {
      torch::Tensor own = d->forward(torch::tensor({next[b]}).view({1, 1}), &alone[b], adapters[b],
                                     LogitsFor::kLast)[0];
      const double diff = (together[static_cast<int64_t>(b)] - own).abs().max().item<double>();
      EXPECT_LT(diff, 1e-4) << "row " << b << " step " << step;
      EXPECT_EQ(batched[b].length(0), alone[b].length(0));
      next[b] = own.argmax().item<int64_t>();
    }
  }
  // Rows 1 and 3 share an adapter but not a cache: their logits differ.
  torch::Tensor last = d->decode_step(next, caches, adapters);
  EXPECT_GT((last[1] - last[3]).abs().max().item<double>(), 1e-3);

  // One row: exactly forward().
  KVCache one = batched[1].slice(0, batched[1].length(0));
  KVCache ref = batched[1].slice(0, batched[1].length(0));
  torch::Tensor a = d->decode_step({next[1]}, {&one}, {lora_a.get()});
  torch::Tensor r = d->forward(torch::tensor({next[1]}).view({1, 1}), &ref, lora_a.get(), LogitsFor::kLast);
  EXPECT_TRUE(torch::equal(a, r));

  // Bad calls name the problem and advance nothing.
  const int64_t before = batched[0].length(0);
  KVCache two = d->make_cache(2, 4);
  EXPECT_THROW(d->decode_step({1, 2}, {caches[0], &two}, {nullptr, nullptr}), std::invalid_argument);
  EXPECT_THROW(d->decode_step({1, 2}, {caches[0]}, {nullptr, nullptr}), std::invalid_argument);
  EXPECT_THROW(d->decode_step({}, {}, {}), std::invalid_argument);
  EXPECT_EQ(batched[0].length(0), before);
}

// Prompts longer than one attention chunk (kAttentionChunk = 256 query rows, decoder.cc):
// every chunk boundary, the causal key limit per chunk, a cached prefix (past > 0) and
// ragged rows must give the reference's logits; the autograd path (no in-place
// softmax, chunks joined by cat) must give the same values and a gradient.
TEST(Decoder, LongPromptsAcrossAttentionChunksMatchTheReference) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  const std::string model = tmp / "model";
  run_ref("make-model --out " + quote(model) + " --seed 13 --arch qwen3");
  auto d = load_decoder(model);
  std::vector<int64_t> ids(600);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 7919 + 13) % 5000);
  torch::Tensor ref = ref_logits(model, ids, tmp);  // (600, V)
  torch::Tensor ours = cpp_logits(*d, ids);
  ASSERT_EQ(ref.sizes(), ours.sizes());
  EXPECT_LT((ref - ours).abs().max().item<double>(), 1e-4);

  {  // 100 cached tokens, then 500 in one forward (two full chunks, past > 0)
    c10::InferenceMode guard;
    KVCache cache = d->make_cache(1, 8);
    torch::Tensor all = torch::tensor(ids).view({1, -1});
    d->forward(all.narrow(1, 0, 100), &cache, nullptr);
    torch::Tensor rest = d->forward(all.narrow(1, 100, 500), &cache, nullptr)[0];
    EXPECT_LT((rest - ref.narrow(0, 100, 500)).abs().max().item<double>(), 1e-4);
  }
  {  // ragged batch: rows of 600 and 300 tokens, right-padded
    c10::InferenceMode guard;
    torch::Tensor batch = torch::zeros({2, 600}, torch::kInt64);
    batch[0].copy_(torch::tensor(ids));
    batch[1].narrow(0, 0, 300).copy_(torch::tensor(ids).narrow(0, 0, 300));
    torch::Tensor l = d->forward(batch, nullptr, nullptr, LogitsFor::kAll, {600, 300});
    EXPECT_LT((l[0] - ref).abs().max().item<double>(), 1e-4);
    EXPECT_LT((l[1].narrow(0, 0, 300) - ref.narrow(0, 0, 300)).abs().max().item<double>(), 1e-4);
  }
  {  // with autograd
    for (auto& p : d->parameters()) p.set_requires_grad(false);
    torch::Tensor embed = d->named_parameters()["model.embed_tokens.weight"];
    embed.set_requires_grad(true);
    torch::Tensor l = d->forward(torch::tensor(ids).view({1, -1}), nullptr, nullptr)[0];
    EXPECT_LT((l.detach() - ref).abs().max().item<double>(), 1e-4);
    l.select(1, 0).sum().backward();
    ASSERT_TRUE(embed.grad().defined());
    EXPECT_GT(embed.grad().abs().sum().item<double>(), 0.0);
  }
}

// CPU weights are copied into one huge-page arena by default (decode speed) or alias the
// memory-mapped file on request; both give the same model.
TEST(Decoder, WeightArenaAndMmapLoadTheSameModel) {
  TempDir tmp;
  TinyModelSpec spec;
  spec.seed = 21;
  save_decoder(*make_random_decoder(spec), tmp / "m");
  LoadOptions mapped{"cpu", "float32"};
  mapped.mmap_weights = true;
  auto a = load_decoder(tmp / "m", LoadOptions{"cpu", "float32"});
  auto b = load_decoder(tmp / "m", mapped);
  const std::vector<int64_t> ids = {1, 2, 3, 4, 5};
  EXPECT_TRUE(torch::equal(cpp_logits(*a, ids), cpp_logits(*b, ids)));
  // The arena: every weight 64-byte aligned, laid out back to back in load order.
  const auto weights = a->named_weights();
  const uint8_t* prev_end = nullptr;
  for (const auto& [name, w] : weights) {
    const auto* p = static_cast<const uint8_t*>(w.data_ptr());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << name;
    if (prev_end) {
      EXPECT_EQ(p, prev_end) << name;
    }
    prev_end = p + ((w.nbytes() + 63) / 64) * 64;
  }
}

TEST(Decoder, OurTinyModelLoadsInTheReference) {
  KAIZEN_REQUIRE_REF();
  TempDir tmp;
  TinyModelSpec spec;
  spec.seed = 2;
  write_tiny_model(spec, tmp / "m", testing::tokenizer_dir());
  auto d = load_decoder(tmp / "m");
  EXPECT_LT((ref_logits(tmp / "m", kIds, tmp) - cpp_logits(*d, kIds)).abs().max().item<double>(), 1e-4);
}

TEST(Decoder, LoadErrorsNameTheProblem) {
  TempDir tmp;
  TinyModelSpec spec;
  spec.seed = 1;
  auto d = make_random_decoder(spec);
  save_decoder(*d, tmp / "m");
  // Missing tensor.
  auto weights = d->named_weights();
  std::vector<std::pair<std::string, torch::Tensor>> partial;
  for (auto& w : weights) {
    if (w.first != "model.norm.weight") partial.push_back(w);
  }
  save_safetensors(tmp / "m/model.safetensors", partial);
  try {
    load_decoder(tmp / "m");
    FAIL() << "expected ModelLoadError";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("model.norm.weight"), std::string::npos) << e.what();
  }
  // Wrong shape.
  partial.push_back({"model.norm.weight", torch::ones({65})});
  save_safetensors(tmp / "m/model.safetensors", partial);
  try {
    load_decoder(tmp / "m");
    FAIL() << "expected ModelLoadError";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("[65]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[64]"), std::string::npos) << e.what();
  }
  // Extra tensor.
  partial.back().second = torch::ones({64});
  partial.push_back({"model.layers.9.mlp.up_proj.weight", torch::ones({2, 2})});
  save_safetensors(tmp / "m/model.safetensors", partial);
  EXPECT_THROW(load_decoder(tmp / "m"), ModelLoadError);
  // Unknown architecture / missing dir.
  std::ofstream(tmp / "m/config.json") << R"({"architectures":["MambaForCausalLM"],"vocab_size":10})";
  try {
    load_decoder(tmp / "m");
    FAIL();
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("MambaForCausalLM"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_decoder(tmp / "nope"), ModelLoadError);
}

}  // namespace
}  // namespace kaizen::model
