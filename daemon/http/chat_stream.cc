#include "daemon/http/chat_stream.h"

namespace kaizen::daemon {

void ChatStream::append(const std::string& events) {
  if (!final_) pending_ += events;
}

void ChatStream::finish(const std::string& events, int status) {
  if (final_) return;
  pending_ += events;
  final_ = true;
  status_ = status;
}

ChatStream::Next ChatStream::next(std::string* out) {
  if (state_ != State::kIdle) return Next::kNothing;
  if (!pending_.empty()) {
    out->swap(pending_);
    pending_.clear();
    state_ = State::kWriting;
    return Next::kChunk;
  }
  if (final_) {
    state_ = State::kLastChunk;
    return Next::kLastChunk;
  }
  return Next::kNothing;
}

void ChatStream::written() {
  switch (state_) {
    case State::kHeader:
    case State::kWriting:
      state_ = State::kIdle;
      break;
    case State::kLastChunk:
      state_ = State::kDone;
      break;
    case State::kIdle:
    case State::kDone:
      break;
  }
}

}  // namespace kaizen::daemon
