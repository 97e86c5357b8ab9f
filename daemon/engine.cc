#include "daemon/engine.h"

#include <algorithm>
#include <exception>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

namespace kaizen::daemon {

namespace {
std::shared_ptr<spdlog::logger> logger() {
  static auto l = [] {
    auto existing = spdlog::get("engine");
    return existing ? existing : spdlog::default_logger()->clone("engine");
  }();
  return l;
}
}  // namespace

Engine::Engine(std::shared_ptr<const generate::ChatModel> model, EngineOptions options)
    : model_(std::move(model)), options_(options) {
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
    if (stopping_ || queue_.size() >= options_.max_queue) return false;
    job->submitted = std::chrono::steady_clock::now();
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
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

std::shared_ptr<const model::KVCache> Engine::prefix_for(const EngineJob& job) {
  if (job.prefix_len == 0 || job.prefix_len >= job.prompt.size()) return nullptr;
  for (auto it = prefixes_.begin(); it != prefixes_.end(); ++it) {
    if (it->adapter_key == job.adapter_key && it->tokens.size() == job.prefix_len &&
        std::equal(it->tokens.begin(), it->tokens.end(), job.prompt.begin())) {
      prefixes_.splice(prefixes_.begin(), prefixes_, it);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.prefix_hits++;
      stats_.prefix_tokens_reused += job.prefix_len;
      return prefixes_.front().cache;
    }
  }
  Prefix p;
  p.adapter_key = job.adapter_key;
  p.tokens.assign(job.prompt.begin(), job.prompt.begin() + static_cast<int64_t>(job.prefix_len));
  auto cache = std::make_shared<model::KVCache>(
      model_->decoder->make_cache(1, static_cast<int64_t>(job.prefix_len)));
  {
    c10::InferenceMode guard;
    model_->decoder->forward(torch::tensor(p.tokens, torch::kInt64).view({1, -1}), cache.get(),
                             job.adapter.get(), model::LogitsFor::kLast);
  }
  p.cache = cache;
  prefixes_.push_front(std::move(p));
  while (prefixes_.size() > options_.prefix_cache_entries) prefixes_.pop_back();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.prefix_misses++;
  return cache;
}

bool Engine::step(Active& a) {
  EngineJob& job = *a.job;
  try {
    if (!a.generation) {
      auto prefix = prefix_for(job);
      a.generation = std::make_unique<generate::Generation>(
          *model_->decoder, model_->tokenizer, job.prompt, job.adapter.get(), job.options, prefix.get());
    }
    if (job.cancelled.load(std::memory_order_relaxed)) a.generation->cancel();
    std::string delta = a.generation->step();
    if (!delta.empty() && job.on_delta) job.on_delta(delta);
    if (!a.generation->done()) return true;
    const auto& r = a.generation->result();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.jobs_done++;
      const auto now = std::chrono::steady_clock::now();
      latencies_.push_back({now, std::chrono::duration<double, std::milli>(now - a.job->submitted).count()});
      if (latencies_.size() > kLatencyWindow) latencies_.pop_front();
      stats_.tokens_generated += r.ids.size();
      stats_.prompt_tokens += static_cast<uint64_t>(r.prompt_tokens);
    }
    if (job.on_done) job.on_done(r);
  } catch (const std::exception& e) {
    // A bad request must not take the engine down: report and drop this job only.
    logger()->error("event=job_failed error=\"{}\"", e.what());
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.jobs_failed++;
    }
    if (job.on_error) job.on_error(std::string("generation failed: ") + e.what());
  }
  return false;
}

void Engine::run() {
  std::vector<Active> active;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active.empty() || !drop_keys_.empty(); });
      if (stopping_) break;
      for (const auto& key : drop_keys_) {
        prefixes_.remove_if([&](const Prefix& p) { return p.adapter_key == key; });
      }
      drop_keys_.clear();
      while (active.size() < options_.max_active && !queue_.empty()) {
        active.push_back({std::move(queue_.front()), nullptr});
        queue_.pop_front();
      }
      active_count_ = active.size();
    }
    // One step for every active job, round-robin.
    for (size_t i = 0; i < active.size();) {
      if (step(active[i])) {
        ++i;
      } else {
        active.erase(active.begin() + static_cast<int64_t>(i));
      }
    }
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
