// The seam between kaizend's HTTP layer and the chat engine + storage behind it
// (docs/DESIGN.md §Layers, §Errors).
//
// The HTTP layer (server.h, http_session.cc, openai_json.cc) parses and validates
// requests, then calls a Service; it never touches tensors or RocksDB. The production
// Service (daemon/kaizen_service.*) joins the engine thread and the Store; tests use an
// in-memory fake (tests/daemon/fake_service.*).
//
// Threading contract for implementers:
//  - Every method is called from Asio I/O threads, possibly from several at once, and
//    must not block on tensor work or disk syncs for long: queue the work and return.
//    (admin() and submit_feedback() may do short synchronous Store writes.)
//  - ChatEvents callbacks are called from the engine's own thread(s). The HTTP layer
//    posts them to the connection's strand, so they may be called before submit_chat()
//    has returned, and they must never be called concurrently for one request.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/errors.h"

namespace kaizen::grammar {
class Grammar;  // learning/grammar: a compiled constraint for constrained decoding
}

namespace kaizen::daemon {

// An error that reaches a client as an OpenAI-shaped body:
// {"error":{"message":..., "type":..., "param":..., "code":...}} with `http_status`.
struct Error {
  int http_status = 500;
  std::string type;     // OpenAI error type, e.g. "invalid_request_error"
  std::string message;  // one sentence for a human; never a stack trace
  std::string param;    // offending request field ("messages[2].content"), or empty
  std::string code;     // machine code ("model_not_found"), or empty
  int retry_after_s = 0;  // >0: sent as Retry-After (429, 503)

  static Error InvalidRequest(std::string message, std::string param = {},
                              std::string code = {});                     // 400
  static Error Unauthorized(std::string message);                         // 401
  static Error Forbidden(std::string message);                            // 403
  static Error NotFound(std::string message, std::string code = {});      // 404
  static Error ModelNotFound(const std::string& model);                   // 404, param "model"
  static Error Conflict(std::string message);                             // 409
  static Error TooManyRequests(std::string message, int retry_after_s);   // 429
  static Error Internal(std::string message);                             // 500
  static Error Unavailable(std::string message, int retry_after_s = 0);   // 503
  static Error InsufficientStorage(std::string message);                  // 507
};

// The one mapping of a domain Failure (daemon/errors.h) to its HTTP status and OpenAI
// error: invalid / nothing to do 400, not found 404, conflict 409, unavailable 503
// (Retry-After 2), disk full 507 (Retry-After 30), internal 500.
Error http_error(const Failure& failure);

// Either a value or an Error (daemon/errors.h Expected). Small on purpose: the HTTP layer
// only needs ok()/value()/error().
template <class T>
using Result = Expected<T, Error>;

// Who is on the other end of a connection. Unix-socket peers come from SO_PEERCRED.
struct PeerInfo {
  enum class Transport { kUnix, kTcp };
  Transport transport = Transport::kTcp;
  std::string address;  // "127.0.0.1:53122", or the socket path for Unix peers
  int64_t uid = -1;     // Unix peers only; -1 when unknown
  int64_t gid = -1;
  int64_t pid = -1;
};

// A function call, in a request's assistant message or in an answer.
struct ToolCall {
  std::string id;         // "call_..."
  std::string name;
  std::string arguments;  // JSON text (OpenAI sends and returns a string)
  bool arguments_is_object = false;  // the client sent an object, not OpenAI's string
};

struct Message {
  std::string role;     // "system", "user", "assistant" (also "developer", "tool")
  std::string content;  // text parts already joined
  std::vector<ToolCall> tool_calls;  // assistant messages that called functions
  std::string tool_call_id;          // role "tool": the call it answers
};

// One entry of `tools` ({"type":"function","function":{name, description, parameters}}).
struct Tool {
  std::string name;
  // JSON schema of the arguments (null: any object), and the whole tool object as sent:
  // key order kept (the chat template shows the model `raw`; properties are generated in
  // the schema's order).
  nlohmann::ordered_json parameters;
  nlohmann::ordered_json raw;
};

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };
enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

// A validated chat request. Unset optionals mean "the model's recommended default";
// the HTTP layer has already checked ranges (see openai_json.h).
struct ChatRequest {
  std::vector<Message> messages;       // non-empty
  std::string model;                   // "kaizen" | "kaizen@vN" | "base" | what list_models() gave
  std::optional<double> temperature;   // [0, 2]; 0 = greedy
  std::optional<double> top_p;         // (0, 1]
  std::optional<int64_t> top_k;        // >= 0; 0 = off
  std::optional<double> min_p;         // [0, 1]
  std::optional<double> repetition_penalty;  // > 0; 1 = off
  int64_t max_tokens = 0;              // completion tokens, already capped by limits.max_tokens
  std::vector<std::string> stop;       // stop strings, not included in the output
  std::optional<uint64_t> seed;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  std::optional<bool> enable_thinking;  // chat_template_kwargs.enable_thinking (Qwen3)
  std::string user;                    // OpenAI `user` field: author for feedback provenance
  PeerInfo peer;

  // Function calling. With tools, the chat template shows them to the model and the
  // answer's <tool_call> blocks come back as ToolCalls (tool_choice none: as text).
  // kRequired / kNamed force a call by constrained decoding.
  std::vector<Tool> tools;
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_choice_name;        // kNamed: the function (declared in tools)
  bool parallel_tool_calls = true;
  // Structured outputs: the answer is constrained to `grammar` (compiled from the schema
  // by the HTTP layer, so an unsupported schema is a 400 before anything runs).
  ResponseFormat response_format = ResponseFormat::kText;
  std::shared_ptr<const grammar::Grammar> grammar;
  // -1: no logprobs; 0..20 alternatives per token (logprobs: true, top_logprobs).
  int top_logprobs = -1;
  int n = 1;                           // answers to the same prompt, 1..limits.max_n
  // /v1/completions: a plain prompt, tokenized as it is (no chat template; messages
  // empty). echo is refused at parse time.
  std::optional<std::string> prompt;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose KV came from a cache (not prefilled)
};

// Returned by submit_chat() once the request is accepted.
struct ChatTicket {
  std::string id;       // the stored assistant message id; becomes the response `id`
  std::string model;    // resolved model name for the response, e.g. "kaizen@v7"
  int64_t created = 0;  // unix seconds
  bool text_completion = false;  // a /v1/completions request (set by the HTTP layer)
  // Cancels generation (client went away). Idempotent, callable from any thread.
  std::function<void()> cancel;
};

// One generated token's logprob and the likeliest alternatives (sampler.h says which
// distribution). `token` holds the token's bytes, which may be part of a UTF-8 sequence.
struct TokenLogprob {
  std::string token;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
};

// What one answer (choice `index`) produced since the last delta: text that is safe to
// show, complete tool calls, and the logprobs of the tokens generated meanwhile.
struct ChoiceDelta {
  int index = 0;
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::vector<TokenLogprob> logprobs;
};

struct ChatResult {
  // Per choice: "stop" | "length" | "tool_calls" | "cancelled"; index = choice.
  std::vector<std::string> finish_reasons;
  Usage usage;  // completion_tokens summed over the choices
  const std::string& finish_reason() const { return finish_reasons.front(); }
};

// Exactly one of on_done / on_error is called, last, once per accepted request (after
// every choice has finished), also after cancel(). on_delta is called zero or more times
// before it; a content piece never splits a UTF-8 sequence.
struct ChatEvents {
  std::function<void(ChoiceDelta delta)> on_delta;
  std::function<void(ChatResult result)> on_done;
  std::function<void(Error error)> on_error;
};

struct ModelEntry {
  std::string id;  // "base", "kaizen", "kaizen@v7"
  int64_t created = 0;
  std::string owned_by = "kaizen";
};

struct FeedbackRequest {
  std::string message_id;
  int rating = 0;                         // 1 or -1
  std::optional<std::string> correction;  // the answer the user wanted
  std::string user;                       // author, for provenance
  PeerInfo peer;
};

struct FeedbackAck {
  std::string feedback_id;
  std::string status;  // e.g. "recorded", "queued_for_review"
};

struct Health {
  bool ready = false;   // false while loading: /healthz answers 503
  std::string detail;   // short text, e.g. "model qwen3-0.6b, adapter v7"
  // Empty while the store takes writes; else why it does not (a full or failing disk):
  // /healthz still answers 200 (chat is served) with status "degraded".
  std::string storage_error;
};

// Handed to whatever builds the Service (kaizend_main.cc calls the factory in
// daemon/serve/kaizen_service.h) so a long model load can keep systemd informed: `status` sets
// the STATUS= line, `extend_timeout` asks for more start-up time (EXTEND_TIMEOUT_USEC;
// call it every few seconds while loading). Both are cheap and callable from any thread.
struct StartupProgress {
  std::function<void(const std::string& status)> status;
  std::function<void(std::chrono::seconds more)> extend_timeout;
};

// Lifetime: the Server holds a Service& and stops calling it once Server::run() has
// returned. Destroying the Service must stop the engine and drop (or complete) every
// ChatEvents it holds; kaizend destroys the Service before the Server for that reason.
class Service {
 public:
  virtual ~Service() = default;

  // Starts a chat completion. Errors: unknown model/adapter -> Error::ModelNotFound
  // (404); prompt too long -> InvalidRequest (400, code "context_length_exceeded");
  // engine queue full -> TooManyRequests (429); still loading -> Unavailable (503).
  // On error no event is ever called.
  virtual Result<ChatTicket> submit_chat(ChatRequest request, ChatEvents events) = 0;

  virtual std::vector<ModelEntry> list_models() = 0;

  // Errors: unknown message_id -> NotFound; bad rating/correction -> InvalidRequest.
  virtual Result<FeedbackAck> submit_feedback(FeedbackRequest request) = 0;

  virtual Health health() = 0;

  // Prometheus text exposition appended to the HTTP layer's own metrics (may be empty).
  virtual std::string metrics_text() = 0;

  // Operator operations, reachable only over the Unix socket as /admin/<op>. `method` is
  // the HTTP method, `op` the path after /admin/ (the production table is
  // serve/admin_api.h); `args` is the POST body object, or for GET the query parameters
  // as strings. `peer` carries the caller's uid/gid/pid for the audit log.
  // Unknown op -> Error::NotFound; a state-changing op over GET -> 405.
  virtual Result<nlohmann::json> admin(const std::string& method, const std::string& op,
                                       const nlohmann::json& args, const PeerInfo& peer) = 0;
};

}  // namespace kaizen::daemon
