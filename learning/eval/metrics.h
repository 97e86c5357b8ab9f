// Learning metrics for the acceptance gate and the tests: how well a model (+ adapter)
// knows a set of answers.
//   answer-token accuracy: teacher-forced, the share of answer tokens (incl. end of turn)
//                          that are the argmax of the model's logits; plus their mean loss.
//   greedy exact match:    the model generates (greedy, non-thinking prompt as at
//                          inference) and the text must equal the expected answer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "learning/adapter/adapter.h"
#include "learning/model/decoder.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"

namespace kaizen::eval {

struct TokenAccuracy {
  int64_t correct = 0;
  int64_t total = 0;
  double loss = 0;  // mean cross entropy per answer token (nats)
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
};

// Teacher-forced accuracy over `examples` (length-bucketed batches of at most
// batch_tokens padded tokens). adapter nullptr = the base model. No gradients.
TokenAccuracy answer_token_accuracy(const model::Decoder& decoder, const adapter::Adapter* adapter,
                                    const std::vector<train::Example>& examples, int64_t batch_tokens = 4096);

struct ExactMatchItem {
  std::string expected;
  std::string generated;
  bool match = false;
};

struct ExactMatch {
  int64_t matched = 0;
  int64_t total = 0;
  std::vector<ExactMatchItem> items;  // in the order of the examples
  double rate() const { return total ? static_cast<double>(matched) / static_cast<double>(total) : 0.0; }
};

struct ExactMatchOptions {
  std::vector<int64_t> eos_token_ids;  // generation stops at these (e.g. ChatModel::eos_token_ids)
  int64_t extra_tokens = 8;            // budget beyond the expected answer's token count
  size_t max_batch = 16;               // examples generated together (batched decode steps)
};

// Greedy generation for each example's prompt (rendered with add_generation_prompt and,
// for Qwen3, enable_thinking=false, exactly as kaizen serves it) compared with its answer.
ExactMatch greedy_exact_match(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                              const text::ChatTemplate& chat_template, const adapter::Adapter* adapter,
                              const std::vector<train::Example>& examples, const ExactMatchOptions& options);

}  // namespace kaizen::eval
