#include "daemon/serve/engine.h"
#include "daemon/log.h"

#include <algorithm>
#include <exception>
#include <iterator>
#include <limits>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

namespace kaizen::daemon {

namespace {
std::shared_ptr<spdlog::logger> engine_log() {
  static const auto l = layer_logger("engine");
  return l;
}
}  // namespace

Engine::Engine(std::shared_ptr<const generate::ChatModel> model, EngineOptions options)
    : model_(std::move(model)),
      options_(std::move(options)),
      prefixes_(static_cast<int64_t>(options_.prefix_cache_entries)),
      conversations_(options_.conversation_cache_bytes, [](const Conversation& c) { return c.bytes; }) {
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::submit(std::shared_ptr<EngineJob> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= max_queue()) return false;
    job->submitted = std::chrono::steady_clock::now();
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool Engine::submit_all(const std::vector<std::shared_ptr<EngineJob>>& jobs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= max_queue()) return false;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& job : jobs) {
      job->submitted = now;
      queue_.push_back(job);
    }
  }
  cv_.notify_one();
  return true;
}

size_t Engine::max_active() const {
  return options_.limits ? static_cast<size_t>(options_.limits->max_active()) : options_.max_active;
}

size_t Engine::max_queue() const {
  // At least one: the admission gate in front has already counted the chat as admitted.
  return options_.limits ? static_cast<size_t>(std::max<int64_t>(1, options_.limits->max_queued()))
                         : options_.max_queue;
}

size_t Engine::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t Engine::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_count_;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::vector<double> Engine::latencies_since(std::chrono::steady_clock::time_point since) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> out;
  for (const auto& l : latencies_) {
    if (l.finished >= since) out.push_back(l.ms);
  }
  return out;
}

void Engine::drop_prefixes(const std::string& adapter_key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    drop_keys_.push_back(adapter_key);
  }
  cv_.notify_one();
}

namespace {
// A job whose leading prefix_len tokens may come from (or go to) the prefix cache.
bool uses_prefix(const EngineJob& job) { return job.prefix_len > 0 && job.prefix_len < job.prompt.size(); }

// The job's prefix is the n tokens at `tokens`, computed with `adapter_key`.
bool prefix_is(const EngineJob& job, const std::string& adapter_key, std::vector<int64_t>::const_iterator tokens,
               size_t n) {
  return job.adapter_key == adapter_key && job.prefix_len == n &&
         std::equal(tokens, tokens + static_cast<int64_t>(n), job.prompt.begin());
}
}  // namespace

bool Engine::same_prefix(const EngineJob& a, const EngineJob& b) {
  return uses_prefix(a) && uses_prefix(b) && prefix_is(b, a.adapter_key, a.prompt.begin(), a.prefix_len);
}

std::shared_ptr<const model::KVCache> Engine::cached_prefix(const EngineJob& job) {
  Prefix* p =
      prefixes_.use_if([&](const Prefix& c) { return prefix_is(job, c.adapter_key, c.tokens.begin(), c.tokens.size()); });
  if (!p) return nullptr;
  std::shared_ptr<const model::KVCache> cache = p->cache;
  if (p->uses_left > 0 && --p->uses_left == 0) prefixes_.erase(prefixes_.begin());  // use_if moved it to the front
  std::lock_guard<std::mutex> lock(mu_);
  stats_.prefix_hits++;
  stats_.prefix_tokens_reused += job.prefix_len;
  return cache;
}

std::shared_ptr<const model::KVCache> Engine::shorter_prefix(const EngineJob& job) {
  const Prefix* best = nullptr;
  for (const Prefix& c : prefixes_) {
    if (c.adapter_key != job.adapter_key || c.tokens.size() >= job.prefix_len) continue;
    if (best && c.tokens.size() <= best->tokens.size()) continue;
    if (std::equal(c.tokens.begin(), c.tokens.end(), job.prompt.begin())) best = &c;
  }
  if (!best) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  stats_.prefix_tokens_reused += best->tokens.size();
  return best->cache;
}

bool Engine::continue_conversation(Active& a) {
  const EngineJob& job = *a.job;
  auto best = conversations_.end();
  size_t best_len = 0;
  for (auto it = conversations_.begin(); it != conversations_.end(); ++it) {
    if (it->adapter_key != job.adapter_key) continue;
    const size_t n = std::min(it->tokens.size(), job.prompt.size() - 1);  // >= 1 token left to feed
    const size_t common =
        static_cast<size_t>(std::mismatch(it->tokens.begin(), it->tokens.begin() + static_cast<int64_t>(n),
                                          job.prompt.begin()).first - it->tokens.begin());
    if (common > best_len) {
      best = it;
      best_len = common;
    }
  }
  const size_t baseline = uses_prefix(job) ? job.prefix_len : 0;
  if (best == conversations_.end() || best_len < baseline + kMinReuseGain) return false;
  // The next turn of that chat takes its KV whole; a chat that only shares the start
  // (another branch of it) gets a copy of the shared part and leaves it for its owner.
  const bool take = 2 * best_len >= best->tokens.size();
  model::KVCache cache = take ? std::move(best->cache) : best->cache.slice(0, static_cast<int64_t>(best_len));
  if (take) {
    conversations_.erase(best);
    cache.truncate(0, static_cast<int64_t>(best_len));
  } else {
    conversations_.touch(best);
  }
  a.generation = std::make_unique<generate::Generation>(*model_->decoder, model_->tokenizer, job.prompt,
                                                        job.adapter.get(), job.options, std::move(cache));
  std::lock_guard<std::mutex> lock(mu_);
  stats_.conversation_hits++;
  stats_.conversation_tokens_reused += best_len;
  stats_.conversation_cache_bytes = conversations_.weight();
  return true;
}

void Engine::keep_conversation(Active& a) {
  generate::Generation& g = *a.generation;
  const int64_t len = g.cache().length(0);
  const int64_t bytes = g.cache().bytes();
  if (len < static_cast<int64_t>(kMinReuseGain) || bytes > options_.conversation_cache_bytes) return;
  conversations_.push(Conversation{a.job->adapter_key,
                                   std::vector<int64_t>(g.tokens().begin(), g.tokens().begin() + len),
                                   g.take_cache(), bytes});
  std::lock_guard<std::mutex> lock(mu_);
  stats_.conversation_cache_bytes = conversations_.weight();
}

bool Engine::start(Active& a, const std::vector<Active>& active) {
  const EngineJob& job = *a.job;
  if (job.cancelled.load(std::memory_order_relaxed)) {  // ends at once: no cache worth finding
    a.generation = std::make_unique<generate::Generation>(*model_->decoder, model_->tokenizer, job.prompt,
                                                          job.adapter.get(), job.options);
    return true;
  }
  if (continue_conversation(a)) return true;
  std::shared_ptr<const model::KVCache> prefix;
  if (uses_prefix(job)) {
    prefix = cached_prefix(job);
    if (!prefix) {
      for (const Active& other : active) {
        if (&other != &a && other.fills_prefix && same_prefix(*other.job, job)) return false;  // wait for it
      }
      a.fills_prefix = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.prefix_misses++;
      }
      prefix = shorter_prefix(job);
    }
  }
  a.generation = std::make_unique<generate::Generation>(*model_->decoder, model_->tokenizer, job.prompt,
                                                        job.adapter.get(), job.options, prefix.get());
  return true;
}

void Engine::step_alone(Active& a, int64_t max_prompt_tokens) {
  EngineJob& job = *a.job;
  try {
    generate::Generation& g = *a.generation;
    if (job.cancelled.load(std::memory_order_relaxed)) g.cancel();
    const bool prefilling = g.prefilling();
    const int64_t prefix_len = static_cast<int64_t>(job.prefix_len);
    if (prefilling && a.fills_prefix) {  // end this chunk at the prefix's last token
      const int64_t left = prefix_len - g.prompt_cached();
      if (max_prompt_tokens <= 0 || max_prompt_tokens > left) max_prompt_tokens = left;
    }
    std::string delta = g.step(max_prompt_tokens);
    if (prefilling) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.prefill_chunks++;
    }
    if (a.fills_prefix && g.prompt_cached() >= prefix_len) {
      a.fills_prefix = false;
      Prefix p;
      p.adapter_key = job.adapter_key;
      p.tokens.assign(job.prompt.begin(), job.prompt.begin() + prefix_len);
      p.cache = std::make_shared<model::KVCache>(g.cache().slice(0, prefix_len));
      if (job.prefix_uses > 1) p.uses_left = job.prefix_uses - 1;  // this job was the first use
      if (job.prefix_uses != 1) prefixes_.push(std::move(p));
    }
    deliver(a, delta);
  } catch (const std::exception& e) {
    fail(a, e);
  }
}

void Engine::step_together(const std::vector<Active*>& batch) {
  std::vector<generate::Generation*> gens;
  for (Active* a : batch) gens.push_back(a->generation.get());
  std::vector<std::string> deltas;
  try {
    deltas = generate::Generation::step_together(gens);
  } catch (const std::exception& e) {
    // Nothing advanced: step each job alone, so only a job that fails by itself fails.
    engine_log()->warn("event=batch_step_failed rows={} error=\"{}\"", batch.size(), e.what());
    for (Active* a : batch) step_alone(*a);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.decode_forwards++;
    stats_.decode_rows += batch.size();
  }
  for (size_t i = 0; i < batch.size(); ++i) deliver(*batch[i], deltas[i]);
}

void Engine::deliver(Active& a, const std::string& delta) {
  EngineJob& job = *a.job;
  try {
    const auto& lps = a.generation->result().logprobs;
    if (lps.size() > a.logprobs_sent && job.on_logprobs) {
      job.on_logprobs(std::vector<generate::TokenLogprob>(lps.begin() + static_cast<int64_t>(a.logprobs_sent), lps.end()));
    }
    a.logprobs_sent = lps.size();
    if (!delta.empty() && job.on_delta) job.on_delta(delta);
    if (!a.generation->done()) return;
    a.ended = true;
    const auto& r = a.generation->result();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.jobs_done++;
      const auto now = std::chrono::steady_clock::now();
      latencies_.push_back({now, std::chrono::duration<double, std::milli>(now - job.submitted).count()});
      if (latencies_.size() > kLatencyWindow) latencies_.pop_front();
      stats_.tokens_generated += r.ids.size();
      stats_.prompt_tokens += static_cast<uint64_t>(r.prompt_tokens);
    }
    if (job.on_done) job.on_done(r);
    if (options_.conversation_cache_bytes > 0) keep_conversation(a);
  } catch (const std::exception& e) {
    if (!a.ended) fail(a, e);
  }
}

void Engine::fail(Active& a, const std::exception& e) {
  // A bad request must not take the engine down: report and drop this job only.
  a.ended = true;
  engine_log()->error("event=job_failed error=\"{}\"", e.what());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.jobs_failed++;
  }
  if (a.job->on_error) a.job->on_error(std::string("generation failed: ") + e.what());
}

void Engine::run() {
  std::vector<Active> active;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active.empty() || !drop_keys_.empty(); });
      if (stopping_) break;
      for (const auto& key : drop_keys_) {
        prefixes_.erase_if([&](const Prefix& p) { return p.adapter_key == key; });
        conversations_.erase_if([&](const Conversation& c) { return c.adapter_key == key; });
        stats_.conversation_cache_bytes = conversations_.weight();
      }
      drop_keys_.clear();
      const size_t limit = max_active();
      while (active.size() < limit && !queue_.empty()) {
        active.push_back({std::move(queue_.front()), nullptr});
        queue_.pop_front();
      }
      active_count_ = active.size();
    }
    // Prefilling jobs, oldest first, share this turn's prompt-token budget (a chunk is
    // one forward over part of the job's own prompt); cancelled jobs end alone; every
    // job that was decoding gets one token, batched.
    // With no chat decoding there is no stream to keep going: prompts go in whole.
    auto decodes = [](const Active& a) {
      return a.generation && a.generation->decoding() && !a.job->cancelled.load(std::memory_order_relaxed);
    };
    std::vector<Active*> decoding;
    int64_t budget = options_.prefill_chunk > 0 && std::any_of(active.begin(), active.end(), decodes)
                         ? static_cast<int64_t>(options_.prefill_chunk)
                         : std::numeric_limits<int64_t>::max();
    for (Active& a : active) {
      if (!a.generation) {
        try {
          if (!start(a, active)) continue;  // another job is computing its prefix
        } catch (const std::exception& e) {
          fail(a, e);
          continue;
        }
      }
      if (decodes(a)) {
        decoding.push_back(&a);
      } else if (a.job->cancelled.load(std::memory_order_relaxed) || a.generation->done()) {
        step_alone(a);
      } else {
        while (budget > 0 && !a.ended && a.generation->prefilling()) {
          const int64_t before = a.generation->prompt_cached();
          step_alone(a, budget);
          const int64_t fed = a.generation->prompt_cached() - before;
          if (fed <= 0) break;
          budget -= fed;
        }
      }
    }
    const size_t max_batch = std::max<size_t>(1, options_.max_batch);
    for (size_t i = 0; i < decoding.size(); i += max_batch) {
      std::vector<Active*> batch(decoding.begin() + static_cast<int64_t>(i),
                                 decoding.begin() + static_cast<int64_t>(std::min(decoding.size(), i + max_batch)));
      step_together(batch);
    }
    active.erase(std::remove_if(active.begin(), active.end(), [](const Active& a) { return a.ended; }),
                 active.end());
    std::lock_guard<std::mutex> lock(mu_);
    active_count_ = active.size();
  }
  // Shutting down: everything not finished gets an error, exactly once.
  std::deque<std::shared_ptr<EngineJob>> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued.swap(queue_);
    active_count_ = 0;
  }
  for (auto& a : active) {
    if (a.job->on_error) a.job->on_error("kaizend is shutting down");
  }
  for (auto& j : queued) {
    if (j->on_error) j->on_error("kaizend is shutting down");
  }
}

}  // namespace kaizen::daemon
