#include "daemon/http/openai_json.h"
#include "daemon/http/json_fields.h"

#include <gtest/gtest.h>

namespace kaizen::daemon {
namespace {

using json = nlohmann::json;

Result<ChatRequest> parse(const json& j, Limits limits = Limits{}) {
  return parse_chat_request(j.dump(), limits);
}

json minimal() {
  return {{"model", "kaizen"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
}

TEST(OpenAiJsonTest, ParsesEveryField) {
  json j = minimal();
  j["messages"] = {{{"role", "system"}, {"content", "be brief"}},
                   {{"role", "user"},
                    {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
                   {{"role", "assistant"}, {"content", nullptr}}};
  j["temperature"] = 0.7;
  j["top_p"] = 0.8;
  j["top_k"] = 20;
  j["min_p"] = 0.05;
  j["repetition_penalty"] = 1.1;
  j["max_completion_tokens"] = 33;
  j["max_tokens"] = 99;  // the newer name wins
  j["stop"] = "END";
  j["seed"] = -1;
  j["stream"] = true;
  j["stream_options"] = {{"include_usage", true}};
  j["chat_template_kwargs"] = {{"enable_thinking", false}};
  j["user"] = "alice";
  j["logit_bias"] = json::object();  // unknown fields are ignored
  auto r = parse(j);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ChatRequest& c = r.value();
  ASSERT_EQ(c.messages.size(), 3u);
  EXPECT_EQ(c.messages[1].content, "ab");
  EXPECT_EQ(c.messages[2].content, "");
  EXPECT_DOUBLE_EQ(*c.temperature, 0.7);
  EXPECT_DOUBLE_EQ(*c.top_p, 0.8);
  EXPECT_EQ(*c.top_k, 20);
  EXPECT_DOUBLE_EQ(*c.min_p, 0.05);
  EXPECT_DOUBLE_EQ(*c.repetition_penalty, 1.1);
  EXPECT_EQ(c.max_tokens, 33);
  EXPECT_EQ(c.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(*c.seed, ~uint64_t{0});
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.include_usage);
  EXPECT_EQ(c.enable_thinking, std::optional<bool>(false));
  EXPECT_EQ(c.user, "alice");
}

TEST(OpenAiJsonTest, ToolsToolCallsAndToolResults) {
  // The tools exactly as the client wrote them (keys out of alphabetical order): the chat
  // template's tojson shows the model this order.
  const std::string body = R"({"model": "kaizen", "tool_choice": {"type": "function", "function": {"name": "get_order"}},
    "parallel_tool_calls": false,
    "tools": [{"type": "function", "function": {"name": "get_order", "description": "Order status",
               "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}}],
    "messages": [{"role": "user", "content": "where is 7?"},
                 {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_order", "arguments": "{\"id\": \"7\"}"}}]},
                 {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}]})";
  auto r = parse_chat_request(body, Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ChatRequest& c = r.value();
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(c.tools[0].name, "get_order");
  EXPECT_EQ(c.tools[0].parameters["required"].dump(), R"(["id"])");
  EXPECT_EQ(c.tools[0].raw.dump(), R"({"type":"function","function":{"name":"get_order","description":"Order status",)"
                                   R"("parameters":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}}})");
  EXPECT_EQ(c.tool_choice, ToolChoice::kNamed);
  EXPECT_EQ(c.tool_choice_name, "get_order");
  EXPECT_FALSE(c.parallel_tool_calls);
  ASSERT_EQ(c.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(c.messages[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(c.messages[1].tool_calls[0].arguments, R"({"id": "7"})");  // verbatim, as the template shows it
  EXPECT_EQ(c.messages[2].tool_call_id, "call_1");
  EXPECT_FALSE(c.grammar);  // the forced call's grammar is the service's (it knows the template)
}

TEST(OpenAiJsonTest, ResponseFormatLogprobsAndN) {
  json j = minimal();
  j["response_format"] = {{"type", "json_schema"},
                          {"json_schema", {{"name", "answer"}, {"strict", true},
                                           {"schema", {{"type", "object"}, {"properties", {{"ok", {{"type", "boolean"}}}}},
                                                       {"required", {"ok"}}, {"additionalProperties", false}}}}}};
  j["logprobs"] = true;
  j["top_logprobs"] = 5;
  j["n"] = 3;
  auto r = parse(j);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().response_format, ResponseFormat::kJsonSchema);
  EXPECT_TRUE(r.value().grammar);
  EXPECT_EQ(r.value().top_logprobs, 5);
  EXPECT_EQ(r.value().n, 3);
  j["response_format"] = {{"type", "json_object"}};
  j["logprobs"] = false;
  j.erase("top_logprobs");
  r = parse(j);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().response_format, ResponseFormat::kJsonObject);
  EXPECT_TRUE(r.value().grammar);
  EXPECT_EQ(r.value().top_logprobs, -1);
  j["response_format"] = {{"type", "text"}};
  EXPECT_FALSE(parse(j).value().grammar);
  Limits few;
  few.max_n = 2;
  EXPECT_EQ(parse(j, few).error().param, "n");
}

TEST(OpenAiJsonTest, CompletionRequests) {
  Limits l;
  auto r = parse_completion_request(R"({"model": "base", "prompt": "Once upon", "logprobs": 2, "n": 2, "seed": 5})", l);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r.value().prompt, "Once upon");
  EXPECT_TRUE(r.value().messages.empty());
  EXPECT_EQ(r.value().max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(r.value().top_logprobs, 2);
  EXPECT_EQ(r.value().n, 2);
  EXPECT_EQ(parse_completion_request(R"({"model": "base", "prompt": ["one"]})", l).value().prompt, "one");
  struct Bad {
    const char* body;
    const char* param;
  };
  for (const Bad& b : {Bad{R"({"model": "base"})", "prompt"}, Bad{R"({"model": "base", "prompt": ""})", "prompt"},
                       Bad{R"({"model": "base", "prompt": ["a", "b"]})", "prompt"},
                       Bad{R"({"model": "base", "prompt": [1, 2]})", "prompt"},
                       Bad{R"({"model": "base", "prompt": "x", "echo": true})", "echo"},
                       Bad{R"({"model": "base", "prompt": "x", "suffix": "y"})", "suffix"},
                       Bad{R"({"model": "base", "prompt": "x", "best_of": 2})", "best_of"},
                       Bad{R"({"model": "base", "prompt": "x", "logprobs": 21})", "logprobs"},
                       Bad{R"({"prompt": "x"})", "model"}}) {
    auto e = parse_completion_request(b.body, l);
    ASSERT_FALSE(e.ok()) << b.body;
    EXPECT_EQ(e.error().param, b.param) << b.body << ": " << e.error().message;
  }
}

TEST(OpenAiJsonTest, ToolCallsAndLogprobsInResponses) {
  ChatTicket t{"9", "kaizen", 1700000000, false, nullptr};
  ChoiceOutput calls;
  calls.tool_calls = {{"call_a", "get_order", R"({"id":"7"})"}};
  ChoiceOutput text{"Hi", {}, {{"Hi", -0.5, {{"Hi", -0.5}, {"\xe6", -2.0}}}}};
  json c = json::parse(completion_body(t, {calls, text}, ChatResult{{"tool_calls", "stop"}, {5, 2, 0}}, true));
  EXPECT_TRUE(c["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(c["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], R"({"id":"7"})");
  EXPECT_EQ(c["choices"][0]["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(c["choices"][1]["index"], 1);
  const json& lp = c["choices"][1]["logprobs"]["content"][0];
  EXPECT_EQ(lp["token"], "Hi");
  EXPECT_DOUBLE_EQ(lp["logprob"].get<double>(), -0.5);
  EXPECT_EQ(lp["bytes"], json::array({72, 105}));
  EXPECT_EQ(lp["top_logprobs"][1]["bytes"], json::array({0xe6}));  // a partial UTF-8 sequence keeps its bytes

  json k = json::parse(sse_delta_chunk(t, ChoiceDelta{1, "", calls.tool_calls, {}}, 2, false, 0).substr(6));
  EXPECT_EQ(k["choices"][0]["index"], 1);
  EXPECT_EQ(k["choices"][0]["delta"]["tool_calls"][0]["index"], 2);
  EXPECT_EQ(k["choices"][0]["delta"]["tool_calls"][0]["id"], "call_a");
  EXPECT_FALSE(k["choices"][0]["delta"].contains("content"));

  t.text_completion = true;
  json tc = json::parse(completion_body(t, {text}, ChatResult{{"length"}, {5, 2, 0}}, true));
  EXPECT_EQ(tc["object"], "text_completion");
  EXPECT_EQ(tc["choices"][0]["text"], "Hi");
  EXPECT_EQ(tc["choices"][0]["logprobs"]["tokens"][0], "Hi");
  EXPECT_DOUBLE_EQ(tc["choices"][0]["logprobs"]["top_logprobs"][0]["Hi"].get<double>(), -0.5);
  EXPECT_EQ(tc["choices"][0]["logprobs"]["text_offset"][0], 0);
  EXPECT_EQ(sse_role_chunk(t, 0), "");
}

TEST(OpenAiJsonTest, DefaultsLeaveSamplingToTheModel) {
  Limits l;
  l.default_max_tokens = 123;
  auto r = parse(minimal(), l);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value().temperature);
  EXPECT_FALSE(r.value().top_p);
  EXPECT_FALSE(r.value().enable_thinking);
  EXPECT_EQ(r.value().max_tokens, 123);
  l.max_tokens = 50;  // the default never exceeds the cap
  EXPECT_EQ(parse(minimal(), l).value().max_tokens, 50);
  EXPECT_FALSE(r.value().stream);
}

json tool(const std::string& name, json parameters = {{"type", "object"}, {"properties", json::object()}}) {
  return {{"type", "function"}, {"function", {{"name", name}, {"parameters", std::move(parameters)}}}};
}

struct BadCase {
  std::string name;
  std::function<void(json&)> edit;
  std::string param;
  std::string message_part;
};

TEST(OpenAiJsonTest, BadInputNamesTheField) {
  std::vector<BadCase> cases = {
      {"no model", [](json& j) { j.erase("model"); }, "model", "required"},
      {"model type", [](json& j) { j["model"] = 3; }, "model", "must be a string"},
      {"no messages", [](json& j) { j.erase("messages"); }, "messages", "required"},
      {"messages type", [](json& j) { j["messages"] = "hi"; }, "messages", "an array"},
      {"empty messages", [](json& j) { j["messages"] = json::array(); }, "messages", "empty"},
      {"message not object", [](json& j) { j["messages"][0] = 1; }, "messages[0]", "an object"},
      {"bad role", [](json& j) { j["messages"][0]["role"] = "wizard"; }, "messages[0].role", "wizard"},
      {"content type", [](json& j) { j["messages"][0]["content"] = 5; }, "messages[0].content", "string"},
      {"image part", [](json& j) { j["messages"][0]["content"] = {{{"type", "image_url"}}}; },
       "messages[0].content[0].type", "only text"},
      {"temperature type", [](json& j) { j["temperature"] = "hot"; }, "temperature", "a number"},
      {"temperature range", [](json& j) { j["temperature"] = 3; }, "temperature", "expected a value in [0"},
      {"top_p zero", [](json& j) { j["top_p"] = 0; }, "top_p", "greater than 0"},
      {"top_k float", [](json& j) { j["top_k"] = 1.5; }, "top_k", "an integer"},
      {"max_tokens zero", [](json& j) { j["max_tokens"] = 0; }, "max_tokens", "expected 1"},
      {"max_tokens cap", [](json& j) { j["max_tokens"] = 100000; }, "max_tokens", "at most 4096"},
      {"stop type", [](json& j) { j["stop"] = 1; }, "stop", "a string or an array"},
      {"stop too many", [](json& j) { j["stop"] = {"a", "b", "c", "d", "e"}; }, "stop", "more than 4"},
      {"stop empty", [](json& j) { j["stop"] = {""}; }, "stop", "empty string"},
      {"seed float", [](json& j) { j["seed"] = 0.5; }, "seed", "an integer"},
      {"stream type", [](json& j) { j["stream"] = "yes"; }, "stream", "a boolean"},
      {"n over the limit", [](json& j) { j["n"] = 9; }, "n", "expected 1..8"},
      {"tool without function", [](json& j) { j["tools"] = {{{"type", "function"}}}; }, "tools[0].function",
       "must be an object"},
      {"tool type", [](json& j) { j["tools"] = {{{"type", "retrieval"}}}; }, "tools[0].type", "\"function\""},
      {"tool name", [](json& j) { j["tools"] = {tool("get weather")}; }, "tools[0].function.name", "a-z"},
      {"tool schema not an object", [](json& j) { j["tools"] = {tool("f", json::array())}; },
       "tools[0].function.parameters", "a JSON schema object"},
      {"tool schema of a string", [](json& j) { j["tools"] = {tool("f", {{"type", "string"}})}; },
       "tools[0].function.parameters.type", "must be \"object\""},
      {"same tool twice", [](json& j) { j["tools"] = {tool("f"), tool("f")}; }, "tools[1].function.name", "twice"},
      {"unknown tool_choice", [](json& j) { j["tools"] = {tool("f")}; j["tool_choice"] = "always"; }, "tool_choice",
       "expected auto, none, required"},
      {"tool_choice names an undeclared function",
       [](json& j) {
         j["tools"] = {tool("f")};
         j["tool_choice"] = {{"type", "function"}, {"function", {{"name", "g"}}}};
       },
       "tool_choice", "does not declare"},
      {"tool_choice without tools", [](json& j) { j["tool_choice"] = "required"; }, "tool_choice", "needs 'tools'"},
      {"forced call with an unsupported schema",
       [](json& j) {
         j["tools"] = {tool("f", {{"type", "object"}, {"properties", {{"a", {{"type", "string"}, {"pattern", "x+"}}}}}})};
         j["tool_choice"] = "required";
       },
       "tools[0].function.parameters", "pattern"},
      {"tool message without a matching call",
       [](json& j) { j["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_x"}, {"content", "1"}}); },
       "messages[1].tool_call_id", "call_x"},
      {"tool message without tool_call_id", [](json& j) { j["messages"].push_back({{"role", "tool"}, {"content", "1"}}); },
       "messages[1].tool_call_id", "required"},
      {"tool_calls on a user message",
       [](json& j) { j["messages"][0]["tool_calls"] = json::array(); }, "messages[0].tool_calls", "only allowed"},
      {"tool call without id",
       [](json& j) {
         j["messages"].push_back({{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}}}}}}});
       },
       "messages[1].tool_calls[0].id", "required"},
      {"response_format type", [](json& j) { j["response_format"] = {{"type", "xml"}}; }, "response_format.type",
       "expected text, json_object or json_schema"},
      {"json_schema without name",
       [](json& j) { j["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"schema", {{"type", "object"}}}}}}; },
       "response_format.json_schema.name", "required"},
      {"json_schema unsupported keyword",
       [](json& j) {
         j["response_format"] = {{"type", "json_schema"},
                                 {"json_schema", {{"name", "x"}, {"schema", {{"type", "string"}, {"format", "email"}}}}}};
       },
       "response_format.json_schema.schema", "format"},
      {"top_logprobs without logprobs", [](json& j) { j["top_logprobs"] = 3; }, "top_logprobs", "needs 'logprobs'"},
      {"top_logprobs range", [](json& j) { j["logprobs"] = true; j["top_logprobs"] = 21; }, "top_logprobs",
       "expected 0..20"},
      {"thinking type", [](json& j) { j["chat_template_kwargs"] = {{"enable_thinking", "no"}}; },
       "chat_template_kwargs.enable_thinking", "a boolean"},
  };
  for (const auto& c : cases) {
    json j = minimal();
    c.edit(j);
    auto r = parse(j);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().http_status, 400) << c.name;
    EXPECT_EQ(r.error().type, "invalid_request_error") << c.name;
    EXPECT_EQ(r.error().param, c.param) << c.name << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.name << ": " << r.error().message;
  }
}

TEST(OpenAiJsonTest, MalformedJsonAndPromptLimit) {
  Limits l;
  auto r = parse_chat_request("{\"model\": ", l);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos);
  r = parse_chat_request("[1,2]", l);
  ASSERT_FALSE(r.ok());
  r = parse_chat_request("{\"model\":\"k\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", l);
  ASSERT_FALSE(r.ok()) << "invalid UTF-8 must be refused";
  // Nesting is refused before anything walks it: a million brackets in a schema would
  // otherwise recurse the compiler (and any dump) off the stack.
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  const std::string deep_schema = R"({"model":"k","messages":[{"role":"user","content":"hi"}],)"
                                  R"("response_format":{"type":"json_schema","json_schema":{"name":"x","schema":)" +
                                  deep + "}}}";
  r = parse_chat_request(deep_schema, l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "the body nests JSON deeper than 128 levels");
  EXPECT_FALSE(parse_feedback_request("{\"message_id\":" + deep + "}").ok());
  EXPECT_EQ(json_nesting(R"({"a": "[[[[{{{", "b": [1, {"c": "\"]]"}]})"), 3u);  // brackets in strings skipped
  EXPECT_EQ(json_nesting("]]]{"), 1u);  // any bytes
  EXPECT_EQ(json_nesting(""), 0u);

  l.max_prompt_chars = 5;
  json j = minimal();
  j["messages"][0]["content"] = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";  // 5 code points, 10 bytes
  EXPECT_TRUE(parse(j, l).ok());
  j["messages"][0]["content"] = "abcdef";
  r = parse(j, l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "context_length_exceeded");
}

TEST(OpenAiJsonTest, FeedbackParsing) {
  auto f = parse_feedback_request(R"({"message_id":"m1","rating":-1,"correction":"Paris"})");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.value().rating, -1);
  EXPECT_EQ(*f.value().correction, "Paris");
  EXPECT_FALSE(parse_feedback_request(R"({"message_id":"m1","rating":0})").ok());
  EXPECT_FALSE(parse_feedback_request(R"({"message_id":"m1","rating":"1"})").ok());
  EXPECT_EQ(parse_feedback_request(R"({"rating":1})").error().param, "message_id");
  EXPECT_FALSE(parse_feedback_request("nope").ok());
}

TEST(OpenAiJsonTest, ResponseShapes) {
  ChatTicket t{"msg_7", "kaizen@v3", 1700000000, false, nullptr};
  json c = json::parse(completion_body(t, {ChoiceOutput{"Hello", {}, {}}}, ChatResult{{"stop"}, {5, 2, 3}}, false));
  EXPECT_EQ(c["id"], "msg_7");
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["model"], "kaizen@v3");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 7);
  EXPECT_EQ(c["usage"]["prompt_tokens_details"]["cached_tokens"], 3);  // OpenAI's field for cache hits

  std::string chunk = sse_delta_chunk(t, ChoiceDelta{0, "a\nb", {}, {}}, 0, false, 0);
  ASSERT_EQ(chunk.rfind("data: ", 0), 0u);
  ASSERT_EQ(chunk.substr(chunk.size() - 2), "\n\n");
  json k = json::parse(chunk.substr(6));
  EXPECT_EQ(k["object"], "chat.completion.chunk");
  EXPECT_EQ(k["choices"][0]["delta"]["content"], "a\nb");

  json e = json::parse(error_body(Error::ModelNotFound("kaizen@v9")));
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(e["error"]["param"], "model");
  EXPECT_TRUE(json::parse(error_body(Error::Internal("x")))["error"]["param"].is_null());

  // Invalid UTF-8 from an engine bug is replaced, not thrown.
  EXPECT_NO_THROW(sse_delta_chunk(t, ChoiceDelta{0, "\xff", {}, {}}, 0, false, 0));
}

}  // namespace
}  // namespace kaizen::daemon
