// Forced tool calls in the Qwen3/Hermes layout: only declared names, valid arguments, one
// call or several.
#include "learning/grammar/tool_call.h"

#include <gtest/gtest.h>

#include "grammar_test_util.h"

namespace kaizen::grammar {
namespace {

using nlohmann::json;
using testing::is_prefix;
using testing::matches;

std::string call(const std::string& name, const std::string& args) {
  return "<tool_call>\n{\"name\": \"" + name + "\", \"arguments\": " + args + "}\n</tool_call>";
}

std::vector<ToolSpec> weather_tools() {
  return {{"get_weather",
           json::parse(R"({"type": "object", "properties": {
               "city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]})"),
           {}},
          {"get", json(nullptr)},
          {"search", json::object()}};
}

TEST(ToolCall, OnlyDeclaredNamesWithValidArguments) {
  const auto g = tool_call_grammar(weather_tools(), false);
  EXPECT_TRUE(matches(g, call("get_weather", R"({"city": "Paris"})")));
  EXPECT_TRUE(matches(g, call("get_weather", R"({"city": "Paris", "unit": "c"})")));
  EXPECT_TRUE(matches(g, call("get", R"({"any": [1, {"x": null}]})")));
  EXPECT_TRUE(matches(g, call("search", "{}")));
  EXPECT_FALSE(matches(g, call("get_weathe", "{}")));
  EXPECT_FALSE(matches(g, call("delete_all", "{}")));
  EXPECT_FALSE(matches(g, call("get_weather", R"({"unit": "c"})")));
  EXPECT_FALSE(matches(g, call("get_weather", R"({"city": 1})")));
  EXPECT_FALSE(matches(g, call("get", "[]")));
  EXPECT_FALSE(is_prefix(g, "<tool_call>{"));
  EXPECT_FALSE(is_prefix(g, "<tool_call>\n{\"arguments\""));
  EXPECT_FALSE(matches(g, call("get", "{}") + "\n" + call("get", "{}")));  // single
}

TEST(ToolCall, ParallelCallsJoinedByNewline) {
  const auto g = tool_call_grammar(weather_tools(), true);
  EXPECT_TRUE(matches(g, call("get", "{}")));
  EXPECT_TRUE(matches(g, call("get", "{}") + "\n" + call("get_weather", R"({"city": "Oslo"})")));
  EXPECT_FALSE(matches(g, call("get", "{}") + "\n"));
  EXPECT_FALSE(matches(g, call("get", "{}") + "\n\n" + call("get", "{}")));
}

// Llama-3.1's layout: the answer is the call's JSON, "parameters" for the arguments; one
// call (its template renders one per message), whatever `parallel` says.
TEST(ToolCall, LlamaJsonLayout) {
  for (bool parallel : {false, true}) {
    const auto g = tool_call_grammar(weather_tools(), parallel, ToolCallFormat::kLlamaJson);
    EXPECT_TRUE(matches(g, R"({"name": "get_weather", "parameters": {"city": "Paris"}})"));
    EXPECT_TRUE(matches(g, R"({"name": "search", "parameters": {}})"));
    EXPECT_FALSE(matches(g, R"({"name": "get_weather", "parameters": {"unit": "c"}})"));
    EXPECT_FALSE(matches(g, R"({"name": "get_weather", "arguments": {"city": "Paris"}})"));
    EXPECT_FALSE(matches(g, call("get", "{}")));
    EXPECT_FALSE(matches(g, R"({"name": "search", "parameters": {}})"
                            "\n"
                            R"({"name": "search", "parameters": {}})"));
    EXPECT_FALSE(matches(g, R"({"name": "delete_all", "parameters": {}})"));
  }
}

TEST(ToolCall, KeepsTheRequestsPropertyOrder) {
  ToolSpec t{"f", json::parse(R"({"properties": {"b": {"type": "null"}, "a": {"type": "null"}}})"),
             nlohmann::ordered_json::parse(
                 R"({"properties": {"b": {"type": "null"}, "a": {"type": "null"}}})")};
  const auto g = tool_call_grammar({t}, false);
  EXPECT_TRUE(matches(g, call("f", R"({"b": null, "a": null})")));
  EXPECT_FALSE(matches(g, call("f", R"({"a": null, "b": null})")));
}

TEST(ToolCall, SchemaErrorsNameTheTool) {
  auto error_of = [](const std::vector<ToolSpec>& tools) -> std::string {
    try {
      tool_call_grammar(tools, false);
    } catch (const SchemaError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of({{"a", json::object()},
                      {"b",
                       json::parse(R"({"type": "object", "properties": {"x": {"format": "uri"}}})"),
                       {}}}),
            "tools[1].function.parameters.properties.x: unsupported keyword 'format'");
  EXPECT_EQ(error_of({}), "tools: at least one tool is required");
  EXPECT_EQ(error_of({{"a", json(nullptr), {}}, {"a", json(nullptr), {}}}),
            "tools[1].function.name: repeated tool name 'a'");
  EXPECT_EQ(error_of({{"", json(nullptr), {}}}), "tools[0].function.name: empty");
  EXPECT_EQ(error_of({{"a", json::parse(R"({"type": "string"})"), {}}}),
            "tools[0].function.parameters: 'type' must be \"object\"");
}

// On the real vocabulary the model's own <tool_call> token (an added, non-special token)
// opens the call, as do the plain-text tokens spelling it.
TEST(ToolCall, Qwen3ToolCallTokenIsAllowed) {
  const auto vocab = testing::qwen3_vocab();
  Matcher m(tool_call_grammar(weather_tools(), false), vocab);
  const auto ids = testing::allowed(m);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 151657), ids.end());  // <tool_call>
  EXPECT_TRUE(m.accept_token(151657));
  EXPECT_TRUE(m.accept_bytes("\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"X\"}}\n"));
  EXPECT_TRUE(m.accept_token(151658));  // </tool_call>
  EXPECT_TRUE(m.must_finish());
}

}  // namespace
}  // namespace kaizen::grammar
