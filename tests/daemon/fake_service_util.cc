#include "fake_service.h"

#include <sstream>

namespace kaizen::daemon::testing {

FakeService::FakeService(Options options)
    : options_(options), ready_(options.ready), engine_([this] { engine_loop(); }) {}

FakeService::~FakeService() { shutdown(); }

void FakeService::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  engine_.join();
  std::deque<std::unique_ptr<Job>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(jobs_);
  }
  for (auto& j : left) j->events.on_error(Error::Unavailable("fake engine stopped"));
}

std::vector<std::string> FakeService::answer_tokens(const ChatRequest& r) {
  std::string last;
  for (const auto& m : r.messages)
    if (m.role == "user") last = m.content;
  std::vector<std::string> out = {"Echo:"};
  if (last.find("__long__") != std::string::npos) {
    for (int i = 0; i < 400; ++i) out.push_back(" w" + std::to_string(i));
    return out;
  }
  std::istringstream in(last);
  std::string w;
  while (in >> w) out.push_back(" " + w);
  return out;
}

Result<ChatTicket> FakeService::submit_chat(ChatRequest request, ChatEvents events) {
  if (!ready_) return Error::Unavailable("fake engine is loading", 5);
  bool known = false;
  for (const auto& m : list_models()) known |= m.id == request.model;
  if (!known) return Error::ModelNotFound(request.model);
  auto job = std::make_unique<Job>();
  job->tokens = answer_tokens(request);
  job->cancelled = std::make_shared<std::atomic<bool>>(false);
  ChatTicket t;
  t.model = request.model;
  t.created = 1700000000;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_request_ = request;
    if (stopping_) return Error::Unavailable("fake engine stopped");
    if (jobs_.size() >= options_.max_pending)
      return Error::TooManyRequests("fake engine queue is full", 3);
    job->id = "msg_" + std::to_string(next_id_++);
    message_ids_.insert(job->id);
    t.id = job->id;
    job->request = std::move(request);
    job->events = std::move(events);
    t.cancel = [c = job->cancelled] { c->store(true); };
    jobs_.push_back(std::move(job));
    int64_t n = static_cast<int64_t>(jobs_.size());
    if (n > max_concurrent_) max_concurrent_ = n;
  }
  chats_started_.fetch_add(1);
  cv_.notify_all();
  return t;
}

// Every tick emits one token for every running job, as a batching engine would.
void FakeService::engine_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    std::deque<std::unique_ptr<Job>> batch;
    batch.swap(jobs_);
    lock.unlock();
    std::deque<std::unique_ptr<Job>> keep;
    for (auto& j : batch) {
      const ChatRequest& r = j->request;
      ChatResult done;
      done.usage.prompt_tokens = 0;
      for (const auto& m : r.messages) {
        std::istringstream in(m.content);
        std::string w;
        while (in >> w) ++done.usage.prompt_tokens;
      }
      if (j->cancelled->load()) {
        chats_cancelled_.fetch_add(1);
        done.finish_reasons = {"cancelled"};
        done.usage.completion_tokens = static_cast<int64_t>(j->next);
        j->events.on_done(done);
        continue;
      }
      bool has_error = false;
      for (const auto& m : r.messages) has_error |= m.content.find("__error__") != std::string::npos;
      if (has_error && j->next == 1) {
        j->events.on_error(Error::Internal("the fake engine failed on purpose"));
        continue;
      }
      if (j->next >= j->tokens.size() || static_cast<int64_t>(j->next) >= r.max_tokens) {
        done.finish_reasons = {j->next >= j->tokens.size() ? "stop" : "length"};
        done.usage.completion_tokens = static_cast<int64_t>(j->next);
        j->events.on_done(done);
        continue;
      }
      std::string piece = j->tokens[j->next++];
      std::string candidate = j->produced + piece;
      bool stopped = false;
      for (const auto& s : r.stop) {
        size_t at = candidate.find(s);
        if (at != std::string::npos) {
          piece = candidate.substr(j->produced.size(), at > j->produced.size() ? at - j->produced.size() : 0);
          stopped = true;
        }
      }
      if (!piece.empty()) j->events.on_delta(ChoiceDelta{0, piece, {}, {}});
      j->produced += piece;
      if (stopped) {
        done.finish_reasons = {"stop"};
        done.usage.completion_tokens = static_cast<int64_t>(j->next);
        j->events.on_done(done);
        continue;
      }
      keep.push_back(std::move(j));
    }
    std::this_thread::sleep_for(options_.token_delay);
    lock.lock();
    for (auto& j : keep) jobs_.push_front(std::move(j));
  }
}

std::vector<ModelEntry> FakeService::list_models() {
  return {{"base", 1700000000, "kaizen"},
          {"kaizen", 1700000000, "kaizen"},
          {"kaizen@v1", 1700000001, "kaizen"},
          {"kaizen@v2", 1700000002, "kaizen"}};
}

Result<FeedbackAck> FakeService::submit_feedback(FeedbackRequest request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!message_ids_.count(request.message_id))
    return Error::NotFound("no message with id '" + request.message_id + "'", "message_not_found");
  feedback_.push_back(request);
  return FeedbackAck{"fb_" + std::to_string(feedback_.size()),
                     request.correction ? "queued_for_review" : "recorded"};
}

Health FakeService::health() {
  return Health{ready_.load(), "fake", {}};
}

std::string FakeService::metrics_text() {
  return "# TYPE kaizen_fake_chats_total counter\nkaizen_fake_chats_total " +
         std::to_string(chats_started_.load()) + "\n";
}

Result<nlohmann::json> FakeService::admin(const std::string& /*method*/, const std::string& op,
                                          const nlohmann::json& args, const PeerInfo& peer) {
  if (op == "status")
    return nlohmann::json{{"ok", true}, {"chats", chats_started_.load()}};
  if (op == "echo")
    return nlohmann::json{{"args", args}, {"uid", peer.uid}, {"gid", peer.gid}, {"pid", peer.pid}};
  return Error::NotFound("unknown admin operation '" + op + "'", "unknown_op");
}

ChatRequest FakeService::last_request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_request_;
}

std::vector<FeedbackRequest> FakeService::feedback() const {
  std::lock_guard<std::mutex> lock(mu_);
  return feedback_;
}

}  // namespace kaizen::daemon::testing
