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
// HTTP layer's job). Unknown fields are ignored, as OpenAI clients send many; fields
// kaizen cannot honour (n > 1, tools) are rejected with 400. peer is left empty.
Result<ChatRequest> parse_chat_request(std::string_view body, const Limits& limits);

// Parses a /v1/feedback body: {message_id, rating: 1|-1, correction?, user?}.
Result<FeedbackRequest> parse_feedback_request(std::string_view body);

// {"error":{"message","type","param","code"}}; param/code are null when empty.
std::string error_body(const Error& error);

// The non-streaming chat.completion object.
std::string completion_body(const ChatTicket& ticket, const std::string& content,
                            const ChatResult& result);

// One SSE event "data: {chat.completion.chunk}\n\n". The first chunk carries the role;
// the last one finish_reason; the usage chunk (include_usage) has empty choices.
std::string sse_role_chunk(const ChatTicket& ticket);
std::string sse_content_chunk(const ChatTicket& ticket, std::string_view delta);
std::string sse_finish_chunk(const ChatTicket& ticket, const std::string& finish_reason);
std::string sse_usage_chunk(const ChatTicket& ticket, const Usage& usage);
std::string sse_error(const Error& error);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

// {"object":"list","data":[{"id","object":"model","created","owned_by"}]}
std::string models_body(const std::vector<ModelEntry>& models);

}  // namespace kaizen::daemon
