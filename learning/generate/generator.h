// The generation loop: prefill, then decode with the KV cache, one token per step(),
// with EOS ids, stop strings and a token budget. Step-wise so an engine can interleave
// many requests; generate() wraps it for one-shot use with a streaming callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "learning/adapter/adapter.h"
#include "learning/generate/sampler.h"
#include "learning/grammar/matcher.h"
#include "learning/model/decoder.h"
#include "learning/model/kv_cache.h"
#include "learning/text/tokenizer.h"

namespace kaizen::generate {

struct GenerateOptions {
  int64_t max_new_tokens = 256;        // token budget for the answer
  SamplingParams sampling;             // greedy by default
  std::vector<int64_t> eos_token_ids;  // generation ends after one of these (not in text)
  std::vector<std::string> stop;       // stop strings: text ends before the first match
  // -1: no logprobs; 0..20: each generated token's logprob and this many alternatives
  // (GenerateResult::logprobs; see sampler.h for which distribution).
  int top_logprobs = -1;
  // Constrained decoding: the answer is a sentence of `grammar` (an end-of-sequence id is
  // allowed only where the grammar may end), so a JSON answer parses whatever the model
  // prefers. The budget max_new_tokens is kept with room to finish the sentence whenever
  // the bytes still needed fit in the tokens left (the matcher counts a token per byte;
  // from the start for a budget >= the shortest sentence's bytes + 1): then the answer is
  // complete. Needs grammar_vocab, built once from this tokenizer (Vocab::from_tokenizer).
  std::shared_ptr<const grammar::Grammar> grammar;
  std::shared_ptr<const grammar::Vocab> grammar_vocab;
};

enum class FinishReason { kStop, kLength, kCancelled };
const char* finish_reason_name(FinishReason r);  // "stop" | "length" | "cancelled" (OpenAI names)

struct GenerateResult {
  std::vector<int64_t> ids;      // generated ids (EOS excluded)
  std::string text;              // decoded answer, cut at a stop string
  FinishReason finish = FinishReason::kLength;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;     // prompt tokens served from a prefix cache
  double prefill_ms = 0;         // time to first token
  double decode_ms = 0;          // the rest
  std::vector<TokenLogprob> logprobs;  // one per id, when options.top_logprobs >= 0
};

class Generation {
 public:
  // prefix (optional): a batch-1 cache holding the KV of prompt[0, prefix->length(0));
  // it is copied, so one cached prefix serves many requests. The caller guarantees it
  // was computed from those very tokens with the same adapter.
  Generation(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
             std::vector<int64_t> prompt, const adapter::Adapter* adapter, GenerateOptions options,
             const model::KVCache* prefix = nullptr);
  // Continues from a cache handed over whole (no copy): a batch-1 cache holding the KV
  // of prompt[0, reused.length(0)), made with this adapter, shorter than the prompt —
  // e.g. the cache an earlier turn of the same conversation left (take_cache()).
  Generation(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
             std::vector<int64_t> prompt, const adapter::Adapter* adapter, GenerateOptions options,
             model::KVCache&& reused);

  // Produces one token and returns the text that is now safe to stream (never part of a
  // stop string, never a partial UTF-8 sequence). While prefilling, a step feeds at most
  // max_prompt_tokens more prompt tokens (<= 0: all that remain) and returns "" until
  // the step that feeds the prompt's last token, which also samples the first answer
  // token: an engine prefills a long prompt in chunks between other chats' decode steps.
  std::string step(int64_t max_prompt_tokens = 0);
  bool done() const { return done_; }
  // Prompt tokens not yet fed: the next step() is (part of) the prefill.
  bool prefilling() const { return !prefilled_ && !done_; }
  // Prompt tokens in the cache (a prefix cache's included).
  int64_t prompt_cached() const { return prefilled_ ? static_cast<int64_t>(prompt_len_) : cache_.length(0); }
  // Prefilled and not done: the next step() is a single-token decode step, which
  // step_together() can batch with other generations' steps.
  bool decoding() const { return prefilled_ && !done_; }
  void cancel();

  // One decode step for several generations at once, with one batched forward
  // (Decoder::decode_step): returns each one's delta, as its own step() would. Every
  // generation must be decoding() and run on the same decoder. When the batched forward
  // throws, no generation has advanced: the caller may retry them one by one with step().
  static std::vector<std::string> step_together(const std::vector<Generation*>& batch);
  const GenerateResult& result() const { return result_; }
  // The cache after the last step (e.g. to keep a conversation's KV).
  const model::KVCache& cache() const { return cache_; }
  // Prompt + generated ids; the cache holds the KV of the first cache().length(0).
  const std::vector<int64_t>& tokens() const { return history_; }
  // Moves the cache out (for a later turn of the conversation); the generation must be
  // done and steps no more.
  model::KVCache take_cache();

 private:
  // Samples from the logits (V) of the last fed position and returns the new safe text.
  std::string accept(const torch::Tensor& logits);
  // The grammar's mask for the next token over V logits rows (EOS ids included where the
  // grammar may end), or nullptr when unconstrained.
  const uint32_t* constraint_mask(int64_t V);
  std::string finish(FinishReason reason);
  std::string take_safe_text(bool final);

  const model::Decoder& decoder_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  std::vector<int64_t> history_;  // prompt + generated, for the repetition penalty
  const adapter::Adapter* adapter_;
  GenerateOptions options_;
  Sampler sampler_;
  std::optional<grammar::Matcher> matcher_;
  std::vector<uint32_t> mask_;  // reused bitmask of the vocabulary (constrained decoding)
  text::StreamDecoder stream_;
  model::KVCache cache_;
  size_t prompt_len_;
  size_t stop_max_len_ = 0;
  std::string text_;       // all decoded text so far
  size_t emitted_ = 0;     // bytes of text_ handed out
  bool done_ = false;
  bool prefilled_ = false;
  int64_t next_token_ = -1;
  std::chrono::steady_clock::time_point start_;
  GenerateResult result_;
};

// One-shot generation. on_text (optional) receives each streamable delta and may
// return false to cancel.
GenerateResult generate(const model::Decoder& decoder,
                        std::shared_ptr<const text::Tokenizer> tokenizer,
                        const std::vector<int64_t>& prompt, const adapter::Adapter* adapter,
                        const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text = {},
                        const model::KVCache* prefix = nullptr);

// Generation for many prompts with one adapter, up to max_batch at a time: each prompt
// is prefilled on its own, then every running one advances with one batched forward per
// step (Generation::step_together), and a finished one's place goes to the next prompt.
// Results in prompt order, each what generate() gives for that prompt alone (batched
// GEMMs round differently in the last float bits, so a near-tie may rarely resolve
// otherwise). options: one per prompt, or one for all.
std::vector<GenerateResult> generate_many(const model::Decoder& decoder,
                                          std::shared_ptr<const text::Tokenizer> tokenizer,
                                          const std::vector<std::vector<int64_t>>& prompts,
                                          const adapter::Adapter* adapter,
                                          const std::vector<GenerateOptions>& options, size_t max_batch = 16);

}  // namespace kaizen::generate
