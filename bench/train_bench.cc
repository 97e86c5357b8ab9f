// LoRA training throughput and peak memory on a Qwen3-0.6B-shaped model (random fp32
// weights; --layers N keeps the real width but fewer layers to fit CI time), against the
// Python reference trainer (tools/ref bench-train: HF-style module injection,
// torch.optim.AdamW, same torch, same threads) on the same model files in the same run.
// Each side runs in its own process so peak RSS (getrusage maxrss) is its own.
//
//   train_bench [--layers 4] [--batch-tokens 512] [--seq-len 256] [--steps 3] [--rank 16]
//               [--threads 2] [--dir DIR (keep the model there)]
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "bench/bench_args.h"
#include "learning/model/loader.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"
#include "learning/train/batch.h"
#include "learning/train/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace kaizen;

namespace {

using kaizen::bench::arg;

bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == "--" + name) return true;
  }
  return false;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) throw std::runtime_error("failed: " + cmd + "\n" + out);
  return out;
}

// The child: load the model (mmap, zero-copy), train `steps` timed steps (+1 warm-up)
// on random ids exactly as ref.py bench-train does, print JSON.
int child(int argc, char** argv) {
  model::set_compute_threads(std::stoi(arg(argc, argv, "threads", "2")));
  const int64_t batch_tokens = std::stoll(arg(argc, argv, "batch-tokens", "512"));
  const int64_t seq_len = std::stoll(arg(argc, argv, "seq-len", "256"));
  const int64_t steps = std::stoll(arg(argc, argv, "steps", "3"));
  const int64_t rank = std::stoll(arg(argc, argv, "rank", "16"));
  model::LoadOptions lo;
  lo.device = "cpu";
  lo.dtype = "float32";
  std::shared_ptr<const model::Decoder> d = model::load_decoder(arg(argc, argv, "child", ""), lo);
  const int64_t rows = std::max<int64_t>(1, batch_tokens / seq_len);
  torch::Tensor ids = torch::randint(0, d->config().vocab_size, {rows, seq_len},
                                     torch::TensorOptions().dtype(torch::kInt64));
  std::vector<train::Example> ex;
  for (int64_t r = 0; r < rows; ++r) {
    train::Example e;
    e.ids.assign(ids[r].data_ptr<int64_t>(), ids[r].data_ptr<int64_t>() + seq_len);
    e.loss.assign(seq_len, 1);  // labels = ids, as bench-train
    ex.push_back(e);
  }
  train::TrainOptions o;
  o.rank = rank;
  o.alpha = 2.0 * rank;
  o.lr = 1e-4;
  o.schedule = train::LrSchedule::kConstant;
  o.warmup_ratio = 0;
  o.clip = 0;  // bench-train does not clip
  o.batch_tokens = rows * seq_len;
  o.epochs = steps + 1;
  std::vector<double> step_s;
  auto last = std::chrono::steady_clock::now();
  train::Trainer trainer(d, o);
  train::TrainResult r = trainer.train(ex, [&](const train::TrainProgress&) {
    auto now = std::chrono::steady_clock::now();
    step_s.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
    return true;
  });
  double timed = 0;
  for (size_t i = 1; i < step_s.size(); ++i) timed += step_s[i];
  json j = {{"tokens_per_s", static_cast<double>(rows * seq_len * steps) / timed},
            {"step_s", std::vector<double>(step_s.begin() + 1, step_s.end())},
            {"losses", r.step_losses},
            {"peak_rss_mib", peak_rss_mib()}};
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  if (flag(argc, argv, "child")) return child(argc, argv);
  const std::string layers = arg(argc, argv, "layers", "4");
  const std::string threads = arg(argc, argv, "threads", "2");
  const std::string batch_tokens = arg(argc, argv, "batch-tokens", "512");
  const std::string seq_len = arg(argc, argv, "seq-len", "256");
  const std::string steps = arg(argc, argv, "steps", "3");
  const std::string rank = arg(argc, argv, "rank", "16");
  const char* src = std::getenv("KAIZEN_SOURCE_DIR");
  const std::string ref = std::string(src ? src : KAIZEN_BENCH_SOURCE_DIR) + "/tools/ref/ref.py";
  std::string dir = arg(argc, argv, "dir", "");
  const bool keep = !dir.empty();
  if (dir.empty()) dir = (fs::temp_directory_path() / ("kaizen-train-bench-" + std::to_string(getpid()))).string();
  if (!fs::exists(fs::path(dir) / "model.safetensors")) {
    model::TinyModelSpec s = model::qwen3_0_6b_shape(std::stoll(layers));
    model::save_decoder(*model::make_random_decoder(s), dir);
  }
  const std::string common = " --batch-tokens " + batch_tokens + " --seq-len " + seq_len + " --steps " + steps +
                             " --rank " + rank + " --threads " + threads;
  json ours = json::parse(run("'" + std::string(argv[0]) + "' --child '" + dir + "'" + common));
  json theirs = json::parse(run("/usr/bin/python3 '" + ref + "' bench-train --model '" + dir + "'" + common));
  if (!keep) fs::remove_all(dir);
  std::printf("LoRA training, Qwen3-0.6B shape with %s layers (hidden 1024, tied 151936 vocab), fp32, rank %s on all 7 "
              "projections, %s tokens/step (rows of %s), %s threads, %s timed steps\n",
              layers.c_str(), rank.c_str(), batch_tokens.c_str(), seq_len.c_str(), threads.c_str(), steps.c_str());
  std::printf("  kaizen (C++)   %8.1f tokens/s   peak RSS %7.0f MiB\n", ours["tokens_per_s"].get<double>(),
              ours["peak_rss_mib"].get<double>());
  std::printf("  tools/ref (Py) %8.1f tokens/s   peak RSS %7.0f MiB\n", theirs["tokens_per_s"].get<double>(),
              theirs["peak_rss_mib"].get<double>());
  std::printf("  ratio: %.2fx tokens/s, %.2fx peak RSS (target >= 1.3x, <= 1.0x)\n",
              ours["tokens_per_s"].get<double>() / theirs["tokens_per_s"].get<double>(),
              ours["peak_rss_mib"].get<double>() / theirs["peak_rss_mib"].get<double>());
  std::printf("  first losses: C++ %.4f, Python %.4f (random ids: both ~ln V)\n", ours["losses"][0].get<double>(),
              theirs["losses"][0].get<double>());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_bench: %s\n", e.what());
  return 1;
}
