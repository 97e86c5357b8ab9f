// ToolCallParser: Hermes <tool_call> blocks (Qwen3) and Llama-3.1 JSON answers, fed whole
// and split at every byte; malformed blocks come back as text; parsed calls render back to
// the model's bytes through the Qwen3 template.
#include <gtest/gtest.h>

#include "learning/text/chat_template.h"
#include "learning/text/tool_call_parser.h"

namespace kaizen::text {
namespace {

// Events with adjacent texts merged: what a client sees, independent of chunking.
struct Out {
  std::vector<std::string> texts;  // "" placeholder where a call sits
  std::vector<ParsedToolCall> calls;
  std::string flat;  // texts and calls in order: calls as [name|arguments]
};

Out collect(const std::vector<ToolCallParser::Event>& events) {
  Out o;
  bool last_text = false;
  for (const auto& e : events) {
    if (e.call) {
      EXPECT_TRUE(e.text.empty());
      o.calls.push_back(*e.call);
      o.flat += "[" + e.call->name + "|" + e.call->arguments + "]";
      last_text = false;
    } else {
      EXPECT_FALSE(e.text.empty()) << "empty text event";
      if (last_text) {
        o.texts.back() += e.text;
      } else {
        o.texts.push_back(e.text);
      }
      o.flat += e.text;
      last_text = true;
    }
  }
  return o;
}

void append(std::vector<ToolCallParser::Event>& all, std::vector<ToolCallParser::Event> more) {
  for (auto& e : more) all.push_back(std::move(e));
}

std::string parse_flat(TemplateKind kind, const std::vector<std::string>& pieces) {
  ToolCallParser p(kind);
  std::vector<ToolCallParser::Event> all;
  for (const auto& piece : pieces) append(all, p.push(piece));
  append(all, p.finish());
  return collect(all).flat;
}

std::string parse_flat(TemplateKind kind, const std::string& output) {
  return parse_flat(kind, std::vector<std::string>{output});
}

// Whole, split once at every offset, and byte by byte: the same texts and calls.
void expect_split_invariant(TemplateKind kind, const std::string& output) {
  const std::string whole = parse_flat(kind, output);
  for (size_t k = 0; k <= output.size(); ++k) {
    ASSERT_EQ(parse_flat(kind, {output.substr(0, k), output.substr(k)}), whole)
        << "split at " << k << " of " << output;
  }
  std::vector<std::string> bytes;
  for (char c : output) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_flat(kind, bytes), whole) << output;
}

const TemplateKind kQwen = TemplateKind::kQwen3;
const TemplateKind kLlama = TemplateKind::kLlama31;

TEST(ToolCallParser, HermesCallsAndText) {
  EXPECT_EQ(parse_flat(kQwen,
                       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", "
                       "\"arguments\": {\"location\": \"Paris\"}}\n</tool_call>"),
            "Let me check.[get_weather|{\"location\": \"Paris\"}]");
  // Parallel calls; compact, nested and non-ASCII arguments come back in Python's layout.
  EXPECT_EQ(
      parse_flat(kQwen,
                 "<tool_call>\n{\"name\":\"a\",\"arguments\":{\"x\":[1,2.50,{\"é\":null}]}}\n"
                 "</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": \"{\\\"raw\\\": 1}\"}"
                 "</tool_call>\n"),
      "[a|{\"x\": [1, 2.5, {\"é\": null}]}][b|{\"raw\": 1}]");
  // Lenient whitespace; "parameters"; no arguments at all.
  EXPECT_EQ(parse_flat(kQwen,
                       "<tool_call>  \r\n {\"name\": \"c\", \"parameters\": {}} \n\n"
                       "</tool_call><tool_call>{\"name\": \"d\"}</tool_call>"),
            "[c|{}][d|{}]");
  // Text after a call stays; whitespace the template writes around calls does not.
  EXPECT_EQ(parse_flat(kQwen, "A\n\n<tool_call>{\"name\": \"e\"}</tool_call>\n\nThen B.\n"),
            "A[e|{}]\n\nThen B.\n");
  // No calls: the output exactly.
  for (const std::string plain : {"Hello world  \n", "a < b and <tool_response> is not a tag", "",
                                  " \n ", "<tool_call", "ends with <"}) {
    EXPECT_EQ(parse_flat(kQwen, plain), plain);
  }
}

TEST(ToolCallParser, HermesMalformedBlocksAreText) {
  for (const std::string bad : {
           "<tool_call>\n{\"name\": \"x\", \"arguments\": {\"a\": }\n</tool_call>",  // bad JSON
           "<tool_call>[1, 2]</tool_call>",                      // not an object
           "<tool_call>{\"arguments\": {}}</tool_call>",         // no name
           "<tool_call>{\"name\": 7}</tool_call>",               // name not a string
           "<tool_call>{\"name\": \"x\"} trailing</tool_call>",  // junk after JSON
           "<tool_call>\n{\"name\": \"x\", \"arguments\": {}}",  // unterminated
       }) {
    EXPECT_EQ(parse_flat(kQwen, "Hi\n" + bad), "Hi\n" + bad);
    EXPECT_EQ(
        parse_flat(kQwen, bad + "\n<tool_call>{\"name\": \"ok\"}</tool_call>"),
        bad.find("</tool_call>") == std::string::npos
            ? bad + "\n<tool_call>{\"name\": \"ok\"}</tool_call>"  // one long unterminated body
            : bad + "[ok|{}]");
  }
}

TEST(ToolCallParser, HermesStreamsWhatCannotBecomeATag) {
  ToolCallParser p(kQwen);
  auto e = p.push("Hello <tool");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, "Hello");  // " <tool" could still open a call
  e = p.push("box> x");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, " <toolbox> x");
  e = p.push("\xC3");  // first byte of "é"
  EXPECT_TRUE(e.empty());
  e = p.push("\xA9<tool_call>{\"name\": \"f\", \"arguments\": {}}");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, "é");
  EXPECT_FALSE(p.saw_call());
  e = p.push("</tool_call>");
  ASSERT_EQ(e.size(), 1u);
  ASSERT_TRUE(e[0].call);
  EXPECT_EQ(e[0].call->name, "f");
  EXPECT_TRUE(p.saw_call());
  EXPECT_TRUE(p.finish().empty());
  EXPECT_TRUE(p.push("more").empty());  // done
}

TEST(ToolCallParser, LlamaJsonAnswers) {
  EXPECT_EQ(
      parse_flat(kLlama, "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}"),
      "[get_weather|{\"location\": \"Paris\"}]");
  EXPECT_EQ(parse_flat(kLlama, " <|python_tag|>{\"name\":\"a\",\"parameters\":{\"q\":\"}{\\\"\"}}"),
            "[a|{\"q\": \"}{\\\"\"}]");
  EXPECT_EQ(parse_flat(kLlama,
                       "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", "
                       "\"arguments\": {\"n\": 1.0}}\n"),
            "[a|{}][b|{\"n\": 1.0}]");
  // Not calls: text as written.
  for (const std::string text :
       {"Hello, {\"name\": \"x\", \"parameters\": {}}", "{\"answer\": 42}", "{\"name\": \"x\"}",
        "{\"name\": \"x\", \"parameters\": {", "<|python_tag|>brave_search.call(query=\"x\")", "",
        "  ", "<|python"}) {
    EXPECT_EQ(parse_flat(kLlama, text), text);
  }
  EXPECT_EQ(parse_flat(kLlama, "{\"name\": \"a\", \"parameters\": {}} and then text"),
            "[a|{}] and then text");
  // Plain answers stream at once.
  ToolCallParser p(kLlama);
  auto e = p.push("Hel");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, "Hel");
  ToolCallParser q(kLlama);
  EXPECT_TRUE(q.push("{\"name\": \"a\", ").empty());  // held until the object closes
  e = q.push("\"parameters\": {}}");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(e[0].call);
}

TEST(ToolCallParser, SplitAnywhereGivesTheSameResult) {
  for (const std::string& out : {
           std::string("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                       "{\"location\": \"Hà Nội\", \"days\": [1, 2]}}\n</tool_call>\n<tool_call>\n"
                       "{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"),
           std::string("a <tool_c <tool_call>{\"name\": 1}</tool_call> 😀 \n<tool_call>{\"name\": "
                       "\"x\", \"arguments\": \"s\"}</tool_call>\n\n tail \n"),
           std::string("<tool_call>{\"name\": \"x\"}"),
       }) {
    expect_split_invariant(kQwen, out);
  }
  for (const std::string& out : {
           std::string("<|python_tag|>{\"name\": \"a\", \"parameters\": {\"s\": \"é}\"}}; "
                       "{\"name\": \"b\", \"parameters\": {}}"),
           std::string("\n{\"answer\": \"not a call\"} ok"),
           std::string("Xin chào 👋 <|python_tag|>"),
       }) {
    expect_split_invariant(kLlama, out);
  }
}

// A parsed answer, returned by the client as OpenAI sends it (arguments as a string), renders
// back to exactly what the model wrote.
TEST(ToolCallParser, ParsedCallsRenderBackToTheModelsBytes) {
  const auto t = ChatTemplate::of_kind(kQwen);
  for (const std::string& out : {
           std::string("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": "
                       "\"Paris\", \"n\": [1.5, true, null]}}\n</tool_call>"),
           std::string("Checking both.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n"
                       "</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"q\": "
                       "\"日本\"}}\n</tool_call>"),
       }) {
    ToolCallParser p(kQwen);
    auto events = p.push(out);
    append(events, p.finish());
    ChatMessage answer;
    answer.role = "assistant";
    for (const auto& e : events) {
      if (e.call) {
        answer.tool_calls.push_back({"call_x", e.call->name, e.call->arguments});
      } else {
        answer.content += e.text;
      }
    }
    EXPECT_EQ(t.render({{"user", "q"}, answer}, ChatOptions{false, true}),
              "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n" +
                  out + "<|im_end|>\n");
  }
}

}  // namespace
}  // namespace kaizen::text
