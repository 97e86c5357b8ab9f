#include "daemon/http/chat_exchange.h"

#include <spdlog/spdlog.h>

#include "daemon/http/openai_json.h"
#include "daemon/log.h"

namespace kaizen::daemon {

void ChatExchange::start(const std::string& body, std::shared_ptr<const Config> config, bool text_completion) {
  cfg_ = std::move(config);
  text_completion_ = text_completion;
  Result<ChatRequest> parsed =
      text_completion ? parse_completion_request(body, cfg_->limits) : parse_chat_request(body, cfg_->limits);
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
  choices_.clear();
  sent_bytes_.clear();
  sse_.reset();
}

void ChatExchange::on_slot() {
  if (phase_ == Phase::kGone) return release_slot();  // left after the slot was granted
  std::shared_ptr<ChatConnection> conn = conn_.shared();
  ChatEvents ev;
  ev.on_delta = [conn, this](ChoiceDelta d) { conn->post([this, d = std::move(d)] { on_delta(d); }); };
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
  ticket_.text_completion = text_completion_;
  phase_ = Phase::kRunning;
  choices_.assign(static_cast<size_t>(std::max(1, chat_.n)), ChoiceOutput{});
  sent_bytes_.assign(choices_.size(), 0);
  if (!chat_.stream) return;
  std::string roles;
  for (int i = 0; i < static_cast<int>(choices_.size()); ++i) roles += sse_role_chunk(ticket_, i);
  sse_.emplace(std::move(roles));
  conn_.write_stream_header([this](bool ok) { on_written(ok); });
}

void ChatExchange::on_delta(const ChoiceDelta& d) {
  if (phase_ != Phase::kRunning || d.index < 0 || d.index >= static_cast<int>(choices_.size())) return;
  ChoiceOutput& c = choices_[static_cast<size_t>(d.index)];
  const int first_tool_index = static_cast<int>(c.tool_calls.size());  // the choice's calls so far
  c.tool_calls.insert(c.tool_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  if (!sse_) {
    c.content += d.content;
    c.logprobs.insert(c.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
    return;
  }
  int64_t& offset = sent_bytes_[static_cast<size_t>(d.index)];
  sse_->append(sse_delta_chunk(ticket_, d, first_tool_index, chat_.top_logprobs >= 0, offset));
  for (const auto& lp : d.logprobs) offset += static_cast<int64_t>(lp.token.size());
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
  if (!sse_) return conn_.send_reply(Reply{200, completion_body(ticket_, choices_, r, chat_.top_logprobs >= 0)});
  std::string tail;
  for (size_t i = 0; i < r.finish_reasons.size(); ++i) tail += sse_finish_chunk(ticket_, static_cast<int>(i), r.finish_reasons[i]);
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
