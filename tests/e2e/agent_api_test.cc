// The OpenAI API as agent frameworks use it, end to end on the real Service (tiny random
// model, real Qwen3 tokenizer and template): forced tool calls and structured outputs by
// constrained decoding (valid whatever the random model prefers), logprobs from the
// sampled distribution, n answers equal to n requests with the derived seeds, streaming
// tool calls, and /v1/completions equal to in-process generation of the plain prompt.
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "http_client.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/model/tiny.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"
#include "real_server.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon {
namespace {

using nlohmann::json;
using namespace kaizen::daemon::testing;
using kaizen::testing::TempDir;

json order_tool() {
  return {{"type", "function"},
          {"function",
           {{"name", "get_order_status"},
            {"description", "Status of an order"},
            {"parameters",
             {{"type", "object"},
              {"properties", {{"order_id", {{"type", "string"}, {"maxLength", 12}}}, {"urgent", {{"type", "boolean"}}}}},
              {"required", {"order_id", "urgent"}},
              {"additionalProperties", false}}}}}};
}

json catalog_tool() {
  return {{"type", "function"},
          {"function",
           {{"name", "search_catalog"},
            {"parameters",
             {{"type", "object"},
              {"properties", {{"query", {{"type", "string"}, {"maxLength", 20}}}, {"limit", {{"type", "integer"}}}}},
              {"required", {"query"}}}}}}};
}

class AgentApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TempDir();
    model::TinyModelSpec spec;
    spec.seed = 21;
    model::write_tiny_model(spec, *model_dir_ / "m", kaizen::testing::tokenizer_dir());
  }
  static void TearDownTestSuite() { delete model_dir_; }

  void SetUp() override {
    config_ = TestServer::default_config();  // the real defaults, plus the test's token and socket
    config_.model = *model_dir_ / "m";
    config_.state_dir = state_.path().string();
    config_.device = "cpu";
    config_.threads = 2;
    ASSERT_EQ(start_real_server(config_, &service_, &server_, &runner_), "");
  }
  void TearDown() override { stop_real_server(&service_, &server_, &runner_); }

  HttpResponse post(const std::string& path, const json& body) {
    return tcp_request(server_->tcp_port(),
                       make_request("POST", path, body.dump(), {std::string("Authorization: Bearer ") + kToken}));
  }
  HttpResponse admin(const std::string& op, const json& body = json::object()) {
    return unix_request(config_.socket, make_request("POST", "/admin/" + op, body.dump()));
  }
  json chat_ok(const json& body) {
    HttpResponse r = post("/v1/chat/completions", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json() : json::object();
  }
  static json ask(const std::string& user, int max_tokens = 40) {
    return {{"model", "kaizen"}, {"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", max_tokens}};
  }

  static TempDir* model_dir_;
  TempDir state_;
  Config config_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
};
TempDir* AgentApi::model_dir_ = nullptr;

// The arguments of a get_order_status call: exactly the declared keys with their types.
void expect_valid_order_args(const std::string& arguments) {
  json a = json::parse(arguments, nullptr, false);
  ASSERT_TRUE(a.is_object()) << arguments;
  EXPECT_EQ(a.size(), 2u) << arguments;
  ASSERT_TRUE(a.contains("order_id") && a["order_id"].is_string()) << arguments;
  EXPECT_LE(a["order_id"].get<std::string>().size(), 12u * 4) << arguments;
  EXPECT_TRUE(a.contains("urgent") && a["urgent"].is_boolean()) << arguments;
}

TEST_F(AgentApi, RequiredToolChoiceAlwaysYieldsAValidCallOfADeclaredFunction) {
  for (int seed = 0; seed < 4; ++seed) {
    for (double temperature : {0.0, 1.0}) {
      json body = ask("Where is my order A-17?", 200);
      body["tools"] = {order_tool(), catalog_tool()};
      body["tool_choice"] = "required";
      body["temperature"] = temperature;
      body["seed"] = seed;
      json r = chat_ok(body);
      const json& choice = r["choices"][0];
      ASSERT_EQ(choice["finish_reason"], "tool_calls") << r.dump();
      ASSERT_FALSE(choice["message"]["tool_calls"].empty()) << r.dump();
      for (const json& call : choice["message"]["tool_calls"]) {
        EXPECT_EQ(call["type"], "function");
        EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
        const std::string name = call["function"]["name"];
        ASSERT_TRUE(name == "get_order_status" || name == "search_catalog") << name;
        const std::string args = call["function"]["arguments"];
        if (name == "get_order_status") {
          expect_valid_order_args(args);
        } else {
          json a = json::parse(args, nullptr, false);
          ASSERT_TRUE(a.is_object() && a.contains("query") && a["query"].is_string()) << args;
        }
      }
    }
  }
}

TEST_F(AgentApi, NamedToolChoiceCallsThatFunctionAndStreamsTheCall) {
  json body = ask("Find me a kettle", 200);
  body["tools"] = {order_tool(), catalog_tool()};
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_order_status"}}}};
  body["parallel_tool_calls"] = false;
  body["temperature"] = 0;
  json r = chat_ok(body);
  ASSERT_EQ(r["choices"][0]["message"]["tool_calls"].size(), 1u) << r.dump();
  const json& call = r["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(call["function"]["name"], "get_order_status");
  expect_valid_order_args(call["function"]["arguments"]);

  body["stream"] = true;
  HttpResponse s = post("/v1/chat/completions", body);
  ASSERT_EQ(s.status, 200) << s.body;
  auto events = sse_events(s.body);
  ASSERT_EQ(events.back(), "[DONE]");
  json streamed_call;
  std::string finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json c = json::parse(events[i]);
    const json& choice = c["choices"][0];
    if (choice["delta"].contains("tool_calls")) streamed_call = choice["delta"]["tool_calls"][0];
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(finish, "tool_calls");
  ASSERT_TRUE(streamed_call.is_object()) << s.body;
  EXPECT_EQ(streamed_call["index"], 0);
  // Greedy: the streamed call is the same call (ids differ per answer).
  EXPECT_EQ(streamed_call["function"], call["function"]);
}

TEST_F(AgentApi, JsonSchemaAndJsonObjectAnswersAlwaysParse) {
  const json schema = {{"type", "object"},
                       {"properties",
                        {{"answer", {{"type", "string"}, {"maxLength", 30}}},
                         {"confidence", {{"type", "number"}}},
                         {"tags", {{"type", "array"}, {"items", {{"type", "string"}, {"enum", {"a", "b"}}}}, {"maxItems", 3}}}}},
                       {"required", {"answer", "confidence", "tags"}},
                       {"additionalProperties", false}};
  for (int seed = 0; seed < 3; ++seed) {
    json body = ask("Describe Sabitech in JSON", 120);
    body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "about"}, {"schema", schema}, {"strict", true}}}};
    body["temperature"] = 1.0;
    body["seed"] = seed;
    json r = chat_ok(body);
    const std::string content = r["choices"][0]["message"]["content"];
    json a = json::parse(content, nullptr, false);
    ASSERT_TRUE(a.is_object()) << content;
    EXPECT_TRUE(a["answer"].is_string() && a["confidence"].is_number() && a["tags"].is_array()) << content;
    EXPECT_LE(a["tags"].size(), 3u);
    EXPECT_EQ(a.size(), 3u) << content;

    body["response_format"] = {{"type", "json_object"}};
    json o = chat_ok(body);
    const std::string object_text = o["choices"][0]["message"]["content"];
    EXPECT_TRUE(json::parse(object_text, nullptr, false).is_object()) << object_text;
  }
  // A nested model as pydantic writes it: $defs and $ref.
  const json nested = json::parse(R"({"$defs": {"Office": {"type": "object", "properties": {
      "city": {"enum": ["Hanoi", "Hue"]}, "floor": {"type": "integer"}}, "required": ["city", "floor"],
      "additionalProperties": false}}, "type": "object", "properties": {"hq": {"$ref": "#/$defs/Office"},
      "branches": {"type": "array", "items": {"$ref": "#/$defs/Office"}, "maxItems": 2}},
      "required": ["hq", "branches"], "additionalProperties": false})");
  json body = ask("Where are the offices?", 160);
  body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "offices"}, {"schema", nested}}}};
  body["temperature"] = 1.0;
  body["seed"] = 5;
  const std::string content = chat_ok(body)["choices"][0]["message"]["content"];
  json a = json::parse(content, nullptr, false);
  ASSERT_TRUE(a.is_object()) << content;
  auto office_ok = [](const json& o) {
    return o.is_object() && o.size() == 2 && (o["city"] == "Hanoi" || o["city"] == "Hue") && o["floor"].is_number_integer();
  };
  EXPECT_TRUE(office_ok(a["hq"])) << content;
  ASSERT_TRUE(a["branches"].is_array()) << content;
  EXPECT_LE(a["branches"].size(), 2u) << content;
  for (const auto& b : a["branches"]) EXPECT_TRUE(office_ok(b)) << content;
}

TEST_F(AgentApi, GreedyLogprobsAreTheTopAlternativeAndSpellTheAnswer) {
  json body = ask("Hello there", 10);
  body["temperature"] = 0;
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  json r = chat_ok(body);
  const json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(static_cast<int64_t>(content.size()), r["usage"]["completion_tokens"].get<int64_t>());
  std::string bytes;
  for (const json& t : content) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    // Greedy picks the most likely token: it is the first alternative, with its logprob.
    EXPECT_EQ(t["top_logprobs"][0]["bytes"], t["bytes"]);
    EXPECT_DOUBLE_EQ(t["top_logprobs"][0]["logprob"].get<double>(), t["logprob"].get<double>());
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][1]["logprob"].get<double>());
    for (int b : t["bytes"]) bytes += static_cast<char>(b);
  }
  if (r["choices"][0]["finish_reason"] == "length") {
    EXPECT_EQ(bytes, r["choices"][0]["message"]["content"].get<std::string>());
  }

  body["stream"] = true;
  HttpResponse s = post("/v1/chat/completions", body);
  ASSERT_EQ(s.status, 200) << s.body;
  json streamed = json::array();
  for (const std::string& e : sse_events(s.body)) {
    if (e == "[DONE]") break;
    json c = json::parse(e);
    const json& lp = c["choices"][0]["logprobs"];
    if (lp.is_object()) {
      for (const json& t : lp["content"]) streamed.push_back(t);
    }
  }
  EXPECT_EQ(streamed, content);
}

TEST_F(AgentApi, NAnswersEqualNRequestsWithTheDerivedSeeds) {
  json body = ask("Tell me about Chorei", 12);
  body["temperature"] = 1.0;
  body["seed"] = 1234;
  body["n"] = 3;
  json together = chat_ok(body);
  ASSERT_EQ(together["choices"].size(), 3u);
  int64_t completion_tokens = 0;
  std::set<std::string> distinct;
  for (int i = 0; i < 3; ++i) {
    json one = body;
    one["n"] = 1;
    one["seed"] = 1234 + i;
    json alone = chat_ok(one);
    EXPECT_EQ(together["choices"][i]["index"], i);
    EXPECT_EQ(together["choices"][i]["message"]["content"], alone["choices"][0]["message"]["content"]) << i;
    completion_tokens += alone["usage"]["completion_tokens"].get<int64_t>();
    distinct.insert(alone["choices"][0]["message"]["content"].get<std::string>());
  }
  EXPECT_EQ(together["usage"]["completion_tokens"].get<int64_t>(), completion_tokens);
  EXPECT_GT(distinct.size(), 1u) << "different seeds should give different samples";
}

TEST_F(AgentApi, CompletionsEqualInProcessGenerationOfThePlainPrompt) {
  const std::string prompt = "Sabitech was founded in";
  HttpResponse r = post("/v1/completions",
                        {{"model", "base"}, {"prompt", prompt}, {"max_tokens", 10}, {"temperature", 0}, {"logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  EXPECT_EQ(j["object"], "text_completion");
  auto m = generate::ChatModel::load(*model_dir_ / "m", {"cpu", "float32"});
  generate::GenerateOptions o;
  o.max_new_tokens = 10;
  o.eos_token_ids = m.eos_token_ids;
  auto direct = generate::generate(*m.decoder, m.tokenizer, m.encode(prompt), nullptr, o);
  EXPECT_EQ(j["choices"][0]["text"], direct.text);
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int64_t>(), static_cast<int64_t>(direct.ids.size()));
  EXPECT_EQ(j["choices"][0]["logprobs"]["tokens"].size(), direct.ids.size());
  EXPECT_EQ(j["choices"][0]["logprobs"]["top_logprobs"][0].size(), 2u);

  HttpResponse s = post("/v1/completions",
                        {{"model", "base"}, {"prompt", prompt}, {"max_tokens", 10}, {"temperature", 0}, {"stream", true}});
  ASSERT_EQ(s.status, 200) << s.body;
  std::string text;
  for (const std::string& e : sse_events(s.body)) {
    if (e == "[DONE]") break;
    json c = json::parse(e);
    EXPECT_EQ(c["object"], "text_completion");
    text += c["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, direct.text);
}

TEST_F(AgentApi, ToolHistoryRendersAndBadToolInputIsA400) {
  json body = ask("Where is order 7?", 8);
  body["tools"] = {order_tool()};
  body["messages"].push_back({{"role", "assistant"},
                              {"content", nullptr},
                              {"tool_calls",
                               {{{"id", "call_1"},
                                 {"type", "function"},
                                 {"function", {{"name", "get_order_status"}, {"arguments", R"({"order_id": "7", "urgent": false})"}}}}}}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "shipped"}});
  json r = chat_ok(body);
  EXPECT_TRUE(r["choices"][0]["message"].contains("content"));
  json bad = body;
  bad["n"] = 99;
  HttpResponse e = post("/v1/chat/completions", bad);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.json()["error"]["param"], "n");
  bad = body;
  bad["messages"][2]["tool_call_id"] = "call_9";
  e = post("/v1/chat/completions", bad);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.json()["error"]["param"], "messages[2].tool_call_id");
}

// The learning loop sees function calling as the client did: a rated answer that called
// a function becomes an example with its tool calls, the conversation's tool history and
// the tools in the order the client sent them; feedback export writes OpenAI's
// fine-tuning format, which renders to the very prompt the answer was generated from.
TEST_F(AgentApi, RatedToolCallsBecomeExamplesThatExportInTheFineTuningFormat) {
  using ordered = nlohmann::ordered_json;
  // Keys deliberately not in sorted order: the template shows them as sent.
  const ordered tools = ordered::parse(R"([{"type":"function","function":{"name":"get_order_status",)"
                                       R"("description":"Status of an order","parameters":{"type":"object",)"
                                       R"("properties":{"order_id":{"type":"string","maxLength":12}},)"
                                       R"("required":["order_id"]}}}])");
  ordered body = {{"model", "kaizen"},
                  {"messages", ordered::array({{{"role", "user"}, {"content", "Where is order 7?"}},
                                               {{"role", "assistant"},
                                                {"content", nullptr},
                                                {"tool_calls", ordered::array({{{"id", "call_a"},
                                                                                {"type", "function"},
                                                                                {"function",
                                                                                 {{"name", "get_order_status"},
                                                                                  {"arguments", R"({"order_id": "7"})"}}}}})}},
                                               {{"role", "tool"}, {"tool_call_id", "call_a"}, {"content", "shipped"}},
                                               {{"role", "user"}, {"content", "And order 8?"}}})},
                  {"tools", tools},
                  {"tool_choice", "required"},
                  {"temperature", 0},
                  {"max_tokens", 200},
                  {"user", "alice"}};
  HttpResponse r = tcp_request(server_->tcp_port(), make_request("POST", "/v1/chat/completions", body.dump(),
                                                                 {std::string("Authorization: Bearer ") + kToken}));
  ASSERT_EQ(r.status, 200) << r.body;
  const json answer = r.json();
  const json& calls = answer["choices"][0]["message"]["tool_calls"];
  ASSERT_FALSE(calls.empty()) << r.body;

  HttpResponse fb = post("/v1/feedback", {{"message_id", answer["id"]}, {"rating", 1}, {"user", "alice"}});
  ASSERT_EQ(fb.status, 200) << fb.body;
  EXPECT_EQ(fb.json()["status"], "queued_for_review");
  HttpResponse pending = admin("review");
  ASSERT_EQ(pending.status, 200) << pending.body;
  ASSERT_EQ(pending.json()["pending"].size(), 1u) << pending.body;
  const json example = pending.json()["pending"][0];
  const json& msgs = example["messages"];
  // system (the configured prompt, if any), user, assistant call, tool result, user, answer.
  ASSERT_GE(msgs.size(), 5u) << example.dump();
  const json& last = msgs.back();
  EXPECT_EQ(last["role"], "assistant");
  ASSERT_EQ(last["tool_calls"].size(), calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(last["tool_calls"][i]["id"], calls[i]["id"]);  // the ids the client saw
    EXPECT_EQ(last["tool_calls"][i]["function"], calls[i]["function"]);
  }
  const json& result = msgs[msgs.size() - 3];
  EXPECT_EQ(result["role"], "tool");
  EXPECT_EQ(result["tool_call_id"], "call_a");
  EXPECT_EQ(msgs[msgs.size() - 4]["tool_calls"][0]["function"]["arguments"], R"({"order_id": "7"})");

  ASSERT_EQ(admin("review/approve", {{"id", example["id"]}}).status, 200);
  HttpResponse exported = admin("feedback/export");
  ASSERT_EQ(exported.status, 200) << exported.body;
  ASSERT_EQ(exported.json()["examples"].size(), 1u);
  const std::string line = exported.json()["examples"][0]["line"];
  const ordered parsed = ordered::parse(line);
  EXPECT_EQ(parsed["tools"].dump(), tools.dump()) << "the tools keep the client's key order";

  // The exported line, read as training data, renders to the prompt the answer came from:
  // the same tokens, then the answer (the tool calls) to learn.
  const std::string model_dir = *model_dir_ / "m";
  auto tokenizer = text::Tokenizer::from_model_dir(model_dir);
  const text::ChatTemplate tpl = text::ChatTemplate::from_model_dir(model_dir);
  std::vector<ordered> line_tools;
  auto messages = train::parse_chat_record(line, nullptr, &line_tools);
  train::Example ex = train::encode_example(messages, *tokenizer, tpl, 4096, nullptr, line_tools);
  size_t prompt_len = 0;
  while (prompt_len < ex.loss.size() && ex.loss[prompt_len] == 0) ++prompt_len;
  EXPECT_EQ(static_cast<int64_t>(prompt_len), answer["usage"]["prompt_tokens"].get<int64_t>());
  EXPECT_NE(ex.answer.find("<tool_call>"), std::string::npos) << ex.answer;
  EXPECT_NE(ex.answer.find(calls[0]["function"]["name"].get<std::string>()), std::string::npos) << ex.answer;
}

}  // namespace
}  // namespace kaizen::daemon
