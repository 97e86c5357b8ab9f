// kaizenctl model make-tiny | info | logits, generate, chat: offline commands that run
// the model in-process (no daemon needed).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "daemon/ctl/command.h"
#include "daemon/ctl/flags.h"
#include "daemon/ctl/online_commands.h"
#include "learning/adapter/peft.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/model/loader.h"
#include "learning/model/safetensors.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"

#ifndef KAIZEN_DEFAULT_TOKENIZER_DIR
#define KAIZEN_DEFAULT_TOKENIZER_DIR ""
#endif

namespace kaizen::ctl {
namespace {

using nlohmann::json;

void set_threads(const Flags& f) {
  const int64_t n = f.get_int("threads", std::max(1u, std::thread::hardware_concurrency()));
  if (n < 1) throw FlagError("--threads must be >= 1");
  model::set_compute_threads(static_cast<int>(n));
}

std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0) throw FlagError("--ids: not a token id: '" + item + "'");
    ids.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

// --adapter DIR: a PEFT adapter checked against the loaded model; nullptr without the flag.
std::shared_ptr<adapter::Adapter> load_adapter_flag(const Flags& f, const model::Decoder& d) {
  if (!f.has("adapter")) return nullptr;
  adapter::PeftLoadOptions o{d.options().device, d.options().dtype};
  return adapter::load_peft_adapter(f.get("adapter"), d.config(), o);
}

model::LoadOptions load_options(const Flags& f) {
  model::LoadOptions o;
  o.device = f.get("device", "auto");
  o.dtype = f.get("dtype", "auto");
  return o;
}

int make_tiny(const std::vector<std::string>& args) {
  Flags f(args, {"out", "arch", "seed", "layers", "hidden", "heads", "kv-heads", "head-dim",
                 "intermediate", "vocab", "tokenizer-dir", "embed-std", "layer-std", "head-std"},
          {"tied"});
  if (f.help()) {
    std::puts("kaizenctl model make-tiny --out DIR [--arch qwen3|qwen2|llama] [--seed N] [--layers 2]\n"
              "  [--hidden 64] [--heads 4] [--kv-heads 2] [--head-dim 16] [--intermediate 128]\n"
              "  [--tied] [--embed-std 1] [--layer-std 0.1] [--head-std 0.3] [--tokenizer-dir DIR]");
    return kExitOk;
  }
  model::TinyModelSpec s;
  const std::string arch = f.get("arch", "qwen3");
  if (arch == "qwen3") s.arch = model::Arch::kQwen3;
  else if (arch == "qwen2") s.arch = model::Arch::kQwen2;
  else if (arch == "llama") s.arch = model::Arch::kLlama;
  else throw FlagError("--arch must be qwen3, qwen2 or llama");
  s.seed = static_cast<uint64_t>(f.get_int("seed", 0));
  s.num_layers = f.get_int("layers", s.num_layers);
  s.hidden_size = f.get_int("hidden", s.hidden_size);
  s.num_heads = f.get_int("heads", s.num_heads);
  s.num_kv_heads = f.get_int("kv-heads", s.num_kv_heads);
  s.head_dim = f.get_int("head-dim", s.head_dim);
  s.intermediate_size = f.get_int("intermediate", s.intermediate_size);
  s.vocab_size = f.get_int("vocab", s.vocab_size);
  s.tie_word_embeddings = f.has("tied");
  s.embed_std = f.get_double("embed-std", s.embed_std);
  s.layer_std = f.get_double("layer-std", s.layer_std);
  s.head_std = f.get_double("head-std", s.head_std);
  std::string tok_dir = f.get("tokenizer-dir", "");
  if (tok_dir.empty()) {
    const char* env = std::getenv("KAIZEN_QWEN3_TOKENIZER_DIR");
    tok_dir = env && *env ? env : KAIZEN_DEFAULT_TOKENIZER_DIR;
  }
  const std::string out = f.require("out");
  model::write_tiny_model(s, out, tok_dir);
  if (f.json()) {
    std::cout << json{{"out", out}, {"arch", arch}, {"seed", s.seed}}.dump() << "\n";
  } else {
    std::printf("wrote %s model (hidden %lld, %lld layers, seed %llu) to %s\n", arch.c_str(),
                static_cast<long long>(s.hidden_size), static_cast<long long>(s.num_layers),
                static_cast<unsigned long long>(s.seed), out.c_str());
  }
  return kExitOk;
}

int info(const std::vector<std::string>& args) {
  Flags f(args, {"model"});
  const std::string dir = f.require("model");
  auto c = model::ModelConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  auto ckpt = model::SafetensorsCheckpoint::open(dir);
  int64_t params = 0;
  for (const auto& n : ckpt.names()) {
    int64_t k = 1;
    for (int64_t d : ckpt.info(n).shape) k *= d;
    params += k;
  }
  json j = c.to_json();
  j["parameters"] = params;
  j["tensors"] = ckpt.names().size();
  if (f.json()) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%s (%s)\n  layers %lld, hidden %lld, intermediate %lld, heads %lld/%lld kv, head_dim %lld\n"
              "  vocab %lld, tied %s, rope_theta %g, parameters %.1fM in %zu tensors\n",
              c.architecture.c_str(), dir.c_str(), (long long)c.num_hidden_layers,
              (long long)c.hidden_size, (long long)c.intermediate_size, (long long)c.num_attention_heads,
              (long long)c.num_key_value_heads, (long long)c.head_dim, (long long)c.vocab_size,
              c.tie_word_embeddings ? "yes" : "no", c.rope_theta, params / 1e6, ckpt.names().size());
  return kExitOk;
}

int logits(const std::vector<std::string>& args) {
  Flags f(args, {"model", "ids", "out", "threads", "device", "dtype", "adapter"});
  set_threads(f);
  const std::string dir = f.require("model");
  std::vector<int64_t> ids = parse_ids(f.require("ids"));
  const std::string out = f.require("out");
  auto decoder = model::load_decoder(dir, load_options(f));
  for (int64_t id : ids) {
    if (id >= decoder->config().vocab_size) {
      throw FlagError("--ids: id " + std::to_string(id) + " is beyond the vocabulary (" +
                      std::to_string(decoder->config().vocab_size) + ")");
    }
  }
  auto lora = load_adapter_flag(f, *decoder);
  c10::InferenceMode guard;
  torch::Tensor x = torch::tensor(ids, torch::kInt64).view({1, -1});
  torch::Tensor y = decoder->forward(x, nullptr, lora.get(), model::LogitsFor::kAll)[0];  // (T, V)
  model::save_safetensors(out, {{"logits", y.to(torch::kCPU, torch::kFloat).contiguous()}});
  return kExitOk;
}

int model_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help") {
    std::puts("kaizenctl model make-tiny|info|logits ... (--help on each)");
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "make-tiny") return make_tiny(rest);
  if (args[0] == "info") return info(rest);
  if (args[0] == "logits") return logits(rest);
  std::fprintf(stderr, "kaizenctl model: unknown subcommand '%s'\n", args[0].c_str());
  return kExitUsage;
}

generate::GenerateOptions generate_options(const Flags& f, const generate::ChatModel& m) {
  generate::GenerateOptions o;
  o.max_new_tokens = f.get_int("max-tokens", 256);
  o.sampling.temperature = f.get_double("temperature", 0.0);
  o.sampling.top_k = f.get_int("top-k", 0);
  o.sampling.top_p = f.get_double("top-p", 1.0);
  o.sampling.min_p = f.get_double("min-p", 0.0);
  o.sampling.repetition_penalty = f.get_double("repetition-penalty", 1.0);
  if (f.has("seed")) o.sampling.seed = static_cast<uint64_t>(f.get_int("seed", 0));
  o.eos_token_ids = m.eos_token_ids;
  if (f.has("stop")) o.stop = {f.get("stop")};
  return o;
}

const std::set<std::string> kGenerateFlags = {"model", "prompt", "system", "max-tokens", "temperature",
                                              "top-k", "top-p", "min-p", "repetition-penalty", "seed",
                                              "stop", "threads", "device", "dtype", "adapter", "template"};

int generate_command(const std::vector<std::string>& args) {
  Flags f(args, kGenerateFlags, {"ids", "think", "raw"});
  if (f.help()) {
    std::puts("kaizenctl generate --model DIR --prompt TEXT [--system S] [--max-tokens N]\n"
              "  [--temperature 0] [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R]\n"
              "  [--seed N] [--stop S] [--think] [--raw] [--ids] [--adapter DIR] [--json]");
    return kExitOk;
  }
  set_threads(f);
  auto m = generate::ChatModel::load(f.require("model"), load_options(f), f.get("template"));
  const std::string prompt = f.require("prompt");
  std::vector<int64_t> ids;
  if (f.has("raw")) {
    ids = m.encode(prompt);
  } else {
    std::vector<text::ChatMessage> msgs;
    if (f.has("system")) msgs.push_back({"system", f.get("system")});
    msgs.push_back({"user", prompt});
    text::ChatOptions co;
    co.enable_thinking = f.has("think");
    ids = m.encode_chat(msgs, co);
  }
  auto opts = generate_options(f, m);
  auto lora = load_adapter_flag(f, *m.decoder);
  const bool stream = !f.json() && !f.has("ids");
  auto r = generate::generate(*m.decoder, m.tokenizer, ids, lora.get(), opts, [&](std::string_view d) {
    if (stream) {
      std::fwrite(d.data(), 1, d.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (f.json()) {
    std::cout << json{{"text", r.text}, {"ids", r.ids}, {"finish_reason", generate::finish_reason_name(r.finish)},
                      {"prompt_tokens", r.prompt_tokens}, {"prefill_ms", r.prefill_ms}, {"decode_ms", r.decode_ms}}
                     .dump()
              << "\n";
  } else if (f.has("ids")) {
    std::cout << json(r.ids).dump() << "\n";
  } else {
    std::puts("");
  }
  return kExitOk;
}

int chat_command(const std::vector<std::string>& args) {
  // Without --model the REPL talks to the running kaizend (online_chat.cc).
  if (std::none_of(args.begin(), args.end(),
                   [](const std::string& a) { return a == "--model" || a.rfind("--model=", 0) == 0; })) {
    return online_chat(args);
  }
  Flags f(args, kGenerateFlags, {"think"});
  if (f.help() || !f.has("model")) {
    std::puts("kaizenctl chat --model DIR [--adapter DIR] [--system S] [--temperature T] ...   (offline, in-process)\n"
              "  type a message and Enter; /reset starts over; Ctrl-D quits");
    return f.help() ? kExitOk : kExitUsage;
  }
  set_threads(f);
  auto m = generate::ChatModel::load(f.require("model"), load_options(f), f.get("template"));
  std::vector<text::ChatMessage> history;
  if (f.has("system")) history.push_back({"system", f.get("system")});
  const size_t base = history.size();
  auto opts = generate_options(f, m);
  auto lora = load_adapter_flag(f, *m.decoder);
  std::string line;
  while (true) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/reset") {
      history.resize(base);
      continue;
    }
    history.push_back({"user", line});
    text::ChatOptions co;
    co.enable_thinking = f.has("think");
    auto r = generate::generate(*m.decoder, m.tokenizer, m.encode_chat(history, co), lora.get(), opts,
                                [](std::string_view d) {
                                  std::fwrite(d.data(), 1, d.size(), stdout);
                                  std::fflush(stdout);
                                  return true;
                                });
    std::puts("");
    history.push_back({"assistant", r.text});
  }
  std::puts("");
  return kExitOk;
}

}  // namespace

KAIZEN_CTL_COMMAND("model", "make-tiny | info | logits: model files and one forward pass", model_command);
KAIZEN_CTL_COMMAND("generate", "generate an answer in-process (no daemon)", generate_command);
KAIZEN_CTL_COMMAND("chat", "interactive streaming chat in-process (no daemon)", chat_command);

}  // namespace kaizen::ctl
