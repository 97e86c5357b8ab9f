// A streaming chat completion's bytes on the wire (docs/DESIGN.md §Request path): the
// SSE events of one answer, written as HTTP chunks with one write outstanding at a
// time; events that arrive during a write coalesce into the next chunk. Beast-free: the
// session does the writes this class asks for and reports each one done.
//
//   kHeader --header_written--> kIdle <--written-- kWriting
//     |                           |  --next() = chunk-->  |
//     |            finish()       v                       v
//     +-----------------------> (final events queued: drained like any others)
//                                 --next() = last chunk--> kLastChunk --written--> kDone
//
// Not thread-safe: one session's strand drives it.
#pragma once

#include <string>

namespace kaizen::daemon {

class ChatStream {
 public:
  enum class State {
    kHeader,     // the response header is being written
    kIdle,       // nothing being written; next() says what to write
    kWriting,    // a chunk of events is being written
    kLastChunk,  // the terminating zero-length chunk is being written
    kDone,       // the whole stream is out
  };
  enum class Next {
    kNothing,    // wait: a write is in flight, or no events are queued and the answer goes on
    kChunk,      // write *out as one chunk
    kLastChunk,  // write the terminating chunk
  };

  // The stream begins with `first` queued (the role chunk) and the header being written.
  explicit ChatStream(std::string first) : pending_(std::move(first)) {}

  // Queues SSE events (a content delta). Ignored once finish() was called.
  void append(const std::string& events);
  // Queues the last events (finish reason, usage, [DONE], or an in-band error) and the
  // request's final status for the access log (200, or the error's status).
  void finish(const std::string& events, int status);

  // What to write now. For kChunk, the queued events are moved into *out (which must
  // stay alive until written()) and the state becomes kWriting.
  Next next(std::string* out);
  // The write asked for (or the header) completed successfully.
  void written();

  State state() const { return state_; }
  bool finishing() const { return final_; }
  bool done() const { return state_ == State::kDone; }
  int status() const { return status_; }

 private:
  State state_ = State::kHeader;
  std::string pending_;  // events not yet handed to a write
  bool final_ = false;   // finish() was called: after pending_, the last chunk
  int status_ = 200;
};

}  // namespace kaizen::daemon
