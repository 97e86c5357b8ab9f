// OpenAI-compatible JSON: request bodies in, response bodies and SSE chunks out.
// Pure functions of their inputs (no I/O, no Beast), so they are unit-tested and fuzzed
// directly (tests/daemon/fuzz_chat_request.cc). Bad input gives an Error naming the
// field (`param`), never an exception.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.h"
#include "daemon/service.h"

namespace kaizen::daemon {

// Parses and validates a /v1/chat/completions body against `limits` (body size is the
// HTTP layer's job): messages (with tool calls and tool results), sampling, n,
// logprobs, tools / tool_choice, response_format (its schema compiled here, so an
// unsupported keyword is a 400 naming it). Unknown fields are ignored, as OpenAI clients
// send many. peer is left empty.
Result<ChatRequest> parse_chat_request(std::string_view body, const Limits& limits);

// A /v1/completions body: `prompt` (one string, or an array of one) into
// ChatRequest::prompt, the same sampling fields, logprobs as an integer 0..20 (the
// number of alternatives), max_tokens 16 by default as OpenAI's. echo, suffix and
// best_of != n are refused.
Result<ChatRequest> parse_completion_request(std::string_view body, const Limits& limits);

// Parses a /v1/feedback body: {message_id, rating: 1|-1, correction?, user?}.
Result<FeedbackRequest> parse_feedback_request(std::string_view body);

// {"error":{"message","type","param","code"}}; param/code are null when empty.
std::string error_body(const Error& error);

// One answer of a non-streaming response, gathered from its deltas.
struct ChoiceOutput {
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::vector<TokenLogprob> logprobs;
};

// The non-streaming chat.completion (or text_completion, ticket.text_completion) object;
// logprobs: the request asked for them.
std::string completion_body(const ChatTicket& ticket, const std::vector<ChoiceOutput>& choices,
                            const ChatResult& result, bool logprobs);

// One SSE event "data: {chat.completion.chunk | text_completion}\n\n". A chat choice's
// first chunk carries the role (completions have none: ""); a delta chunk its content,
// complete tool calls (delta.tool_calls, numbered from first_tool_index within the
// choice) and logprobs (text_offset: bytes of that choice's text already sent); the last
// one finish_reason; the usage chunk (include_usage) has empty choices.
std::string sse_role_chunk(const ChatTicket& ticket, int index);
std::string sse_delta_chunk(const ChatTicket& ticket, const ChoiceDelta& delta, int first_tool_index,
                            bool logprobs, int64_t text_offset);
std::string sse_finish_chunk(const ChatTicket& ticket, int index, const std::string& finish_reason);
std::string sse_usage_chunk(const ChatTicket& ticket, const Usage& usage);
std::string sse_error(const Error& error);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

// {"object":"list","data":[{"id","object":"model","created","owned_by"}]}
std::string models_body(const std::vector<ModelEntry>& models);

}  // namespace kaizen::daemon
