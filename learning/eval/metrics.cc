#include "learning/eval/metrics.h"

#include <torch/torch.h>

#include "learning/generate/generator.h"
#include "learning/train/batch.h"
#include "learning/train/loss.h"

namespace kaizen::eval {

TokenAccuracy answer_token_accuracy(const model::Decoder& decoder, const adapter::Adapter* adapter,
                                    const std::vector<train::Example>& examples, int64_t batch_tokens) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& e : examples) lengths.push_back(e.length());
  TokenAccuracy acc;
  double loss_sum = 0;
  for (const auto& idx : train::bucket_by_length(lengths, batch_tokens, nullptr)) {
    std::vector<const train::Example*> rows;
    for (size_t i : idx) rows.push_back(&examples[i]);
    train::LossSums s = train::causal_lm_loss(decoder, adapter, train::make_batch(rows), {});
    acc.correct += s.correct;
    acc.total += s.targets;
    loss_sum += s.loss_sum;
  }
  acc.loss = acc.total ? loss_sum / static_cast<double>(acc.total) : 0.0;
  return acc;
}

ExactMatch greedy_exact_match(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                              const text::ChatTemplate& chat_template, const adapter::Adapter* adapter,
                              const std::vector<train::Example>& examples, const ExactMatchOptions& options) {
  c10::InferenceMode guard;
  ExactMatch out;
  text::ChatOptions co;
  co.add_generation_prompt = true;
  co.enable_thinking = false;
  std::vector<std::vector<int64_t>> prompts;
  std::vector<generate::GenerateOptions> budgets;
  for (const auto& ex : examples) {
    std::vector<int64_t> prompt;
    co.tools = ex.tools;
    for (int32_t id : tokenizer->encode(chat_template.render(ex.prompt, co), true)) prompt.push_back(id);
    prompts.push_back(std::move(prompt));
    generate::GenerateOptions go;
    go.eos_token_ids = options.eos_token_ids;
    go.max_new_tokens = static_cast<int64_t>(tokenizer->encode(ex.answer, true).size()) + options.extra_tokens;
    budgets.push_back(std::move(go));
  }
  if (examples.empty()) return out;
  auto results = generate::generate_many(decoder, tokenizer, prompts, adapter, budgets, options.max_batch);
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& ex = examples[i];
    const auto& r = results[i];
    ExactMatchItem item{ex.answer, r.text, r.text == ex.answer};
    out.matched += item.match;
    ++out.total;
    out.items.push_back(std::move(item));
  }
  return out;
}

}  // namespace kaizen::eval
