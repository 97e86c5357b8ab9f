#include "daemon/http/chat_exchange.h"

#include <spdlog/spdlog.h>

#include "daemon/http/openai_json.h"
#include "daemon/log.h"

namespace kaizen::daemon {

void ChatExchange::start(const std::string& body, std::shared_ptr<const Config> config) {
  cfg_ = std::move(config);
  Result<ChatRequest> parsed = parse_chat_request(body, cfg_->limits);
  if (!parsed.ok()) return conn_.send_reply(error_reply(parsed.error()));
  chat_ = std::move(parsed.value());
  chat_.peer = peer_;
  std::shared_ptr<ChatConnection> conn = conn_.shared();
  ChatGate::Admit admit =
      state_.gate.admit([conn, this] { conn->post([this] { on_slot(); }); }, &gate_ticket_);
  if (admit == ChatGate::Admit::kRejected) {
    return conn_.send_reply(error_reply(Error::TooManyRequests(
        "kaizend is busy: " + std::to_string(cfg_->limits.max_queued_chats) +
            " chats are already waiting; retry later",
        static_cast<int>(cfg_->limits.retry_after_s))));
  }
  phase_ = Phase::kQueued;
  conn_.watch_disconnect([this] { client_gone(); });
}

void ChatExchange::reset() {
  phase_ = Phase::kNone;
  content_.clear();
  sse_.reset();
}

void ChatExchange::on_slot() {
  if (phase_ == Phase::kGone) return release_slot();  // left after the slot was granted
  std::shared_ptr<ChatConnection> conn = conn_.shared();
  ChatEvents ev;
  ev.on_delta = [conn, this](std::string_view d) {
    conn->post([this, s = std::string(d)] { on_delta(s); });
  };
  ev.on_done = [conn, this](ChatResult r) { conn->post([this, r = std::move(r)] { on_done(r); }); };
  ev.on_error = [conn, this](Error e) { conn->post([this, e = std::move(e)] { on_error(e); }); };
  std::optional<Result<ChatTicket>> t;
  try {
    t.emplace(state_.service.submit_chat(chat_, std::move(ev)));
  } catch (const std::exception& e) {
    logger()->error("event=submit_chat_threw error=\"{}\"", e.what());
    t.emplace(Error::Internal(std::string("the chat engine failed: ") + e.what()));
  }
  if (!t->ok()) {
    phase_ = Phase::kAnswered;
    release_slot();
    return conn_.send_reply(error_reply(t->error()));
  }
  ticket_ = std::move(t->value());
  phase_ = Phase::kRunning;
  if (!chat_.stream) return;
  sse_.emplace(sse_role_chunk(ticket_));
  conn_.write_stream_header([this](bool ok) { on_written(ok); });
}

void ChatExchange::on_delta(const std::string& s) {
  if (phase_ != Phase::kRunning) return;
  if (!sse_) {
    content_ += s;
    return;
  }
  sse_->append(sse_content_chunk(ticket_, s));
  flush();
}

bool ChatExchange::engine_finished() {
  if (phase_ != Phase::kRunning && phase_ != Phase::kCancelling) return false;
  const bool gone = phase_ == Phase::kCancelling;
  phase_ = gone ? Phase::kGone : Phase::kAnswered;
  // Nothing left to cancel: from here a vanished client fails a write instead. Stopping
  // now, not after the answer is written, keeps a client that reads everything and hangs
  // up at once from being counted as gone.
  conn_.stop_watch();
  release_slot();
  return !gone;
}

void ChatExchange::on_done(const ChatResult& r) {
  if (!engine_finished()) return;
  if (!sse_) return conn_.send_reply(Reply{200, completion_body(ticket_, content_, r)});
  std::string tail = sse_finish_chunk(ticket_, r.finish_reason);
  if (chat_.include_usage) tail += sse_usage_chunk(ticket_, r.usage);
  sse_->finish(tail + sse_done(), 200);
  flush();
}

void ChatExchange::on_error(const Error& e) {
  if (!engine_finished()) return;
  logger()->warn("event=chat_error status={} message=\"{}\"", e.http_status, e.message);
  if (!sse_) return conn_.send_reply(error_reply(e));
  // Headers are out: report in-band, the way OpenAI streams do.
  sse_->finish(sse_error(e), e.http_status);
  flush();
}

void ChatExchange::flush() {
  if (!sse_ || phase_ == Phase::kGone || phase_ == Phase::kCancelling) return;
  switch (sse_->next(&out_)) {
    case ChatStream::Next::kNothing:
      return;
    case ChatStream::Next::kChunk:
      return conn_.write_chunk(out_, [this](bool ok) { on_written(ok); });
    case ChatStream::Next::kLastChunk:
      return conn_.write_last_chunk([this](bool ok) { on_written(ok); });
  }
}

void ChatExchange::on_written(bool ok) {
  if (!ok) return client_gone();
  sse_->written();
  if (!sse_->done()) return flush();
  conn_.stop_watch();
  conn_.stream_finished(sse_->status());
}

void ChatExchange::client_gone() {
  if (phase_ == Phase::kGone || phase_ == Phase::kCancelling) return;
  state_.metrics.stream_cancelled();
  logger()->info("event=client_gone id={} peer={}", ticket_.id, peer_.address);
  switch (phase_) {
    case Phase::kQueued:
      // Still queued: withdrawn, no slot owed. Already granted: on_slot() releases it.
      state_.gate.withdraw(gate_ticket_);
      phase_ = Phase::kGone;
      break;
    case Phase::kRunning:
      if (ticket_.cancel) ticket_.cancel();
      phase_ = Phase::kCancelling;
      break;
    default:
      phase_ = Phase::kGone;
      break;
  }
  conn_.close_gone();
}

}  // namespace kaizen::daemon
