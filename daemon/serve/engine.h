// The engine: one thread that owns generation on the device (docs/DESIGN.md decision 7,
// §Request path step 7).
// Asio threads submit jobs; the engine runs up to max_active jobs at once. Each turn it
// feeds up to prefill_chunk prompt tokens of the jobs still prefilling (oldest first;
// all of them when no job is decoding), then advances every decoding job by one token
// with batched forwards of up to max_batch rows (continuous batching: jobs join and
// leave the batch between steps, each with its own adapter and KV cache). So one long
// answer does not starve the others, concurrent chats share the cost of reading the
// weights, and a long prompt does not freeze the other chats' streams while it is
// prefilled: they keep getting a token per turn (chunked prefill).
// It keeps an LRU cache of prefix KV (the system message) per adapter version. The
// first job with a new prefix computes it as part of its own prefill (a chunk ends at
// the prefix's last token and the cache is kept from there); jobs with the same prefix
// that arrive meanwhile wait for it instead of computing it again.
// And it keeps the KV of finished chats (conversation_cache_bytes, LRU): a chat client
// sends the whole conversation every turn, so the next turn's prompt starts with the
// last one's prompt and answer, and only what is new gets prefilled (the longest common
// prefix with any kept chat of the same adapter, when it beats the system prefix by
// kMinReuseGain tokens).
//
// Thread-safety: submit(), waiting(), active(), stats() and drop_prefixes() may be
// called from any thread. Job callbacks run on the engine thread, one job's callbacks
// never concurrently, and exactly one of on_done / on_error is called last.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/serve/chat_admission.h"
#include "daemon/serve/lru.h"
#include "learning/adapter/adapter.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"

namespace kaizen::daemon {

struct EngineOptions {
  size_t max_queue = 64;             // jobs waiting to start; submit() refuses beyond it
  size_t max_active = 8;             // jobs being generated at the same time
  // When set, max_active and max_queue come from here at every turn instead (kaizend:
  // the limits the HTTP admission gate reads too, so a SIGHUP reload reaches both).
  std::shared_ptr<const ChatLimits> limits;
  size_t max_batch = 8;              // decode rows per batched forward; 1 = one job per forward
  size_t prefill_chunk = 0;          // prompt tokens fed per turn while others decode; 0 = no limit
  size_t prefix_cache_entries = 16;  // cached prefixes (LRU over all adapter versions)
  // Bytes of finished chats' KV kept for their next turn (LRU); 0 = none kept.
  int64_t conversation_cache_bytes = 0;
};

struct EngineJob {
  std::vector<int64_t> prompt;
  // Leading prompt tokens that many requests share (the system message): their KV is
  // computed once per adapter version and reused. 0 = no prefix caching.
  size_t prefix_len = 0;
  // > 0: the cached prefix is forgotten after this many jobs used it, the one computing
  // it included (the n answers of one request share all but the prompt's last token
  // this way, without crowding the system prefixes out of the cache). 0 = kept (LRU).
  int prefix_uses = 0;
  // The adapter this job generates with, held for the job's whole life (RCU: a swap
  // never changes a job mid-answer). nullptr = base model.
  std::shared_ptr<const adapter::Adapter> adapter;
  std::string adapter_key;  // names the adapter's contents for the prefix cache: "base", "v7"
  generate::GenerateOptions options;
  std::function<void(std::string_view delta)> on_delta;
  // With options.top_logprobs >= 0: the logprobs of the tokens a step generated, called
  // just before that step's on_delta (also when the step's text is held back).
  std::function<void(const std::vector<generate::TokenLogprob>& logprobs)> on_logprobs;
  std::function<void(const generate::GenerateResult& result)> on_done;
  std::function<void(const std::string& message)> on_error;
  std::atomic<bool> cancelled{false};  // set from any thread; honoured before the next step
  std::chrono::steady_clock::time_point submitted{};  // set by Engine::submit
};

// One finished chat: when it finished and how long it took from submit.
struct JobLatency {
  std::chrono::steady_clock::time_point finished;
  double ms = 0;
};

struct EngineStats {
  uint64_t jobs_done = 0;
  uint64_t jobs_failed = 0;
  uint64_t tokens_generated = 0;
  uint64_t prompt_tokens = 0;
  uint64_t prefix_hits = 0;
  uint64_t prefix_misses = 0;
  uint64_t prefix_tokens_reused = 0;
  uint64_t decode_forwards = 0;  // decode forwards run (one per batch)
  uint64_t decode_rows = 0;      // tokens those forwards produced (rows / forwards = mean batch)
  uint64_t prefill_chunks = 0;   // prefill forwards (a prompt fed in n chunks counts n)
  uint64_t conversation_hits = 0;           // prompts that continued an earlier chat's KV
  uint64_t conversation_tokens_reused = 0;  // prompt tokens those did not prefill
  int64_t conversation_cache_bytes = 0;     // KV held for later turns now
};

class Engine {
 public:
  Engine(std::shared_ptr<const generate::ChatModel> model, EngineOptions options);
  // Stops the thread; jobs still queued or active get on_error("shutting down").
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // false when the queue is full (the caller answers 429) or the engine is stopping.
  bool submit(std::shared_ptr<EngineJob> job);
  // Queues all of `jobs` or none (the n answers of one request): false as submit().
  bool submit_all(const std::vector<std::shared_ptr<EngineJob>>& jobs);
  size_t waiting() const;  // queued, not started
  size_t active() const;   // being decoded
  bool busy() const { return waiting() + active() > 0; }
  EngineStats stats() const;
  // Latencies (submit -> last token) of the chats finished at or after `since`, from the
  // last kLatencyWindow finished chats (the learner reports chat p50/p99 during a run).
  std::vector<double> latencies_since(std::chrono::steady_clock::time_point since) const;
  static constexpr size_t kLatencyWindow = 4096;
  // Forgets the cached prefixes and kept conversations computed with `adapter_key`
  // (after a swap/rollback).
  void drop_prefixes(const std::string& adapter_key);
  const generate::ChatModel& model() const { return *model_; }

 private:
  struct Active {
    std::shared_ptr<EngineJob> job;
    std::unique_ptr<generate::Generation> generation;
    size_t logprobs_sent = 0;   // entries of the result's logprobs handed to on_logprobs
    bool ended = false;         // on_done or on_error has been called
    bool fills_prefix = false;  // its prefill stores job.prefix_len tokens' KV as a prefix
  };
  struct Prefix {
    std::string adapter_key;
    std::vector<int64_t> tokens;
    std::shared_ptr<const model::KVCache> cache;
    int uses_left = -1;  // > 0: forgotten after this many more hits (EngineJob::prefix_uses)
  };
  struct Conversation {  // a finished chat's KV: cache holds tokens' KV
    std::string adapter_key;
    std::vector<int64_t> tokens;
    model::KVCache cache;
    int64_t bytes = 0;
  };
  static constexpr size_t kMinReuseGain = 32;

  void run();
  // Starts a job's generation: with a cached prefix, computing the prefix itself, or
  // (false) not yet, while another active job computes the same prefix.
  bool start(Active& a, const std::vector<Active>& active);
  // One step of one job on its own: a prefill chunk of at most max_prompt_tokens
  // (0 = the whole rest), a cancellation, or a decode step after a failed batch.
  void step_alone(Active& a, int64_t max_prompt_tokens = 0);
  // One decode step for every job in `batch` (all decoding) with one forward.
  void step_together(const std::vector<Active*>& batch);
  // Hands a step's text to the job, and its result once it is done.
  void deliver(Active& a, const std::string& delta);
  void fail(Active& a, const std::exception& e);
  // The cached prefix KV for the job's first prefix_len tokens, or nullptr.
  std::shared_ptr<const model::KVCache> cached_prefix(const EngineJob& job);
  // The longest cached prefix shorter than the job's prefix_len that its prompt starts
  // with (a job computing a long shared prefix starts from the system prefix), or nullptr.
  std::shared_ptr<const model::KVCache> shorter_prefix(const EngineJob& job);
  static bool same_prefix(const EngineJob& a, const EngineJob& b);
  // Starts the job on the KV of the kept chat sharing the longest prompt prefix with it,
  // when that saves kMinReuseGain tokens over the system prefix; false otherwise.
  bool continue_conversation(Active& a);
  // Keeps a finished job's KV for the conversation's next turn.
  void keep_conversation(Active& a);
  size_t max_active() const;
  size_t max_queue() const;

  std::shared_ptr<const generate::ChatModel> model_;
  EngineOptions options_;

  mutable std::mutex mu_;  // guards queue_, stopping_, active_count_, stats_, drop_keys_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<EngineJob>> queue_;
  std::vector<std::string> drop_keys_;
  bool stopping_ = false;
  size_t active_count_ = 0;
  EngineStats stats_;
  std::deque<JobLatency> latencies_;

  Lru<Prefix> prefixes_;              // engine thread only; prefix_cache_entries entries
  Lru<Conversation> conversations_;   // engine thread only; conversation_cache_bytes bytes
  std::thread thread_;
};

}  // namespace kaizen::daemon
