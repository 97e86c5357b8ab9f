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
    R"({"messages":[{"role":"tool","content":"x"},{"role":"assistant","content":"y"}]})"
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
  std::vector<ChatMessage> m;
  EXPECT_TRUE(
      parse_chat_line(
          R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})", &m)
          .ok());
  EXPECT_EQ(m.size(), 2u);
  auto reason = [&](const std::string& line) { return parse_chat_line(line, &m).message(); };
  EXPECT_EQ(reason("[1,2]"), "not a JSON object");
  EXPECT_EQ(reason("{"), "not valid JSON");
  EXPECT_EQ(reason(R"({"messages":[{"role":"assistant","content":"b"}]})"), "no user message");
  EXPECT_NE(reason(R"({"messages":[{"role":"user","content":"a"}]})")
                .find("last message must be from the assistant"),
            std::string::npos);
  // Optional held-out paraphrases of the question.
  std::vector<std::string> p;
  const std::string qa = R"("messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}])";
  ASSERT_TRUE(parse_chat_line("{" + qa + R"(,"paraphrases":["a?","tell me a"]})", &m, &p).ok());
  EXPECT_EQ(p, (std::vector<std::string>{"a?", "tell me a"}));
  EXPECT_EQ(parse_chat_line("{" + qa + R"(,"paraphrases":"a?"})", &m, &p).message(),
            "\"paraphrases\" is not an array");
  EXPECT_EQ(parse_chat_line("{" + qa + R"(,"paraphrases":["ok",""]})", &m, &p).message(),
            "paraphrase 1 is not a non-empty string");
  EXPECT_EQ(parse_chat_line("{" + qa + R"(,"paraphrases":[3]})", &m, &p).message(),
            "paraphrase 0 is not a non-empty string");
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
  EXPECT_NE(report.errors[2].reason.find("unknown role 'tool'"), std::string::npos);
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
