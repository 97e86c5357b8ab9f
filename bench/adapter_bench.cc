// Adapter overhead at inference: greedy decode tokens/s of a Qwen3-0.6B-shaped model
// (random fp32 weights) with a rank-16 LoRA adapter on all seven projections vs the base
// model, and vs the same adapter merged into the weights (what merged-weight serving of a
// single hot adapter would give). Same process, same cache sizes, interleaved rounds.
// Target: adapter <= 15% slower than base.
//
//   adapter_bench [--layers 28] [--prefill 64] [--decode 48] [--rounds 2] [--rank 16] [--threads 2]
#include <chrono>
#include <cstdio>
#include <string>

#include <torch/torch.h>

#include "bench/bench_args.h"
#include "learning/adapter/merge.h"
#include "learning/adapter/peft.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"

using namespace kaizen;

namespace {

using kaizen::bench::arg;


// Decode tokens/s after a prefill, greedy, one row (the generation loop's access pattern).
double decode_tps(const model::Decoder& d, const adapter::Adapter* a, int64_t prefill, int64_t decode) {
  c10::InferenceMode guard;
  auto cache = d.make_cache(1, prefill + decode + 1);
  torch::Tensor ids = torch::randint(0, 150000, {1, prefill}, torch::TensorOptions().dtype(torch::kInt64));
  torch::Tensor logits = d.forward(ids, &cache, a, model::LogitsFor::kLast);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < decode; ++i) {
    torch::Tensor next = logits.argmax(-1).view({1, 1});
    logits = d.forward(next, &cache, a, model::LogitsFor::kLast);
  }
  return static_cast<double>(decode) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) try {
  const int64_t layers = std::stoll(arg(argc, argv, "layers", "28"));
  const int64_t prefill = std::stoll(arg(argc, argv, "prefill", "64"));
  const int64_t decode = std::stoll(arg(argc, argv, "decode", "48"));
  const int rounds = std::stoi(arg(argc, argv, "rounds", "2"));
  const int64_t rank = std::stoll(arg(argc, argv, "rank", "16"));
  model::set_compute_threads(std::stoi(arg(argc, argv, "threads", "2")));
  model::TinyModelSpec s = model::qwen3_0_6b_shape(layers);
  auto base = model::make_random_decoder(s);
  auto lora = adapter::make_peft_init_adapter(base->config(), rank, 2.0 * rank, false, adapter::parse_targets("all"), 1);
  {
    torch::NoGradGuard g;
    for (auto& t : lora->parameters()) t.normal_(0, 0.01).set_requires_grad(false);
  }
  auto merged = model::make_random_decoder(s);
  adapter::merge_into(*merged, *lora);
  decode_tps(*base, lora.get(), 8, 4);  // warm-up
  double tb = 0, ta = 0, tm = 0;
  for (int r = 0; r < rounds; ++r) {
    tb += decode_tps(*base, nullptr, prefill, decode);
    ta += decode_tps(*base, lora.get(), prefill, decode);
    tm += decode_tps(*merged, nullptr, prefill, decode);
  }
  tb /= rounds;
  ta /= rounds;
  tm /= rounds;
  std::printf("decode, Qwen3-0.6B shape with %lld layers, fp32, %d threads, prefill %lld, %lld tokens x %d rounds\n",
              static_cast<long long>(layers), torch::get_num_threads(), static_cast<long long>(prefill),
              static_cast<long long>(decode), rounds);
  std::printf("  base                     %7.2f tok/s\n", tb);
  std::printf("  + LoRA r%lld, 7 modules   %7.2f tok/s   (%.1f%% slower; target <= 15%%)\n",
              static_cast<long long>(rank), ta, 100.0 * (1.0 - ta / tb));
  std::printf("  merged weights           %7.2f tok/s   (%.1f%% slower)\n", tm, 100.0 * (1.0 - tm / tb));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "adapter_bench: %s\n", e.what());
  return 1;
}
