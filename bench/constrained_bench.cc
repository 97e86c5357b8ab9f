// What constrained decoding costs a decode step (issue: "masking adds <= 10% to the decode
// step"): Generation::step_together over B rows with the real Qwen3 tokenizer, on the
// Qwen3-0.6B shape (random weights, fp32) or the tiny demo model, unconstrained against
// constrained rows (json_object; a 10-property schema), measured in the same run. The
// constrained rows pay a grammar mask over the 151,936 logits each step (learning/grammar,
// bench/grammar_bench.cc has the mask alone) and the sampler's masking pass.
//
//   constrained_bench [--threads 2] [--layers 28 (0: the tiny demo model)] [--steps 24]
//                     [--batches 1,8] [--keep DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bench/bench_args.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/grammar/json_schema.h"
#include "learning/grammar/vocab.h"
#include "learning/model/loader.h"
#include "learning/model/threads.h"
#include "learning/model/tiny.h"

namespace {

using kaizen::bench::arg;
using Clock = std::chrono::steady_clock;
namespace gen = kaizen::generate;

const char* kSchema10 = R"({"type": "object", "properties": {
  "name": {"type": "string"}, "sku": {"type": "string", "maxLength": 16}, "price": {"type": "number"},
  "stock": {"type": "integer"}, "active": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}},
  "color": {"enum": ["red", "green", "blue"]}, "weight": {"type": "number"}, "notes": {"type": ["string", "null"]},
  "origin": {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}},
  "required": ["name", "sku", "price", "stock", "active", "tags", "color", "weight", "notes", "origin"],
  "additionalProperties": false})";

// Median milliseconds of a step_together over `rows` generations, `grammar` applied to
// the rows with constrained[i] set, over `steps` steps. A row whose answer ends (the
// grammar complete, EOS) is replaced by a fresh one, prefilled outside the timing, so
// every timed step has all `rows` rows.
double median_step_ms(const gen::ChatModel& m, int64_t rows, const std::vector<bool>& constrained,
                      std::shared_ptr<const kaizen::grammar::Grammar> grammar,
                      std::shared_ptr<const kaizen::grammar::Vocab> vocab, int64_t steps) {
  int64_t started = 0;
  auto fresh = [&](int64_t i) {
    gen::GenerateOptions o;
    o.max_new_tokens = 4 * steps + 8;
    o.eos_token_ids = m.eos_token_ids;
    o.sampling.temperature = 0.8;
    o.sampling.seed = static_cast<uint64_t>(started++);
    if (constrained[static_cast<size_t>(i)]) {
      o.grammar = grammar;
      o.grammar_vocab = vocab;
    }
    auto ids = m.encode_chat({{"user", "Describe product " + std::to_string(started) + " as JSON."}},
                             kaizen::text::ChatOptions{true, false});
    auto g = std::make_unique<gen::Generation>(*m.decoder, m.tokenizer, ids, nullptr, o);
    g->step();  // the prefill (not timed)
    return g;
  };
  std::vector<std::unique_ptr<gen::Generation>> gs;
  for (int64_t i = 0; i < rows; ++i) gs.push_back(fresh(i));
  std::vector<double> ms;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<gen::Generation*> batch;
    for (int64_t i = 0; i < rows; ++i) {
      while (!gs[static_cast<size_t>(i)]->decoding()) gs[static_cast<size_t>(i)] = fresh(i);
      batch.push_back(gs[static_cast<size_t>(i)].get());
    }
    const auto t0 = Clock::now();
    gen::Generation::step_together(batch);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const int threads = std::stoi(arg(argc, argv, "threads", "2"));
  const int64_t layers = std::stoll(arg(argc, argv, "layers", "28"));
  const int64_t steps = std::stoll(arg(argc, argv, "steps", "24"));
  const std::vector<int64_t> batches = kaizen::bench::arg_ints(argc, argv, "batches", "1,8");
  const auto compute = kaizen::model::set_compute_threads(threads);
  const std::string tokenizer_dir = arg(argc, argv, "tokenizer-dir", KAIZEN_BENCH_TOKENIZER_DIR);

  std::string dir = arg(argc, argv, "keep", "");
  const bool temp = dir.empty();
  if (temp) dir = (fs::temp_directory_path() / ("kaizen-constrained-bench-" + std::to_string(getpid()))).string();
  if (!fs::exists(fs::path(dir) / "model.safetensors")) {
    kaizen::model::TinyModelSpec spec = layers > 0 ? kaizen::model::qwen3_0_6b_shape(layers) : kaizen::model::TinyModelSpec{};
    std::fprintf(stderr, "writing %s to %s ...\n", layers > 0 ? "a Qwen3-0.6B-shaped model" : "the tiny demo model",
                 dir.c_str());
    kaizen::model::write_tiny_model(spec, dir, tokenizer_dir);
  }
  const auto m = gen::ChatModel::load(dir, {"cpu", "float32"});
  const auto vocab_t0 = Clock::now();
  const auto vocab = kaizen::grammar::Vocab::from_tokenizer(*m.tokenizer);
  const double vocab_ms = std::chrono::duration<double, std::milli>(Clock::now() - vocab_t0).count();
  const auto object = kaizen::grammar::json_object_grammar();
  const auto schema = kaizen::grammar::json_schema_grammar(nlohmann::ordered_json::parse(kSchema10));

  std::printf("constrained decode step, %s, %s, vocab %d tokens (grammar vocab built in %.0f ms)\n",
              layers > 0 ? "Qwen3-0.6B shape" : "tiny demo model", compute.describe().c_str(), m.tokenizer->vocab_size(),
              vocab_ms);
  std::printf("%-6s %-22s %14s %14s %10s\n", "rows", "constrained rows", "free step ms", "step ms", "ratio");
  for (int64_t B : batches) {
    const std::vector<bool> none(static_cast<size_t>(B), false);
    std::vector<bool> half(static_cast<size_t>(B), false), all(static_cast<size_t>(B), true);
    for (int64_t i = 0; i < B; i += 2) half[static_cast<size_t>(i)] = true;
    struct Case {
      const char* name;
      std::shared_ptr<const kaizen::grammar::Grammar> g;
      const std::vector<bool>* rows;
    };
    std::vector<Case> cases = {{"json_object, all", object, &all}, {"10-prop schema, all", schema, &all}};
    if (B > 1) cases.push_back({"json_object, half", object, &half});
    for (const Case& c : cases) {
      const double free_ms = median_step_ms(m, B, none, nullptr, nullptr, steps);
      const double ms = median_step_ms(m, B, *c.rows, c.g, vocab, steps);
      std::printf("%-6lld %-22s %14.2f %14.2f %9.3fx\n", (long long)B, c.name, free_ms, ms, free_ms > 0 ? ms / free_ms : 0.0);
    }
  }
  if (temp) fs::remove_all(dir);
  return 0;
}
