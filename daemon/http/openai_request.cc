#include "daemon/http/openai_json.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "daemon/http/json_fields.h"
#include "daemon/http/openai_tools.h"

// Request bodies: /v1/chat/completions, /v1/completions, /v1/feedback.
namespace kaizen::daemon {
namespace {

using json = nlohmann::json;

std::optional<Error> parse_model(const json& j, ChatRequest* r) {
  auto model = j.find("model");
  if (model == j.end() || model->is_null())
    return Error::InvalidRequest("'model' is required (e.g. \"kaizen\")", "model");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  r->model = model->get<std::string>();
  if (r->model.empty()) return Error::InvalidRequest("'model' is empty", "model");
  return std::nullopt;
}

// Sampling, budget, n, stop, seed and streaming fields, common to chat and completions.
// default_max_tokens: when the request gives none (0: limits.default_max_tokens).
std::optional<Error> parse_sampling(const json& j, const Limits& limits, int64_t default_max_tokens, ChatRequest* out) {
  ChatRequest& r = *out;
  if (auto e = get_number(j, "temperature", 0, 2, &r.temperature)) return e;
  if (auto e = get_number(j, "top_p", 0, 1, &r.top_p)) return e;
  if (r.top_p && *r.top_p <= 0)
    return Error::InvalidRequest("'top_p' must be greater than 0", "top_p");
  std::optional<int64_t> top_k;
  if (auto e = get_integer(j, "top_k", -1, 1 << 20, &top_k)) return e;
  if (top_k) r.top_k = *top_k < 0 ? 0 : *top_k;  // vLLM uses -1 for "off"
  if (auto e = get_number(j, "min_p", 0, 1, &r.min_p)) return e;
  if (auto e = get_number(j, "repetition_penalty", 0, 100, &r.repetition_penalty)) return e;
  if (r.repetition_penalty && *r.repetition_penalty <= 0)
    return Error::InvalidRequest("'repetition_penalty' must be greater than 0",
                                 "repetition_penalty");
  std::optional<double> ignored;  // accepted for compatibility, not used by the sampler
  if (auto e = get_number(j, "frequency_penalty", -2, 2, &ignored)) return e;
  if (auto e = get_number(j, "presence_penalty", -2, 2, &ignored)) return e;

  // max_completion_tokens is the newer name; it wins over max_tokens.
  std::optional<int64_t> max_tokens, max_completion;
  if (auto e = get_integer(j, "max_tokens", 1, std::numeric_limits<int64_t>::max(),
                           &max_tokens))
    return e;
  if (auto e = get_integer(j, "max_completion_tokens", 1,
                           std::numeric_limits<int64_t>::max(), &max_completion))
    return e;
  const char* mt_key = max_completion ? "max_completion_tokens" : "max_tokens";
  std::optional<int64_t> mt = max_completion ? max_completion : max_tokens;
  if (mt && *mt > limits.max_tokens) {
    return Error::InvalidRequest("'" + std::string(mt_key) + "' is " + std::to_string(*mt) +
                                     ", this server allows at most " +
                                     std::to_string(limits.max_tokens),
                                 mt_key);
  }
  const int64_t fallback = default_max_tokens > 0 ? default_max_tokens : limits.default_max_tokens;
  r.max_tokens = mt ? *mt : std::min(fallback, limits.max_tokens);

  std::optional<int64_t> n;
  if (auto e = get_integer(j, "n", 1, limits.max_n, &n)) return e;
  r.n = static_cast<int>(n.value_or(1));

  // stop: string or array of up to 4 non-empty strings
  auto stop = j.find("stop");
  if (stop != j.end() && !stop->is_null()) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 4) return Error::InvalidRequest("'stop' has more than 4 entries", "stop");
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string())
          return wrong_type("stop[" + std::to_string(i) + "]", "a string", (*stop)[i]);
        r.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      return wrong_type("stop", "a string or an array of strings", *stop);
    }
    for (const auto& s : r.stop)
      if (s.empty()) return Error::InvalidRequest("'stop' contains an empty string", "stop");
  }

  // seed: any integer; negative seeds wrap like other servers do.
  auto seed = j.find("seed");
  if (seed != j.end() && !seed->is_null()) {
    if (!seed->is_number_integer()) return wrong_type("seed", "an integer", *seed);
    r.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : static_cast<uint64_t>(seed->get<int64_t>());
  }

  std::optional<bool> stream;
  if (auto e = get_bool(j, "stream", "stream", &stream)) return e;
  r.stream = stream.value_or(false);
  auto so = j.find("stream_options");
  if (so != j.end() && !so->is_null()) {
    if (!so->is_object()) return wrong_type("stream_options", "an object", *so);
    std::optional<bool> inc;
    if (auto e = get_bool(*so, "stream_options.include_usage", "include_usage", &inc)) return e;
    r.include_usage = inc.value_or(false);
  }
  return std::nullopt;
}

// Chat: logprobs (boolean) and top_logprobs (0..20, needs logprobs).
std::optional<Error> parse_chat_logprobs(const json& j, ChatRequest* r) {
  std::optional<bool> logprobs;
  if (auto e = get_bool(j, "logprobs", "logprobs", &logprobs)) return e;
  std::optional<int64_t> top;
  if (auto e = get_integer(j, "top_logprobs", 0, 20, &top)) return e;
  if (top && !logprobs.value_or(false))
    return Error::InvalidRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  if (logprobs.value_or(false)) r->top_logprobs = static_cast<int>(top.value_or(0));
  return std::nullopt;
}

}  // namespace

Result<ChatRequest> parse_chat_request(std::string_view body, const Limits& limits) {
  Result<json> parsed = parse_body(body);
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  ChatRequest r;
  if (auto e = parse_model(j, &r)) return *e;

  // messages
  auto msgs = j.find("messages");
  if (msgs == j.end() || msgs->is_null())
    return Error::InvalidRequest("'messages' is required", "messages");
  if (!msgs->is_array()) return wrong_type("messages", "an array", *msgs);
  if (msgs->empty()) return Error::InvalidRequest("'messages' is empty", "messages");
  if (static_cast<int64_t>(msgs->size()) > limits.max_messages) {
    return Error::InvalidRequest("'messages' has " + std::to_string(msgs->size()) +
                                     " entries, the limit is " +
                                     std::to_string(limits.max_messages),
                                 "messages");
  }
  int64_t chars = 0;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return wrong_type(p, "an object", m);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return Error::InvalidRequest("'" + p + ".role' must be a string", p + ".role");
    Message msg;
    msg.role = role->get<std::string>();
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" &&
        msg.role != "developer" && msg.role != "tool") {
      return Error::InvalidRequest("'" + p + ".role' is \"" + msg.role +
                                       "\", expected system, developer, user, assistant or tool",
                                   p + ".role");
    }
    if (auto e = get_content(m, p + ".content", &msg.content)) return *e;
    if (auto e = parse_message_tools(m, p, r.messages, &msg)) return *e;
    chars += code_points(msg.content);
    for (const auto& c : msg.tool_calls) chars += code_points(c.arguments);
    r.messages.push_back(std::move(msg));
  }
  if (chars > limits.max_prompt_chars) {
    return Error::InvalidRequest("the messages have " + std::to_string(chars) +
                                     " characters, the limit is " +
                                     std::to_string(limits.max_prompt_chars),
                                 "messages", "context_length_exceeded");
  }

  if (auto e = parse_sampling(j, limits, /*default_max_tokens=*/0, &r)) return *e;
  if (auto e = parse_chat_logprobs(j, &r)) return *e;
  // Again with the key order kept, for what the model is shown and generates in order.
  nlohmann::ordered_json ordered;
  if (j.contains("tools") || j.contains("response_format"))
    ordered = nlohmann::ordered_json::parse(body.begin(), body.end(), nullptr, false);
  if (auto e = parse_tools(j, ordered, limits, &r)) return *e;
  if (auto e = parse_response_format(j, ordered, &r)) return *e;
  auto kw = j.find("chat_template_kwargs");
  if (kw != j.end() && !kw->is_null()) {
    if (!kw->is_object()) return wrong_type("chat_template_kwargs", "an object", *kw);
    if (auto e = get_bool(*kw, "chat_template_kwargs.enable_thinking", "enable_thinking",
                          &r.enable_thinking))
      return *e;
  }
  std::optional<std::string> user;
  if (auto e = get_string(j, "user", "user", &user)) return *e;
  r.user = user.value_or("");
  return r;
}


Result<ChatRequest> parse_completion_request(std::string_view body, const Limits& limits) {
  Result<json> parsed = parse_body(body);
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  ChatRequest r;
  if (auto e = parse_model(j, &r)) return *e;
  auto prompt = j.find("prompt");
  if (prompt == j.end() || prompt->is_null()) return Error::InvalidRequest("'prompt' is required", "prompt");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else if (prompt->is_array()) {
    return Error::InvalidRequest("'prompt' must be one string (send several prompts as several requests)", "prompt");
  } else {
    return wrong_type("prompt", "a string", *prompt);
  }
  if (r.prompt->empty()) return Error::InvalidRequest("'prompt' is empty", "prompt");
  if (code_points(*r.prompt) > limits.max_prompt_chars) {
    return Error::InvalidRequest("'prompt' has " + std::to_string(code_points(*r.prompt)) +
                                     " characters, the limit is " + std::to_string(limits.max_prompt_chars),
                                 "prompt", "context_length_exceeded");
  }
  // OpenAI's default for completions is 16 tokens.
  if (auto e = parse_sampling(j, limits, 16, &r)) return *e;
  std::optional<int64_t> logprobs;
  if (auto e = get_integer(j, "logprobs", 0, 20, &logprobs)) return *e;
  if (logprobs) r.top_logprobs = static_cast<int>(*logprobs);
  std::optional<bool> echo;
  if (auto e = get_bool(j, "echo", "echo", &echo)) return *e;
  if (echo.value_or(false)) return Error::InvalidRequest("'echo' is not supported", "echo");
  std::optional<std::string> suffix;
  if (auto e = get_string(j, "suffix", "suffix", &suffix)) return *e;
  if (suffix && !suffix->empty()) return Error::InvalidRequest("'suffix' is not supported", "suffix");
  std::optional<int64_t> best_of;
  if (auto e = get_integer(j, "best_of", 1, limits.max_n, &best_of)) return *e;
  if (best_of && *best_of != r.n)
    return Error::InvalidRequest("'best_of' must equal 'n' (kaizen returns every answer it generates)", "best_of");
  std::optional<std::string> user;
  if (auto e = get_string(j, "user", "user", &user)) return *e;
  r.user = user.value_or("");
  return r;
}

Result<FeedbackRequest> parse_feedback_request(std::string_view body) {
  Result<json> parsed = parse_body(body);
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  FeedbackRequest f;
  auto id = j.find("message_id");
  if (id == j.end() || id->is_null())
    return Error::InvalidRequest("'message_id' is required", "message_id");
  if (!id->is_string()) return wrong_type("message_id", "a string", *id);
  f.message_id = id->get<std::string>();
  if (f.message_id.empty()) return Error::InvalidRequest("'message_id' is empty", "message_id");
  auto rating = j.find("rating");
  if (rating == j.end() || rating->is_null())
    return Error::InvalidRequest("'rating' is required (1 or -1)", "rating");
  if (!rating->is_number_integer() || (*rating != 1 && *rating != -1))
    return Error::InvalidRequest("'rating' must be 1 or -1, got " + rating->dump(), "rating");
  f.rating = rating->get<int>();
  if (auto e = get_string(j, "correction", "correction", &f.correction)) return *e;
  std::optional<std::string> user;
  if (auto e = get_string(j, "user", "user", &user)) return *e;
  f.user = user.value_or("");
  return f;
}

}  // namespace kaizen::daemon
