// libFuzzer target: raw bytes -> Beast HTTP request parser (the server's limits) ->
// parse_chat_request / parse_completion_request / parse_feedback_request -> response
// rendering, and the admin routes' argument parsers. Any crash, hang,
// sanitizer report or exception escaping is a bug: bad input must become a 4xx.
//
// Built as tests/fuzz/tests.cmake says (libFuzzer + ASan + UBSan, or a corpus replayer).
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "daemon/http/openai_json.h"
#include "daemon/serve/params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  kaizen::daemon::Limits limits;
  limits.max_prompt_chars = 4096;
  limits.max_messages = 64;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  // Half of the inputs go straight to the JSON layer, so the fuzzer need not learn HTTP
  // framing to reach it.
  std::string_view body = input;
  if (!input.empty() && input[0] == 'P') {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(1 << 20);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    if (!ec && !parser.is_done()) parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
    static std::string keep;
    keep = parser.get().body();
    body = keep;
  }
  auto chat = kaizen::daemon::parse_chat_request(body, limits);
  if (chat.ok()) {
    const auto& r = chat.value();
    if (r.messages.empty() || r.model.empty() || r.max_tokens < 1 ||
        r.max_tokens > limits.max_tokens)
      __builtin_trap();  // validation let an invalid request through
    kaizen::daemon::ChatTicket t{"msg_1", r.model, 0, false, nullptr};
    (void)kaizen::daemon::sse_delta_chunk(
        t, kaizen::daemon::ChoiceDelta{0, r.messages[0].content, r.messages[0].tool_calls, {}}, 0,
        true, 0);
    if (r.n < 1 || r.n > limits.max_n || r.top_logprobs > 20) __builtin_trap();
  } else {
    (void)kaizen::daemon::error_body(chat.error());
  }
  auto completion = kaizen::daemon::parse_completion_request(body, limits);
  if (completion.ok() && (!completion.value().prompt || completion.value().prompt->empty()))
    __builtin_trap();
  auto fb = kaizen::daemon::parse_feedback_request(body);
  if (fb.ok() && fb.value().rating != 1 && fb.value().rating != -1) __builtin_trap();

  // Admin arguments (JSON bodies; query strings arrive as the same JSON of strings) through
  // the typed parsers of the admin route table: each accepts only its own shape.
  const auto args =
      nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!args.is_discarded()) {
    auto page = kaizen::daemon::parse_page(args);
    if (page.ok() && page.value().limit < 1) __builtin_trap();
    if (args.is_object()) {
      for (const char* key : {"id", "message_id", "version", "to"}) {
        if (!args.contains(key)) continue;
        auto id = kaizen::daemon::parse_id(args[key], key);
        if (id.ok() && id.value() == 0) __builtin_trap();
        auto version = kaizen::daemon::parse_version(args[key], key);
        if (version.ok() && version.value() == 0) __builtin_trap();
        // A version written "v7" is never an id.
        if (args[key].is_string() && !args[key].get<std::string>().empty() &&
            (args[key].get<std::string>()[0] == 'v') && id.ok())
          __builtin_trap();
      }
    }
    (void)kaizen::daemon::parse_flag(args, "force", false);
  }
  return 0;
}
