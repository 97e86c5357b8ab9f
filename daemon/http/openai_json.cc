#include "daemon/http/openai_json.h"

#include "daemon/http/json_fields.h"

namespace kaizen::daemon {
namespace {

using json = nlohmann::json;

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

const char* object_name(const ChatTicket& t, bool chunk) {
  if (t.text_completion) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

json envelope(const ChatTicket& t, bool chunk, json choices) {
  return {{"id", t.id},       {"object", object_name(t, chunk)}, {"created", t.created},
          {"model", t.model}, {"system_fingerprint", nullptr},    {"choices", std::move(choices)}};
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

json bytes_of(const std::string& token) {
  json b = json::array();
  for (unsigned char c : token) b.push_back(static_cast<int>(c));
  return b;
}

// Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}], "refusal": null}.
json chat_logprobs(const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& lp : lps) {
    json top = json::array();
    for (const auto& [tok, v] : lp.top) top.push_back({{"token", tok}, {"logprob", v}, {"bytes", bytes_of(tok)}});
    content.push_back({{"token", lp.token}, {"logprob", lp.logprob}, {"bytes", bytes_of(lp.token)}, {"top_logprobs", top}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

// Completions logprobs: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}.
json text_logprobs(const std::vector<TokenLogprob>& lps, int64_t offset) {
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& lp : lps) {
    tokens.push_back(lp.token);
    values.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [tok, v] : lp.top) top[tok] = v;  // dump() replaces invalid UTF-8 in keys too
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += static_cast<int64_t>(lp.token.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json tool_calls_json(const std::vector<ToolCall>& calls, int first_index, bool with_index) {
  json out = json::array();
  int k = first_index;
  for (const auto& c : calls) {
    json call = {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
    if (with_index) call["index"] = k++;
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

std::string error_body(const Error& e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return dump(json{{"error", std::move(err)}});
}

std::string completion_body(const ChatTicket& t, const std::vector<ChoiceOutput>& choices, const ChatResult& result,
                            bool logprobs) {
  json out = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceOutput& c = choices[i];
    const std::string& finish = i < result.finish_reasons.size() ? result.finish_reasons[i] : "stop";
    json choice = {{"index", i}, {"finish_reason", finish}};
    if (t.text_completion) {
      choice["text"] = c.content;
      choice["logprobs"] = logprobs ? text_logprobs(c.logprobs, 0) : json(nullptr);
    } else {
      json message = {{"role", "assistant"}};
      // OpenAI: content is null when the answer is only tool calls.
      message["content"] = c.content.empty() && !c.tool_calls.empty() ? json(nullptr) : json(c.content);
      if (!c.tool_calls.empty()) message["tool_calls"] = tool_calls_json(c.tool_calls, 0, false);
      choice["message"] = std::move(message);
      choice["logprobs"] = logprobs ? chat_logprobs(c.logprobs) : json(nullptr);
    }
    out.push_back(std::move(choice));
  }
  json j = envelope(t, false, std::move(out));
  j["usage"] = usage_json(result.usage);
  return dump(j);
}

std::string sse_role_chunk(const ChatTicket& t, int index) {
  if (t.text_completion) return "";  // completions streams have no role chunk
  return sse(envelope(t, true,
                      json::array({{{"index", index},
                                    {"delta", {{"role", "assistant"}, {"content", ""}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", nullptr}}})));
}

std::string sse_delta_chunk(const ChatTicket& t, const ChoiceDelta& d, int first_tool_index, bool logprobs,
                            int64_t text_offset) {
  json choice = {{"index", d.index}, {"finish_reason", nullptr}};
  if (t.text_completion) {
    choice["text"] = d.content;
    choice["logprobs"] = logprobs ? text_logprobs(d.logprobs, text_offset) : json(nullptr);
  } else {
    json delta = json::object();
    if (!d.content.empty() || d.tool_calls.empty()) delta["content"] = d.content;
    if (!d.tool_calls.empty()) delta["tool_calls"] = tool_calls_json(d.tool_calls, first_tool_index, true);
    choice["delta"] = std::move(delta);
    choice["logprobs"] = logprobs ? chat_logprobs(d.logprobs) : json(nullptr);
  }
  return sse(envelope(t, true, json::array({std::move(choice)})));
}

std::string sse_finish_chunk(const ChatTicket& t, int index, const std::string& finish_reason) {
  json choice = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (t.text_completion) {
    choice["text"] = "";
  } else {
    choice["delta"] = json::object();
  }
  return sse(envelope(t, true, json::array({std::move(choice)})));
}

std::string sse_usage_chunk(const ChatTicket& t, const Usage& usage) {
  json j = envelope(t, true, json::array());
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
