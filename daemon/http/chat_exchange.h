// One chat completion on a connection (docs/DESIGN.md §Request path, steps 5-10):
// admission through the ChatGate, the Service call, the engine's events, the answer as one
// JSON body or as an SSE stream (http/chat_stream.h), and cancellation when the client
// leaves. Beast-free: the connection (http/http_session.cc) does the I/O this class asks
// for through ChatConnection.
//
// Phases (every transition on the connection's strand):
//   kNone -> kQueued (waiting for a slot) -> kRunning (holds a slot; the engine generates)
//   -> kAnswered (slot released; the reply or the stream's tail is being written).
//   A client that leaves: kQueued -> kGone, kRunning -> kCancelling (cancelled; the slot is
//   held until the engine confirms) -> kGone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/config.h"
#include "daemon/http/chat_stream.h"
#include "daemon/http/openai_json.h"
#include "daemon/http/router.h"
#include "daemon/http/server_state.h"
#include "daemon/service.h"

namespace kaizen::daemon {

// What a chat needs from the connection it runs on. Completion callbacks run on the
// connection's strand; `ok` is false when the write failed (the client is gone).
class ChatConnection {
 public:
  using Done = std::function<void(bool ok)>;
  virtual ~ChatConnection() = default;
  // Shares ownership of the connection: held by whatever may call back later from
  // another thread (the gate's start callback, the engine's ChatEvents), so the
  // connection outlives them even after the client has gone.
  virtual std::shared_ptr<ChatConnection> shared() = 0;
  // Runs `fn` on the connection's strand, from any thread, keeping the connection alive
  // until it has run.
  virtual void post(std::function<void()> fn) = 0;
  virtual void send_reply(Reply reply) = 0;
  // The streaming response's header (200 text/event-stream, chunked).
  virtual void write_stream_header(Done done) = 0;
  // `bytes` must stay alive until `done` runs.
  virtual void write_chunk(const std::string& bytes, Done done) = 0;
  virtual void write_last_chunk(Done done) = 0;
  // The whole stream is out: the request ends with `status` (for the access log).
  virtual void stream_finished(int status) = 0;
  // Calls `gone` once if the client hangs up while the chat runs; stop_watch() retires it.
  virtual void watch_disconnect(std::function<void()> gone) = 0;
  virtual void stop_watch() = 0;
  // The client left (EOF, reset, failed write): the request ends as 499 and closes.
  virtual void close_gone() = 0;
};

class ChatExchange {
 public:
  // `state` outlives the exchange; `conn` owns it.
  ChatExchange(ChatConnection& conn, ServerState& state, PeerInfo peer)
      : conn_(conn), state_(state), peer_(std::move(peer)) {}

  // Parses and admits a chat request, or a plain completion (/v1/completions), or
  // answers it with an error at once.
  void start(const std::string& body, std::shared_ptr<const Config> config, bool text_completion);
  // The connection saw the client leave (EOF, reset, a failed write).
  void client_gone();
  // Forgets a finished chat before the next request on the connection.
  void reset();

 private:
  enum class Phase { kNone, kQueued, kRunning, kCancelling, kAnswered, kGone };

  void on_slot();
  void on_delta(const ChoiceDelta& delta);
  void on_done(const ChatResult& result);
  void on_error(const Error& error);
  // The engine is done with the chat: stop watching, free the slot. False when the
  // client already left.
  bool engine_finished();
  void flush();
  void on_written(bool ok);
  void release_slot() { state_.gate.release(); }

  ChatConnection& conn_;
  ServerState& state_;
  const PeerInfo peer_;
  std::shared_ptr<const Config> cfg_;  // the request's config snapshot
  Phase phase_ = Phase::kNone;
  ChatRequest chat_;
  ChatTicket ticket_;
  uint64_t gate_ticket_ = 0;
  bool text_completion_ = false;
  std::vector<ChoiceOutput> choices_;  // each answer's tool calls; non-streaming also its text and logprobs
  std::vector<int64_t> sent_bytes_;    // streaming: bytes of each choice's text sent (text_offset)
  std::optional<ChatStream> sse_;  // streaming: what is queued and being written
  std::string out_;                // streaming: bytes of the write in progress
};

}  // namespace kaizen::daemon
