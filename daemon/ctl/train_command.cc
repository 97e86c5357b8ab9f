// kaizenctl train: offline LoRA training of a model directory on an OpenAI chat JSONL
// file, written as a PEFT adapter directory. Progress (step, loss, tokens/s, ETA) goes to
// stderr; --metrics FILE keeps one JSON line per optimizer step.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "daemon/ctl/command.h"
#include "daemon/ctl/flags.h"
#include "daemon/ctl/online_commands.h"
#include "learning/adapter/peft.h"
#include "learning/eval/metrics.h"
#include "learning/generate/chat_model.h"
#include "learning/model/threads.h"
#include "learning/train/dataset.h"
#include "learning/train/trainer.h"

namespace kaizen::ctl {
namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "kaizenctl train --model DIR --data FILE.jsonl --out ADAPTER_DIR\n"
    "  [--rank 16] [--alpha 2*rank] [--rslora] [--targets all|attn|mlp|q_proj,v_proj,...]\n"
    "  [--epochs N] [--max-steps N] [--lr LR] [--lr-b-ratio R] [--schedule cosine|constant]\n"
    "  [--warmup-ratio 0.03] [--weight-decay 0] [--clip 1] [--batch-tokens N] [--grad-accum 1]\n"
    "  [--max-len 2048] [--seed 0] [--init-from ADAPTER_DIR] [--strict] [--metrics FILE]\n"
    "  [--eval] [--threads N] [--device cpu|cuda] [--dtype ...] [--quiet] [--json]\n"
    "Defaults depend on the model: real checkpoints lr 2e-4, 3 epochs, batch 4096 tokens;\n"
    "the randomly initialised demo model (hidden < 256) rank 32, lr 1e-2, LoRA+ 4, 60 epochs.\n"
    "--eval reports answer-token accuracy and greedy exact match on the training data.";

std::string fmt_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

int train_command(const std::vector<std::string>& args) {
  // `train now|status|cancel` drive the daemon's learner; everything else trains offline.
  if (!args.empty() && (args[0] == "now" || args[0] == "status" || args[0] == "cancel")) {
    return online_train(args);
  }
  Flags f(args,
          {"model", "data", "out", "rank", "alpha", "targets", "epochs", "max-steps", "lr", "lr-b-ratio",
           "schedule", "warmup-ratio", "weight-decay", "clip", "batch-tokens", "grad-accum", "max-len", "seed",
           "init-from", "metrics", "threads", "device", "dtype", "template"},
          {"strict", "eval", "quiet", "rslora"});
  if (f.help()) {
    std::puts(kUsage);
    return kExitOk;
  }
  if (!f.has("model") || !f.has("data") || !f.has("out")) {
    std::fprintf(stderr, "%s\n", kUsage);
    throw FlagError("--model, --data and --out are required");
  }
  const int64_t threads = f.get_int("threads", std::max(1u, std::thread::hardware_concurrency()));
  if (threads < 1) throw FlagError("--threads must be >= 1");
  model::set_compute_threads(static_cast<int>(threads));

  model::LoadOptions lo;
  lo.device = f.get("device", "auto");
  lo.dtype = f.get("dtype", "auto");
  auto m = generate::ChatModel::load(f.require("model"), lo, f.get("template"));
  train::TrainOptions o = train::TrainOptions::for_model(m.decoder->config());
  o.rank = f.get_int("rank", o.rank);
  o.alpha = f.has("rank") ? f.get_double("alpha", 2.0 * static_cast<double>(o.rank)) : f.get_double("alpha", o.alpha);
  o.use_rslora = f.has("rslora");
  if (f.has("targets")) o.targets = adapter::parse_targets(f.get("targets"));
  o.epochs = f.get_int("epochs", o.epochs);
  o.max_steps = f.get_int("max-steps", o.max_steps);
  o.lr = f.get_double("lr", o.lr);
  o.lr_b_ratio = f.get_double("lr-b-ratio", o.lr_b_ratio);
  const std::string schedule = f.get("schedule", "cosine");
  if (schedule == "cosine") o.schedule = train::LrSchedule::kCosine;
  else if (schedule == "constant") o.schedule = train::LrSchedule::kConstant;
  else throw FlagError("--schedule must be cosine or constant");
  o.warmup_ratio = f.get_double("warmup-ratio", o.warmup_ratio);
  o.weight_decay = f.get_double("weight-decay", o.weight_decay);
  o.clip = f.get_double("clip", o.clip);
  o.batch_tokens = f.get_int("batch-tokens", o.batch_tokens);
  o.grad_accum = f.get_int("grad-accum", o.grad_accum);
  o.seed = static_cast<uint64_t>(f.get_int("seed", 0));
  o.metrics_path = f.get("metrics", "");
  if (f.has("init-from")) {
    adapter::PeftLoadOptions where{m.decoder->options().device, m.decoder->options().dtype};
    o.init_from = adapter::load_peft_adapter(f.get("init-from"), m.decoder->config(), where);
  }

  train::DatasetOptions dso;
  dso.max_len = f.get_int("max-len", dso.max_len);
  dso.strict = f.has("strict");
  train::Dataset ds = train::load_chat_jsonl(f.require("data"), *m.tokenizer, *m.chat_template, dso);
  for (const auto& bad : ds.bad_lines) {
    std::fprintf(stderr, "warning: %s line %lld skipped: %s\n", f.get("data").c_str(),
                 static_cast<long long>(bad.line), bad.reason.c_str());
  }
  if (ds.truncated) {
    std::fprintf(stderr, "warning: %lld example(s) truncated to --max-len %lld tokens (%lld left without answer, dropped)\n",
                 static_cast<long long>(ds.truncated), static_cast<long long>(dso.max_len),
                 static_cast<long long>(ds.dropped_empty));
  }
  const bool quiet = f.has("quiet");
  train::Trainer trainer(m.decoder, o);
  if (!quiet) {
    std::fprintf(stderr,
                 "training %zu examples (%lld tokens, %lld answer tokens) for %lld steps: rank %lld alpha %g "
                 "lr %g (B x%g) batch %lld tokens\n",
                 ds.examples.size(), static_cast<long long>(ds.tokens()), static_cast<long long>(ds.target_tokens()),
                 static_cast<long long>(trainer.planned_steps(ds.examples)),
                 static_cast<long long>(o.init_from ? o.init_from->rank() : o.rank),
                 o.init_from ? o.init_from->alpha() : o.alpha, o.lr, o.lr_b_ratio,
                 static_cast<long long>(o.batch_tokens));
  }
  auto last_print = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  train::TrainResult r = trainer.train(ds.examples, [&](const train::TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!quiet && (p.step == p.total_steps || p.step == 1 || now - last_print >= std::chrono::seconds(2))) {
      last_print = now;
      std::fprintf(stderr, "step %lld/%lld epoch %lld loss %.4f lr %.3g grad %.3f %.0f tok/s eta %s\n",
                   static_cast<long long>(p.step), static_cast<long long>(p.total_steps),
                   static_cast<long long>(p.epoch + 1), p.loss, p.lr, p.grad_norm, p.tokens_per_s,
                   fmt_duration(p.eta_s).c_str());
    }
    return true;
  });
  r.adapter->base_model_name_or_path = std::filesystem::absolute(f.get("model")).string();
  adapter::save_peft_adapter(*r.adapter, f.get("out"));

  json out = {{"out", f.get("out")},
              {"examples", ds.examples.size()},
              {"bad_lines", ds.bad_lines.size()},
              {"truncated", ds.truncated},
              {"steps", r.steps},
              {"final_loss", r.step_losses.empty() ? 0.0 : r.step_losses.back()},
              {"seconds", r.seconds},
              {"tokens_per_s", r.tokens_per_s},
              {"padding", r.padded_tokens ? 1.0 - static_cast<double>(r.tokens) / static_cast<double>(r.padded_tokens) : 0.0}};
  if (f.has("eval")) {
    auto acc = eval::answer_token_accuracy(*m.decoder, r.adapter.get(), ds.examples);
    eval::ExactMatchOptions eo;
    eo.eos_token_ids = m.eos_token_ids;
    auto em = eval::greedy_exact_match(*m.decoder, m.tokenizer, *m.chat_template, r.adapter.get(), ds.examples, eo);
    out["answer_token_accuracy"] = acc.accuracy();
    out["answer_loss"] = acc.loss;
    out["exact_match"] = em.rate();
  }
  if (f.json()) {
    std::cout << out.dump() << "\n";
  } else {
    std::printf("wrote %s: %lld steps in %s, final loss %.4f, %.0f tokens/s\n", f.get("out").c_str(),
                static_cast<long long>(r.steps), fmt_duration(r.seconds).c_str(), out["final_loss"].get<double>(),
                r.tokens_per_s);
    if (f.has("eval")) {
      std::printf("answer-token accuracy %.1f%%, greedy exact match %.1f%%\n",
                  100 * out["answer_token_accuracy"].get<double>(), 100 * out["exact_match"].get<double>());
    }
  }
  return kExitOk;
}

}  // namespace

KAIZEN_CTL_COMMAND("train", "now|status|cancel: the daemon's learner; or offline: train a LoRA adapter on chat JSONL", train_command);

}  // namespace kaizen::ctl
