// Decode and prefill throughput of the C++ decoder on a Qwen3-0.6B-shaped model
// (random weights, real shapes, fp32) against the Python reference (tools/ref, same
// torch, same threads, two thread set-ups) measured in the same run; prefill in chunks
// (kaizend's prefill_chunk) against prefill in one forward. Then concurrent
// decode (what kaizend's engine does with several chats): B sequences, each with its
// own cache, decoded together by one batched forward per step (Decoder::decode_step,
// half the rows on one LoRA adapter, half on another) against the same B sequences
// stepped one forward each, round-robin, in the same run. Not a test: prints tables
// + ratios.
//
//   decode_bench [--threads 2] [--prefill 512] [--decode 64] [--layers 28] [--keep DIR]
//                [--profile TRACE.json] [--mmap 1 (weights alias the file)]
//                [--batches 4,8] [--batch-prompt 128] [--batch-lora 0 (no adapters)]
//                [--peers 0 (skip tools/ref)] [--chunks 64,128,256]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "bench/bench_args.h"
#include "learning/adapter/peft.h"
#include "learning/model/loader.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"

namespace {

using kaizen::bench::arg;

using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }


std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Concurrent decode of B sequences (prompts of `prompt` random tokens, `steps` tokens
// each): batched (one decode_step per step) vs round-robin (one forward per sequence
// per step, the engine before continuous batching). Returns total tokens/s of both.
std::pair<double, double> concurrent_decode(const kaizen::model::Decoder& d, int64_t B, int64_t prompt,
                                            int64_t steps,
                                            const std::vector<const kaizen::adapter::Adapter*>& adapters) {
  using kaizen::model::KVCache;
  using kaizen::model::LogitsFor;
  auto prefilled = [&](std::vector<KVCache>& caches, std::vector<int64_t>& next) {
    caches.clear();
    next.clear();
    torch::manual_seed(7);
    for (int64_t b = 0; b < B; ++b) {
      caches.push_back(d.make_cache(1, prompt + steps + 1));
      auto ids = torch::randint(0, d.config().vocab_size, {1, prompt}, torch::kInt64);
      next.push_back(d.forward(ids, &caches.back(), adapters[b], LogitsFor::kLast)[0].argmax().item<int64_t>());
    }
  };
  std::vector<KVCache> caches;
  std::vector<int64_t> next;
  prefilled(caches, next);
  std::vector<KVCache*> ptrs;
  for (auto& c : caches) ptrs.push_back(&c);
  auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    auto logits = d.decode_step(next, ptrs, adapters);  // (B, V)
    auto tok = logits.argmax(-1);
    for (int64_t b = 0; b < B; ++b) next[b] = tok[b].item<int64_t>();
  }
  const double batched = B * steps / secs(t0, Clock::now());
  prefilled(caches, next);
  t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    for (int64_t b = 0; b < B; ++b) {
      auto l = d.forward(torch::tensor({next[b]}).view({1, 1}), &caches[b], adapters[b], LogitsFor::kLast);
      next[b] = l[0].argmax().item<int64_t>();
    }
  }
  const double round_robin = B * steps / secs(t0, Clock::now());
  return {batched, round_robin};
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const int threads = std::stoi(arg(argc, argv, "threads", "2"));
  const int64_t prefill = std::stoll(arg(argc, argv, "prefill", "512"));
  const int64_t decode = std::stoll(arg(argc, argv, "decode", "64"));
  const int64_t layers = std::stoll(arg(argc, argv, "layers", "28"));
  const std::string source = arg(argc, argv, "source", KAIZEN_BENCH_SOURCE_DIR);
  const auto compute = kaizen::model::set_compute_threads(threads);

  // Qwen3-0.6B's shape (REFERENCE.md).
  kaizen::model::TinyModelSpec s = kaizen::model::qwen3_0_6b_shape(layers);
  std::string dir = arg(argc, argv, "keep", "");
  const bool temp = dir.empty();
  if (temp) dir = (fs::temp_directory_path() / ("kaizen-decode-bench-" + std::to_string(getpid()))).string();
  if (!fs::exists(fs::path(dir) / "model.safetensors")) {
    std::fprintf(stderr, "writing a Qwen3-0.6B-shaped model (%lld layers) to %s ...\n", (long long)layers, dir.c_str());
    kaizen::model::save_decoder(*kaizen::model::make_random_decoder(s), dir);
  }

  kaizen::model::LoadOptions lo{"cpu", "float32"};
  lo.mmap_weights = arg(argc, argv, "mmap", "0") == "1";  // --mmap 1: alias the file instead
  auto d = kaizen::model::load_decoder(dir, lo);
  auto ids = torch::randint(0, s.vocab_size, {1, prefill}, torch::kInt64);
  c10::InferenceMode guard;
  {  // warm-up: one full-size pass, so the timed one runs in steady state (allocator
     // pools grown, pages faulted in) as every request after a daemon's first does
    auto c = d->make_cache(1, prefill + 2);
    d->forward(ids, &c, nullptr, kaizen::model::LogitsFor::kLast);
    d->forward(ids.narrow(1, 0, 1), &c, nullptr, kaizen::model::LogitsFor::kLast);
  }
  if (const std::string trace = arg(argc, argv, "profile", ""); !trace.empty()) {
    // One prefill + decode pass under the autograd profiler: a chrome://tracing file
    // with every ATen op (tools/ref/profile_summary.py sums it per op).
    auto c = d->make_cache(1, prefill + decode);
    torch::autograd::profiler::RecordProfile profile(trace);
    auto l = d->forward(ids, &c, nullptr, kaizen::model::LogitsFor::kLast)[0];
    for (int64_t i = 0; i < decode; ++i) {
      l = d->forward(l.argmax().view({1, 1}), &c, nullptr, kaizen::model::LogitsFor::kLast)[0];
    }
  }
  auto cache = d->make_cache(1, prefill + decode);
  auto t0 = Clock::now();
  auto logits = d->forward(ids, &cache, nullptr, kaizen::model::LogitsFor::kLast)[0];
  auto t1 = Clock::now();
  for (int64_t i = 0; i < decode; ++i) {
    auto tok = logits.argmax().view({1, 1});
    logits = d->forward(tok, &cache, nullptr, kaizen::model::LogitsFor::kLast)[0];
  }
  auto t2 = Clock::now();
  const double cpp_prefill = prefill / secs(t0, t1), cpp_decode = decode / secs(t1, t2);

  // Peers: the reference as HF runs it (torch's pool and OpenBLAS's pool both at
  // `threads`), and with the same thread split kaizen uses (torch 1, OpenBLAS
  // `threads`), so the ratio shows the decoder, not the thread set-up.
  auto ref_cmd = [&](const std::string& extra, bool split) {
    const std::string env = split ? "OPENBLAS_NUM_THREADS=" + std::to_string(threads) + " " : "";
    return env + "/usr/bin/python3 " + source + "/tools/ref/ref.py bench --model " + dir + " --threads " +
           std::to_string(split ? 1 : threads) + " --prefill " + std::to_string(prefill) + " --decode " +
           std::to_string(decode) + extra + " 2>/dev/null";
  };
  struct Peer {
    const char* name;
    std::string extra;
    bool split;
    double prefill = 0, decode = 0;
  };
  std::vector<Peer> peers = {{"tools/ref HF eager, both pools", "", false},
                             {"tools/ref --matvec, both pools", " --matvec", false},
                             {"tools/ref HF eager, split", "", true},
                             {"tools/ref --matvec, split", " --matvec", true}};
  const bool run_peers = arg(argc, argv, "peers", "1") != "0";  // --peers 0: skip tools/ref
  for (auto& p : peers) {
    if (!run_peers) break;
    try {
      auto r = nlohmann::json::parse(run(ref_cmd(p.extra, p.split)));
      p.prefill = r.at("prefill_tokens_per_s").get<double>();
      p.decode = r.at("decode_tokens_per_s").get<double>();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reference bench (%s) failed: %s\n", p.name, e.what());
    }
  }
  std::printf("Qwen3-0.6B shape (%lld layers), fp32, %d threads, prefill %lld, decode %lld\n",
              (long long)layers, threads, (long long)prefill, (long long)decode);
  std::printf("kaizen compute threads: %s; weights %s\n", compute.describe().c_str(),
              lo.mmap_weights ? "memory-mapped file" : "huge-page arena");
  std::printf("%-34s %12s %12s %16s\n", "", "prefill t/s", "decode t/s", "kaizen/peer p,d");
  std::printf("%-34s %12.1f %12.2f\n", "kaizen (C++)", cpp_prefill, cpp_decode);
  for (const auto& p : peers) {
    if (p.decode <= 0) continue;
    std::printf("%-34s %12.1f %12.2f %7.2fx %7.2fx\n", p.name, p.prefill, p.decode, cpp_prefill / p.prefill,
                cpp_decode / p.decode);
  }
  std::printf("anchor: llama.cpp F32 on this machine kind: decode 12-16 t/s, prefill-512 134-158 t/s\n");

  // Chunked prefill (kaizend's prefill_chunk): the same prompt fed in chunks of C tokens,
  // each a forward on the cache of the ones before. What a chunk costs is how long every
  // other chat's stream pauses per engine turn while a long prompt is prefilled; the
  // throughput is the price, against the whole prompt in one forward (timed above).
  const std::vector<int64_t> chunks = kaizen::bench::arg_ints(argc, argv, "chunks", "64,128,256");
  std::printf("\nchunked prefill of %lld tokens\n%-10s %14s %14s %14s\n", (long long)prefill, "chunk",
              "prefill t/s", "ms per chunk", "vs one forward");
  for (int64_t c : chunks) {
    if (c <= 0 || c >= prefill) continue;
    auto cc = d->make_cache(1, prefill + 1);
    auto c0 = Clock::now();
    for (int64_t p = 0; p < prefill; p += c) {
      const int64_t n = std::min(c, prefill - p);
      if (p + n < prefill) {
        d->hidden_states(ids.narrow(1, p, n), &cc, nullptr);
      } else {
        d->forward(ids.narrow(1, p, n), &cc, nullptr, kaizen::model::LogitsFor::kLast);
      }
    }
    const double s_total = secs(c0, Clock::now());
    const double n_chunks = static_cast<double>((prefill + c - 1) / c);
    std::printf("%-10lld %14.1f %14.1f %13.2fx\n", (long long)c, prefill / s_total, 1000 * s_total / n_chunks,
                (prefill / s_total) / cpp_prefill);
  }

  // Concurrent decode: the engine's batched step vs one forward per sequence.
  const int64_t batch_prompt = std::stoll(arg(argc, argv, "batch-prompt", "128"));
  const std::vector<int64_t> batches = kaizen::bench::arg_ints(argc, argv, "batches", "4,8");
  const bool with_lora = arg(argc, argv, "batch-lora", "1") != "0";  // --batch-lora 0: base model rows
  std::vector<std::shared_ptr<kaizen::adapter::Adapter>> loras;
  for (uint64_t seed : {1, 2}) {  // rank 16 on all seven projections, the trainer's default
    c10::InferenceMode off(false);  // trainable-style tensors, as the registry loads them
    loras.push_back(kaizen::adapter::make_peft_init_adapter(d->config(), 16, 32, false,
                                                            kaizen::adapter::parse_targets("all"), seed));
    torch::NoGradGuard no_grad;
    for (auto& t : loras.back()->parameters()) t.normal_(0, 0.02);
  }
  std::printf("\nconcurrent decode, %lld-token prompts, %lld tokens each, %s\n", (long long)batch_prompt,
              (long long)decode,
              with_lora ? "rows alternate between two rank-16 adapters" : "base model (--batch-lora 0)");
  std::printf("%-10s %18s %18s %10s\n", "sequences", "batched t/s", "round-robin t/s", "ratio");
  for (int64_t B : batches) {
    std::vector<const kaizen::adapter::Adapter*> adapters;
    for (int64_t b = 0; b < B; ++b) adapters.push_back(with_lora ? loras[static_cast<size_t>(b % 2)].get() : nullptr);
    auto [batched, round_robin] = concurrent_decode(*d, B, batch_prompt, decode, adapters);
    std::printf("%-10lld %18.2f %18.2f %9.2fx\n", (long long)B, batched, round_robin, batched / round_robin);
  }
  if (temp) fs::remove_all(dir);
  return 0;
}
