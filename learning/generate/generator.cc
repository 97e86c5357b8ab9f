#include "learning/generate/generator.h"

#include <algorithm>
#include <stdexcept>

#include <torch/torch.h>

namespace kaizen::generate {

namespace {
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "?";
}

namespace {
// A generation's own cache: a copy of the shared prefix, or an empty one with room for
// the prompt and a first stretch of answer.
model::KVCache starting_cache(const model::Decoder& decoder, size_t prompt_size, const model::KVCache* prefix) {
  if (!prefix) return decoder.make_cache(1, static_cast<int64_t>(prompt_size) + 64);
  if (prefix->batch() != 1) throw std::invalid_argument("generate: a cached prefix must be batch 1");
  return prefix->slice(0, prefix->length(0));
}
}  // namespace

Generation::Generation(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                       std::vector<int64_t> prompt, const adapter::Adapter* adapter,
                       GenerateOptions options, const model::KVCache* prefix)
    : Generation(decoder, std::move(tokenizer), prompt, adapter, std::move(options),
                 starting_cache(decoder, prompt.size(), prefix)) {}

Generation::Generation(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                       std::vector<int64_t> prompt, const adapter::Adapter* adapter,
                       GenerateOptions options, model::KVCache&& reused)
    : decoder_(decoder),
      tokenizer_(tokenizer),
      history_(std::move(prompt)),
      adapter_(adapter),
      options_(std::move(options)),
      sampler_(options_.sampling),
      stream_(tokenizer, /*skip_special=*/true),
      cache_(std::move(reused)),
      prompt_len_(history_.size()) {
  if (history_.empty()) throw std::invalid_argument("generate: empty prompt");
  if (cache_.batch() != 1 || cache_.num_layers() != decoder.config().num_hidden_layers ||
      static_cast<size_t>(cache_.length(0)) >= history_.size()) {
    throw std::invalid_argument("generate: a cached prefix must be batch 1, of this model, and shorter than the prompt");
  }
  for (const auto& s : options_.stop) stop_max_len_ = std::max(stop_max_len_, s.size());
  if (options_.grammar) {
    if (!options_.grammar_vocab) throw std::invalid_argument("generate: a grammar needs grammar_vocab");
    matcher_.emplace(options_.grammar, options_.grammar_vocab);
  }
  result_.prompt_tokens = static_cast<int64_t>(prompt_len_);
  result_.cached_tokens = cache_.length(0);
  start_ = std::chrono::steady_clock::now();
  if (options_.max_new_tokens <= 0) finish(FinishReason::kLength);
}

model::KVCache Generation::take_cache() {
  if (!done_) throw std::logic_error("Generation::take_cache: the generation is still running");
  return std::move(cache_);
}

void Generation::cancel() {
  if (!done_) finish(FinishReason::kCancelled);
}

std::string Generation::finish(FinishReason reason) {
  done_ = true;
  result_.finish = reason;
  text_ += stream_.flush();
  std::string out = take_safe_text(/*final=*/true);
  result_.text = text_;
  const double total = ms_since(start_);
  result_.decode_ms = total - result_.prefill_ms;
  return out;
}

// Returns the new text not yet handed out, holding back a tail that could still turn
// into a stop string; on a stop-string match, cuts the text there and finishes.
std::string Generation::take_safe_text(bool final) {
  if (!options_.stop.empty()) {
    const size_t from = emitted_ >= stop_max_len_ ? emitted_ - stop_max_len_ + 1 : 0;
    size_t cut = std::string::npos;
    for (const auto& s : options_.stop) {
      if (s.empty()) continue;
      size_t p = text_.find(s, from);
      if (p != std::string::npos) cut = std::min(cut, p);
    }
    if (cut != std::string::npos) {
      text_.resize(std::max(cut, emitted_));
      std::string out = text_.substr(emitted_);
      emitted_ = text_.size();
      if (!done_) {
        done_ = true;
        result_.finish = FinishReason::kStop;
        result_.text = text_;
        result_.decode_ms = ms_since(start_) - result_.prefill_ms;
      }
      return out;
    }
  }
  size_t safe = text_.size();
  if (!final) {
    for (const auto& s : options_.stop) {  // longest suffix of text_ that prefixes s
      for (size_t n = std::min(s.size() - 1, text_.size() - emitted_); n > 0; --n) {
        if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
          safe = std::min(safe, text_.size() - n);
          break;
        }
      }
    }
  }
  std::string out = text_.substr(emitted_, safe - emitted_);
  emitted_ = safe;
  return out;
}

std::string Generation::step(int64_t max_prompt_tokens) {
  if (done_) return "";
  c10::InferenceMode guard;
  torch::Tensor logits;  // (1, V)
  if (!prefilled_) {
    const int64_t cached = cache_.length(0);
    int64_t n = static_cast<int64_t>(prompt_len_) - cached;
    if (max_prompt_tokens > 0) n = std::min(n, max_prompt_tokens);
    torch::Tensor ids = torch::tensor(std::vector<int64_t>(history_.begin() + cached, history_.begin() + cached + n),
                                      torch::kInt64)
                            .view({1, -1});
    if (cached + n < static_cast<int64_t>(prompt_len_)) {
      decoder_.hidden_states(ids, &cache_, adapter_);  // a chunk: only the cache matters
      return "";
    }
    logits = decoder_.forward(ids, &cache_, adapter_, model::LogitsFor::kLast);
    prefilled_ = true;
  } else {
    torch::Tensor ids = torch::tensor({next_token_}, torch::kInt64).view({1, 1});
    logits = decoder_.forward(ids, &cache_, adapter_, model::LogitsFor::kLast);
  }
  return accept(logits[0]);
}

std::vector<std::string> Generation::step_together(const std::vector<Generation*>& batch) {
  std::vector<int64_t> ids;
  std::vector<model::KVCache*> caches;
  std::vector<const adapter::Adapter*> adapters;
  for (Generation* g : batch) {
    if (!g->decoding()) throw std::invalid_argument("step_together: a generation is not decoding");
    if (&g->decoder_ != &batch.front()->decoder_) {
      throw std::invalid_argument("step_together: generations of different decoders");
    }
    ids.push_back(g->next_token_);
    caches.push_back(&g->cache_);
    adapters.push_back(g->adapter_);
  }
  c10::InferenceMode guard;
  torch::Tensor logits = batch.front()->decoder_.decode_step(ids, caches, adapters);  // (B, V)
  std::vector<std::string> deltas;
  deltas.reserve(batch.size());
  for (size_t b = 0; b < batch.size(); ++b) deltas.push_back(batch[b]->accept(logits[static_cast<int64_t>(b)]));
  return deltas;
}

const uint32_t* Generation::constraint_mask(int64_t V) {
  if (!matcher_) return nullptr;
  mask_.assign(static_cast<size_t>((V + 31) / 32), 0u);
  int64_t left = options_.max_new_tokens - static_cast<int64_t>(result_.ids.size());
  // The budget is kept exactly (the answer complete when it runs out) from the moment that
  // is possible: the matcher counts one token per byte still needed. Before that, as for a
  // long forced literal such as a tool call's syntax under a short max_tokens, the answer
  // may be cut like an unconstrained one.
  if (static_cast<int64_t>(matcher_->min_bytes_to_finish()) + 1 > left) left = 0;
  if (!matcher_->must_finish()) {
    if (options_.grammar_vocab->size() > V) throw std::invalid_argument("generate: grammar vocab exceeds the logits");
    matcher_->fill_mask(mask_.data(), left);
  }
  if (matcher_->can_finish()) {
    for (int64_t e : options_.eos_token_ids) {
      if (e >= 0 && e < V) mask_[static_cast<size_t>(e >> 5)] |= 1u << (e & 31);
    }
  }
  return mask_.data();
}

std::string Generation::accept(const torch::Tensor& logits) {
  // A complete sentence that nothing may follow, and no end-of-sequence id to say so: the
  // answer ends here.
  if (matcher_ && matcher_->must_finish() && options_.eos_token_ids.empty()) return finish(FinishReason::kStop);
  TokenLogprob lp;
  const bool want_lp = options_.top_logprobs >= 0;
  const int64_t id = sampler_.sample(logits, history_, constraint_mask(logits.numel()), want_lp ? &lp : nullptr,
                                     options_.top_logprobs);
  if (result_.ids.empty()) result_.prefill_ms = ms_since(start_);
  const bool eos = std::find(options_.eos_token_ids.begin(), options_.eos_token_ids.end(), id) !=
                   options_.eos_token_ids.end();
  if (eos) return finish(FinishReason::kStop);
  if (matcher_ && !matcher_->accept_token(static_cast<int32_t>(id))) {
    throw std::logic_error("generate: the sampled token " + std::to_string(id) + " breaks the grammar");
  }
  history_.push_back(id);
  result_.ids.push_back(id);
  if (want_lp) result_.logprobs.push_back(std::move(lp));
  next_token_ = id;
  // Padded vocabularies (Qwen3: 151936 rows, 151669 tokens) have rows no text maps to.
  if (id < tokenizer_->vocab_size()) text_ += stream_.push(static_cast<int32_t>(id));
  std::string out = take_safe_text(/*final=*/false);
  if (done_) return out;  // a stop string matched
  if (static_cast<int64_t>(result_.ids.size()) >= options_.max_new_tokens) {
    return out + finish(FinishReason::kLength);
  }
  return out;
}

GenerateResult generate(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                        const std::vector<int64_t>& prompt, const adapter::Adapter* adapter,
                        const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text,
                        const model::KVCache* prefix) {
  Generation g(decoder, std::move(tokenizer), prompt, adapter, options, prefix);
  while (!g.done()) {
    std::string delta = g.step();
    if (on_text && !delta.empty() && !on_text(delta)) g.cancel();
  }
  return g.result();
}

std::vector<GenerateResult> generate_many(const model::Decoder& decoder,
                                          std::shared_ptr<const text::Tokenizer> tokenizer,
                                          const std::vector<std::vector<int64_t>>& prompts,
                                          const adapter::Adapter* adapter,
                                          const std::vector<GenerateOptions>& options, size_t max_batch) {
  if (options.size() != 1 && options.size() != prompts.size()) {
    throw std::invalid_argument("generate_many: give one GenerateOptions, or one per prompt");
  }
  max_batch = std::max<size_t>(1, max_batch);
  std::vector<GenerateResult> results(prompts.size());
  std::vector<std::pair<size_t, std::unique_ptr<Generation>>> running;
  size_t next = 0;
  while (next < prompts.size() || !running.empty()) {
    while (running.size() < max_batch && next < prompts.size()) {
      auto g = std::make_unique<Generation>(decoder, tokenizer, prompts[next], adapter,
                                            options.size() == 1 ? options[0] : options[next]);
      g->step();  // the prefill
      running.emplace_back(next++, std::move(g));
    }
    std::vector<Generation*> batch;
    for (auto& r : running) {
      if (r.second->decoding()) batch.push_back(r.second.get());
    }
    if (!batch.empty()) Generation::step_together(batch);
    for (auto it = running.begin(); it != running.end();) {
      if (it->second->done()) {
        results[it->first] = it->second->result();
        it = running.erase(it);
      } else {
        ++it;
      }
    }
  }
  return results;
}

}  // namespace kaizen::generate
