#include "daemon/http/openai_json.h"

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
      {"n", [](json& j) { j["n"] = 2; }, "n", "n=1"},
      {"tools", [](json& j) { j["tools"] = {{{"type", "function"}}}; }, "tools", "not supported"},
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
  ChatTicket t{"msg_7", "kaizen@v3", 1700000000, nullptr};
  json c = json::parse(completion_body(t, "Hello", ChatResult{"stop", {5, 2, 3}}));
  EXPECT_EQ(c["id"], "msg_7");
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["model"], "kaizen@v3");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 7);
  EXPECT_EQ(c["usage"]["prompt_tokens_details"]["cached_tokens"], 3);  // OpenAI's field for cache hits

  std::string chunk = sse_content_chunk(t, "a\nb");
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
  EXPECT_NO_THROW(sse_content_chunk(t, "\xff"));
}

}  // namespace
}  // namespace kaizen::daemon
