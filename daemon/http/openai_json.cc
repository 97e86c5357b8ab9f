#include "daemon/http/openai_json.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kaizen::daemon {
namespace {

using json = nlohmann::json;

// Serialises without throwing on invalid UTF-8 (an engine bug must not kill a stream).
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "invalid";
    default: return "a number";
  }
}

Error wrong_type(const std::string& param, const char* expected, const json& got) {
  return Error::InvalidRequest(
      "'" + param + "' must be " + expected + ", got " + type_name(got), param);
}

// Reads an optional number field in [lo, hi]. Null counts as absent (OpenAI clients
// send explicit nulls).
std::optional<Error> get_number(const json& body, const char* key, double lo, double hi,
                                std::optional<double>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return wrong_type(key, "a number", *it);
  double v = it->get<double>();
  if (!(v >= lo && v <= hi) || !std::isfinite(v)) {
    return Error::InvalidRequest("'" + std::string(key) + "' is " + it->dump() +
                                     ", expected a value in [" + json(lo).dump() + ", " +
                                     json(hi).dump() + "]",
                                 key);
  }
  *out = v;
  return std::nullopt;
}

std::optional<Error> get_integer(const json& body, const char* key, int64_t lo, int64_t hi,
                                 std::optional<int64_t>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return wrong_type(key, "an integer", *it);
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Error::InvalidRequest("'" + std::string(key) + "' is too large", key);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return Error::InvalidRequest("'" + std::string(key) + "' is " + std::to_string(v) +
                                     ", expected " + std::to_string(lo) + ".." +
                                     std::to_string(hi),
                                 key);
  }
  *out = v;
  return std::nullopt;
}

std::optional<Error> get_bool(const json& obj, const std::string& param, const char* key,
                              std::optional<bool>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return wrong_type(param, "a boolean", *it);
  *out = it->get<bool>();
  return std::nullopt;
}

// Number of Unicode code points in valid UTF-8 (the JSON parser already validated it).
int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// content: a string, null (assistant turns), or an array of {"type":"text","text":...}.
std::optional<Error> get_content(const json& msg, const std::string& param, std::string* out) {
  auto it = msg.find("content");
  if (it == msg.end() || it->is_null()) {
    out->clear();
    return std::nullopt;
  }
  if (it->is_string()) {
    *out = it->get<std::string>();
    return std::nullopt;
  }
  if (!it->is_array()) return wrong_type(param, "a string or an array of text parts", *it);
  out->clear();
  for (size_t i = 0; i < it->size(); ++i) {
    const json& part = (*it)[i];
    std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object()) return wrong_type(p, "an object", part);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text") {
      return Error::InvalidRequest("'" + p + ".type' must be \"text\" (only text is supported)",
                                   p + ".type");
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string())
      return Error::InvalidRequest("'" + p + ".text' must be a string", p + ".text");
    *out += text->get<std::string>();
  }
  return std::nullopt;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json chunk(const ChatTicket& t, json choices) {
  return {{"id", t.id},         {"object", "chat.completion.chunk"}, {"created", t.created},
          {"model", t.model},   {"system_fingerprint", nullptr},     {"choices", std::move(choices)}};
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

Result<ChatRequest> parse_chat_request(std::string_view body, const Limits& limits) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions only to get the position for the message.
    std::string why = "the body is not valid JSON";
    try {
      json ignored = json::parse(body.begin(), body.end());
    } catch (const json::exception& e) {
      why += ": ";
      why += e.what();
    }
    return Error::InvalidRequest(why);
  }
  if (!j.is_object()) return wrong_type("body", "a JSON object", j);

  ChatRequest r;
  // model
  auto model = j.find("model");
  if (model == j.end() || model->is_null())
    return Error::InvalidRequest("'model' is required (e.g. \"kaizen\")", "model");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  r.model = model->get<std::string>();
  if (r.model.empty()) return Error::InvalidRequest("'model' is empty", "model");

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
    chars += code_points(msg.content);
    r.messages.push_back(std::move(msg));
  }
  if (chars > limits.max_prompt_chars) {
    return Error::InvalidRequest("the messages have " + std::to_string(chars) +
                                     " characters, the limit is " +
                                     std::to_string(limits.max_prompt_chars),
                                 "messages", "context_length_exceeded");
  }

  // sampling
  if (auto e = get_number(j, "temperature", 0, 2, &r.temperature)) return *e;
  if (auto e = get_number(j, "top_p", 0, 1, &r.top_p)) return *e;
  if (r.top_p && *r.top_p <= 0)
    return Error::InvalidRequest("'top_p' must be greater than 0", "top_p");
  std::optional<int64_t> top_k;
  if (auto e = get_integer(j, "top_k", -1, 1 << 20, &top_k)) return *e;
  if (top_k) r.top_k = *top_k < 0 ? 0 : *top_k;  // vLLM uses -1 for "off"
  if (auto e = get_number(j, "min_p", 0, 1, &r.min_p)) return *e;
  if (auto e = get_number(j, "repetition_penalty", 0, 100, &r.repetition_penalty)) return *e;
  if (r.repetition_penalty && *r.repetition_penalty <= 0)
    return Error::InvalidRequest("'repetition_penalty' must be greater than 0",
                                 "repetition_penalty");
  std::optional<double> ignored;  // accepted for compatibility, not used by the sampler
  if (auto e = get_number(j, "frequency_penalty", -2, 2, &ignored)) return *e;
  if (auto e = get_number(j, "presence_penalty", -2, 2, &ignored)) return *e;

  // max_completion_tokens is the newer name; it wins over max_tokens.
  std::optional<int64_t> max_tokens, max_completion;
  if (auto e = get_integer(j, "max_tokens", 1, std::numeric_limits<int64_t>::max(),
                           &max_tokens))
    return *e;
  if (auto e = get_integer(j, "max_completion_tokens", 1,
                           std::numeric_limits<int64_t>::max(), &max_completion))
    return *e;
  const char* mt_key = max_completion ? "max_completion_tokens" : "max_tokens";
  std::optional<int64_t> mt = max_completion ? max_completion : max_tokens;
  if (mt && *mt > limits.max_tokens) {
    return Error::InvalidRequest("'" + std::string(mt_key) + "' is " + std::to_string(*mt) +
                                     ", this server allows at most " +
                                     std::to_string(limits.max_tokens),
                                 mt_key);
  }
  r.max_tokens = mt ? *mt : std::min(limits.default_max_tokens, limits.max_tokens);

  // n
  std::optional<int64_t> n;
  if (auto e = get_integer(j, "n", 1, 1 << 20, &n)) return *e;
  if (n && *n != 1) return Error::InvalidRequest("only n=1 is supported", "n");
  auto tools = j.find("tools");
  if (tools != j.end() && !tools->is_null() && !(tools->is_array() && tools->empty()))
    return Error::InvalidRequest("tools are not supported", "tools");

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
  if (auto e = get_bool(j, "stream", "stream", &stream)) return *e;
  r.stream = stream.value_or(false);
  auto so = j.find("stream_options");
  if (so != j.end() && !so->is_null()) {
    if (!so->is_object()) return wrong_type("stream_options", "an object", *so);
    std::optional<bool> inc;
    if (auto e = get_bool(*so, "stream_options.include_usage", "include_usage", &inc)) return *e;
    r.include_usage = inc.value_or(false);
  }
  auto kw = j.find("chat_template_kwargs");
  if (kw != j.end() && !kw->is_null()) {
    if (!kw->is_object()) return wrong_type("chat_template_kwargs", "an object", *kw);
    if (auto e = get_bool(*kw, "chat_template_kwargs.enable_thinking", "enable_thinking",
                          &r.enable_thinking))
      return *e;
  }
  auto user = j.find("user");
  if (user != j.end() && !user->is_null()) {
    if (!user->is_string()) return wrong_type("user", "a string", *user);
    r.user = user->get<std::string>();
  }
  return r;
}

Result<FeedbackRequest> parse_feedback_request(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return Error::InvalidRequest("the body is not valid JSON");
  if (!j.is_object()) return wrong_type("body", "a JSON object", j);
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
  auto corr = j.find("correction");
  if (corr != j.end() && !corr->is_null()) {
    if (!corr->is_string()) return wrong_type("correction", "a string", *corr);
    f.correction = corr->get<std::string>();
  }
  auto user = j.find("user");
  if (user != j.end() && !user->is_null()) {
    if (!user->is_string()) return wrong_type("user", "a string", *user);
    f.user = user->get<std::string>();
  }
  return f;
}

std::string error_body(const Error& e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return dump(json{{"error", std::move(err)}});
}

std::string completion_body(const ChatTicket& t, const std::string& content,
                            const ChatResult& result) {
  json j = {{"id", t.id},
            {"object", "chat.completion"},
            {"created", t.created},
            {"model", t.model},
            {"system_fingerprint", nullptr},
            {"choices",
             json::array({{{"index", 0},
                           {"message", {{"role", "assistant"}, {"content", content}}},
                           {"logprobs", nullptr},
                           {"finish_reason", result.finish_reason}}})},
            {"usage", usage_json(result.usage)}};
  return dump(j);
}

std::string sse_role_chunk(const ChatTicket& t) {
  return sse(chunk(t, json::array({{{"index", 0},
                                    {"delta", {{"role", "assistant"}, {"content", ""}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", nullptr}}})));
}

std::string sse_content_chunk(const ChatTicket& t, std::string_view delta) {
  return sse(chunk(t, json::array({{{"index", 0},
                                    {"delta", {{"content", std::string(delta)}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", nullptr}}})));
}

std::string sse_finish_chunk(const ChatTicket& t, const std::string& finish_reason) {
  return sse(chunk(t, json::array({{{"index", 0},
                                    {"delta", json::object()},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason}}})));
}

std::string sse_usage_chunk(const ChatTicket& t, const Usage& usage) {
  json j = chunk(t, json::array());
  j["usage"] = usage_json(usage);
  return sse(j);
}

std::string sse_error(const Error& e) { return "data: " + error_body(e) + "\n\n"; }

std::string models_body(const std::vector<ModelEntry>& models) {
  json data = json::array();
  for (const auto& m : models)
    data.push_back(
        {{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}});
  return dump(json{{"object", "list"}, {"data", std::move(data)}});
}

}  // namespace kaizen::daemon
