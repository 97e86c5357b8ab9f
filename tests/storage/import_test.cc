// Knowledge import from OpenAI chat JSONL: good lines imported, bad lines reported with
// line number and reason, idempotent on re-import.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "storage/import.h"
#include "storage/store.h"
#include "store_test_util.h"

namespace kaizen::storage {
namespace {

const char* kFile =
    R"({"messages":[{"role":"system","content":"You are kaizen."},{"role":"user","content":"CHOREI có nghĩa là gì?"},{"role":"assistant","content":"CHOREI là tên công ty."}]})"
    "\n"
    "\n"  // blank line: skipped, not an error
    R"({"messages":[{"role":"user","content":"Bạn có biết về công ty sabitech không?"},{"role":"assistant","content":"Có."}]})"
    "\n"
    "this is not json\n"
    R"({"messages":[{"role":"user","content":"q"},{"role":"user","content":"no answer"}]})"
    "\n"
    R"({"messages":[{"role":"bot","content":"x"},{"role":"assistant","content":"y"}]})"
    "\n"
    R"({"messages":[]})"
    "\n"
    R"({"prompt":"old format","completion":"x"})"
    "\n"
    R"({"messages":[{"role":"user","content":42},{"role":"assistant","content":"y"}]})"
    "\n"
    R"({"messages":[{"role":"user","content":"Bạn có biết về công ty sabitech không?"},{"role":"assistant","content":"Có."}]})"
    "\r\n";  // same content as line 3, Windows line end

TEST(ParseChatLineTest, Reasons) {
  Example e;
  EXPECT_TRUE(
      parse_chat_line(R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})", &e)
          .ok());
  EXPECT_EQ(e.messages.size(), 2u);
  auto reason = [&](const std::string& line) { return parse_chat_line(line, &e).message(); };
  EXPECT_EQ(reason("[1,2]"), "not a JSON object");
  EXPECT_EQ(reason("{"), "not valid JSON");
  EXPECT_EQ(reason(R"({"messages":[{"role":"assistant","content":"b"}]})"), "no user message");
  EXPECT_NE(reason(R"({"messages":[{"role":"user","content":"a"}]})")
                .find("last message must be from the assistant"),
            std::string::npos);
  // Optional held-out paraphrases of the question.
  const std::string qa = R"("messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}])";
  ASSERT_TRUE(parse_chat_line("{" + qa + R"(,"paraphrases":["a?","tell me a"]})", &e).ok());
  EXPECT_EQ(e.paraphrases, (std::vector<std::string>{"a?", "tell me a"}));
  EXPECT_EQ(reason("{" + qa + R"(,"paraphrases":"a?"})"), "\"paraphrases\" is not an array");
  EXPECT_EQ(reason("{" + qa + R"(,"paraphrases":["ok",""]})"), "paraphrase 1 is not a non-empty string");
  EXPECT_EQ(reason("{" + qa + R"(,"paraphrases":[3]})"), "paraphrase 0 is not a non-empty string");
  EXPECT_TRUE(e.paraphrases.empty()) << "a failed parse leaves nothing of an earlier line";
}

// OpenAI's fine-tuning format for function calling: top-level tools, assistant tool_calls
// (content null or absent), tool results answering them by id.
const char* const kToolLine =
    R"({"tools":[{"type":"function","function":{"name":"order_status","description":"Look up an order",)"
    R"("parameters":{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}}}],)"
    R"("messages":[{"role":"user","content":"Where is order A-17?"},)"
    R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",)"
    R"("function":{"name":"order_status","arguments":"{\"order_id\": \"A-17\"}"}}]},)"
    R"({"role":"tool","tool_call_id":"call_1","content":"{\"status\": \"shipped\"}"},)"
    R"({"role":"assistant","content":"Order A-17 has shipped."}]})";

TEST(ParseChatLineTest, ToolsToolCallsAndToolResults) {
  Example e;
  ASSERT_OK(parse_chat_line(kToolLine, &e));
  ASSERT_EQ(e.messages.size(), 4u);
  ASSERT_EQ(e.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(e.messages[1].content, "");
  EXPECT_EQ(e.messages[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(e.messages[1].tool_calls[0].name, "order_status");
  EXPECT_EQ(e.messages[1].tool_calls[0].arguments, R"({"order_id": "A-17"})");
  EXPECT_FALSE(e.messages[1].tool_calls[0].arguments_is_object);
  EXPECT_EQ(e.messages[2].role, "tool");
  EXPECT_EQ(e.messages[2].tool_call_id, "call_1");
  // The tools keep the line's key order ("name" before "description" before "parameters").
  EXPECT_EQ(e.tools_json.substr(0, 63), R"([{"type":"function","function":{"name":"order_status","descript)");

  // Arguments given as an object are kept as its text, flagged.
  const std::string obj_call =
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","tool_calls":[{"type":"function",)"
      R"("function":{"name":"f","arguments":{"b":1,"a":2}}}]}]})";
  ASSERT_OK(parse_chat_line(obj_call, &e));
  EXPECT_TRUE(e.messages[1].tool_calls[0].arguments_is_object);
  EXPECT_EQ(e.messages[1].tool_calls[0].arguments, R"({"a":2,"b":1})");

  auto reason = [&](const std::string& line) { return parse_chat_line(line, &e).message(); };
  const std::string user = R"({"role":"user","content":"q"})";
  EXPECT_EQ(reason(R"({"messages":[)" + user + R"(,{"role":"tool","content":"x"},{"role":"assistant","content":"a"}]})"),
            "message 1: a tool result must follow an assistant tool call");
  EXPECT_EQ(reason(R"({"messages":[)" + user +
                   R"(,{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}}]},)"
                   R"({"role":"tool","tool_call_id":"c2","content":"x"},{"role":"assistant","content":"a"}]})"),
            "message 2: \"tool_call_id\" 'c2' answers no earlier tool call");
  EXPECT_EQ(reason(R"({"messages":[)" + user + R"(,{"role":"assistant","tool_calls":[{"function":{"name":""}}]}]})"),
            "message 1: tool call 0: no function \"name\"");
  EXPECT_EQ(reason(R"({"messages":[)" + user +
                   R"(,{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{oops"}}]}]})"),
            "message 1: tool call 0: \"arguments\" is not JSON text");
  EXPECT_EQ(reason(R"({"messages":[)" + user + R"(,{"role":"assistant","tool_calls":{}}]})"),
            "message 1: \"tool_calls\" is not an array");
  EXPECT_EQ(reason(R"({"messages":[{"role":"user","content":"q","tool_calls":[]},{"role":"assistant","content":"a"}]})"),
            "message 0: only assistant messages have \"tool_calls\"");
  EXPECT_EQ(reason(R"({"messages":[)" + user + R"(,{"role":"assistant"}]})"),
            "message 1: \"content\" missing or not a string");
  EXPECT_EQ(reason(R"({"tools":{},"messages":[)" + user + R"(,{"role":"assistant","content":"a"}]})"),
            "\"tools\" is not an array");
  EXPECT_EQ(reason(R"({"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}],"messages":[)" + user +
                   R"(,{"role":"assistant","content":"a"}]})"),
            "tool 0: \"parameters\" is not a JSON schema object");
  EXPECT_EQ(reason(R"({"tools":[{"type":"retrieval"}],"messages":[)" + user + R"(,{"role":"assistant","content":"a"}]})"),
            "tool 0: want {\"type\": \"function\", \"function\": {...}}");
  EXPECT_EQ(reason(R"({"tools":[{"type":3}],"messages":[)" + user + R"(,{"role":"assistant","content":"a"}]})"),
            "tool 0: want {\"type\": \"function\", \"function\": {...}}");
  EXPECT_EQ(reason(R"({"tools":[{"type":"function","function":{"name":7}}],"messages":[)" + user +
                   R"(,{"role":"assistant","content":"a"}]})"),
            "tool 0: no function \"name\"");
}

TEST(ImportTest, ToolExamplesSurviveTheStoreAndExportAsTheyCame) {
  test::TempDir tmp;
  auto store = Store::open(tmp.sub("db"));
  ASSERT_OK(store.status());
  std::istringstream in(std::string(kToolLine) + "\n" + kToolLine + "\n");
  ImportReport report;
  ASSERT_OK(import_chat_jsonl(**store, in, "tools.jsonl", &report));
  EXPECT_EQ(report.imported, 1u);
  EXPECT_EQ(report.duplicates, 1u);
  auto got = (*store)->get_example(report.example_ids.at(0));
  ASSERT_OK(got.status());
  EXPECT_FALSE(got->tools_json.empty());
  ASSERT_EQ(got->messages.at(1).tool_calls.size(), 1u);
  EXPECT_EQ(got->messages.at(2).tool_call_id, "call_1");
  // The export line reads back as the same example (a duplicate on re-import), its tools
  // in their original key order, so training renders them as the client sent them.
  const std::string line = to_chat_record(*got);
  Example back;
  ASSERT_OK(parse_chat_line(line, &back));
  EXPECT_EQ(content_hash(back.messages, back.tools_json), content_hash(got->messages, got->tools_json));
  EXPECT_NE(line.find(R"("tools":[{"type":"function","function":{"name":"order_status","description")"),
            std::string::npos)
      << line;
  // The same conversation without its tools is another example.
  Example plain = *got;
  plain.tools_json.clear();
  EXPECT_NE(content_hash(plain.messages, plain.tools_json), content_hash(got->messages, got->tools_json));
}

TEST(ImportTest, ParaphrasesAndAuthorSurviveTheStore) {
  test::TempDir tmp;
  auto store = Store::open(tmp.sub("db"));
  ASSERT_OK(store.status());
  std::istringstream in(
      R"({"messages":[{"role":"user","content":"CHOREI?"},{"role":"assistant","content":"Morning meeting."}],)"
      R"("paraphrases":["What is Chorei?","Chorei là gì?"]})"
      "\n");
  ImportReport report;
  ASSERT_OK(import_chat_jsonl(**store, in, "faq.jsonl", &report));
  ASSERT_EQ(report.example_ids.size(), 1u);
  auto e = (*store)->get_example(report.example_ids[0]);
  ASSERT_OK(e.status());
  EXPECT_EQ(e->paraphrases, (std::vector<std::string>{"What is Chorei?", "Chorei là gì?"}));
  EXPECT_EQ(e->author, "");  // operator import
  Example proposed;
  proposed.messages = {{"user", "q"}, {"assistant", "a"}};
  proposed.author = "alice";
  auto ids = (*store)->add_examples({proposed}, false);
  ASSERT_OK(ids.status());
  auto back = (*store)->get_example((*ids)[0]);
  ASSERT_OK(back.status());
  EXPECT_EQ(back->author, "alice");
  EXPECT_TRUE(back->paraphrases.empty());
}

TEST(ImportTest, ImportsGoodLinesReportsBadOnesAndIsIdempotent) {
  test::TempDir tmp;
  const std::string path = tmp.sub("faq.jsonl");
  std::ofstream(path, std::ios::binary) << kFile;
  auto store = Store::open(tmp.sub("db"));
  ASSERT_OK(store.status());

  ImportReport report;
  ASSERT_OK(import_chat_jsonl_file(**store, path, &report));
  EXPECT_EQ(report.lines, 10u);
  EXPECT_EQ(report.imported, 2u);
  EXPECT_EQ(report.duplicates, 1u);  // line 10 repeats line 3
  ASSERT_EQ(report.errors.size(), 6u);
  EXPECT_EQ(report.errors[0].line, 4u);
  EXPECT_EQ(report.errors[0].reason, "not valid JSON");
  EXPECT_EQ(report.errors[1].line, 5u);
  EXPECT_NE(report.errors[1].reason.find("last message must be from the assistant"),
            std::string::npos);
  EXPECT_EQ(report.errors[2].line, 6u);
  EXPECT_NE(report.errors[2].reason.find("unknown role 'bot'"), std::string::npos);
  EXPECT_EQ(report.errors[3].line, 7u);
  EXPECT_EQ(report.errors[4].line, 8u);
  EXPECT_EQ(report.errors[4].reason, "no \"messages\" field");
  EXPECT_EQ(report.errors[5].line, 9u);
  EXPECT_NE(report.errors[5].reason.find("content"), std::string::npos);

  ASSERT_EQ(report.example_ids.size(), 2u);
  auto first = (*store)->get_example(report.example_ids[0]);
  ASSERT_OK(first.status());
  EXPECT_EQ(first->state, ExampleState::kApproved);
  EXPECT_EQ(first->source, ExampleSource::kKnowledge);
  EXPECT_EQ(first->provenance, "faq.jsonl:1");
  ASSERT_EQ(first->messages.size(), 3u);
  EXPECT_EQ(first->messages[1].content, "CHOREI có nghĩa là gì?");
  EXPECT_EQ((*store)->get_example(report.example_ids[1])->provenance, "faq.jsonl:3");

  // Second import adds nothing.
  ImportReport again;
  ASSERT_OK(import_chat_jsonl_file(**store, path, &again));
  EXPECT_EQ(again.imported, 0u);
  EXPECT_EQ(again.duplicates, 3u);
  EXPECT_EQ(again.errors.size(), 6u);
  size_t approved = (*store)->list_examples(ExampleState::kApproved)->items.size();
  EXPECT_EQ(approved, 2u);
}

TEST(ImportTest, MissingFileIsNotFound) {
  test::TempDir tmp;
  auto store = Store::open(tmp.sub("db"));
  ASSERT_OK(store.status());
  ImportReport report;
  Status s = import_chat_jsonl_file(**store, tmp.sub("nope.jsonl"), &report);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST(ImportTest, LargeFileAcrossChunksDedupesWithinTheFile) {
  test::TempDir tmp;
  auto store = Store::open(tmp.sub("db"));
  ASSERT_OK(store.status());
  std::stringstream in;
  for (int i = 0; i < 700; ++i) {
    in << R"({"messages":[{"role":"user","content":"fact )" << (i % 500)
       << R"("},{"role":"assistant","content":"answer"}]})"
       << "\n";
  }
  ImportReport report;
  ASSERT_OK(import_chat_jsonl(**store, in, "big.jsonl", &report));
  EXPECT_EQ(report.imported, 500u);
  EXPECT_EQ(report.duplicates, 200u);
  EXPECT_TRUE(report.errors.empty());
}

}  // namespace
}  // namespace kaizen::storage
