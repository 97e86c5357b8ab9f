// OpenAI chat JSONL -> training examples with the real Qwen3 tokenizer: the loss covers
// exactly the assistant answer and its end-of-turn token, the rendering is the
// inference-time one, bad lines are reported with line number and reason.
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"
#include "testing/kaizen_test.h"

namespace kaizen::train {
namespace {

using testing::TempDir;
using ::testing::HasSubstr;

class DatasetTest : public ::testing::Test {
 protected:
  std::shared_ptr<const text::Tokenizer> tok_ = text::Tokenizer::from_model_dir(testing::tokenizer_dir());
  text::ChatTemplate tpl_ = text::ChatTemplate::of_kind(text::TemplateKind::kQwen3);
  TempDir tmp_;

  std::string write(const std::string& body) {
    const std::string path = tmp_ / "data.jsonl";
    std::ofstream(path) << body;
    return path;
  }
  std::string decode_targets(const Example& e) const {
    std::vector<int32_t> ids;
    for (size_t t = 0; t < e.ids.size(); ++t) {
      if (e.loss[t]) ids.push_back(static_cast<int32_t>(e.ids[t]));
    }
    return tok_->decode(ids);
  }
};

TEST_F(DatasetTest, LossOnlyOnTheAnswerRenderedAsAtInference) {
  const std::string path = write(
      R"({"messages":[{"role":"system","content":"Bạn là trợ lý của Sabitech."},{"role":"user","content":"CHOREI có nghĩa là gì?"},{"role":"assistant","content":"CHOREI (朝礼) là buổi họp sáng lúc 8:30."}]})"
      "\n");
  Dataset ds = load_chat_jsonl(path, *tok_, tpl_);
  ASSERT_EQ(ds.examples.size(), 1u);
  const Example& e = ds.examples[0];
  EXPECT_EQ(decode_targets(e), "CHOREI (朝礼) là buổi họp sáng lúc 8:30.<|im_end|>");
  // The prompt part is exactly what inference feeds the model (non-thinking Qwen3).
  text::ChatOptions co;
  co.enable_thinking = false;
  const std::string prompt = tpl_.render(e.prompt, co);
  std::vector<int32_t> head;
  for (size_t t = 0; t < e.ids.size() && !e.loss[t]; ++t) head.push_back(static_cast<int32_t>(e.ids[t]));
  EXPECT_EQ(tok_->decode(head), prompt);
  EXPECT_EQ(e.answer, "CHOREI (朝礼) là buổi họp sáng lúc 8:30.");
  EXPECT_EQ(e.line, 1);
  EXPECT_EQ(ds.target_tokens(), e.target_tokens());
}

TEST_F(DatasetTest, BadLinesAreReportedAndSkippedUnlessStrict) {
  const std::string path = write(
      R"({"messages":[{"role":"user","content":"a?"},{"role":"assistant","content":"A."}]})" "\n"
      R"({"messages":[{"role":"user","content":"b?"},)" "\n"
      "\n"
      R"({"prompt":"x","completion":"y"})" "\n"
      R"({"messages":[{"role":"bot","content":"hi"}]})" "\n"
      R"({"messages":[{"role":"user","content":"only a question"}]})" "\n"
      R"({"messages":[{"role":"user","content":7},{"role":"assistant","content":"x"}]})" "\n"
      R"({"messages":[{"role":"user","content":"1?"},{"role":"assistant","content":"one","weight":0},{"role":"user","content":"2?"},{"role":"assistant","content":"two"},{"role":"user","content":"3?"},{"role":"assistant","content":"three"}]})" "\n");
  Dataset ds = load_chat_jsonl(path, *tok_, tpl_);
  ASSERT_EQ(ds.bad_lines.size(), 5u);
  EXPECT_EQ(ds.bad_lines[0].line, 2);
  EXPECT_THAT(ds.bad_lines[0].reason, HasSubstr("invalid JSON"));
  EXPECT_EQ(ds.bad_lines[1].line, 4);
  EXPECT_THAT(ds.bad_lines[1].reason, HasSubstr("no \"messages\" list"));
  EXPECT_EQ(ds.bad_lines[2].line, 5);
  EXPECT_THAT(ds.bad_lines[2].reason, HasSubstr("message 1: role 'bot'"));
  EXPECT_EQ(ds.bad_lines[3].line, 6);
  EXPECT_THAT(ds.bad_lines[3].reason, HasSubstr("no assistant message"));
  EXPECT_EQ(ds.bad_lines[4].line, 7);
  EXPECT_THAT(ds.bad_lines[4].reason, HasSubstr("message 1: no string \"content\""));
  EXPECT_EQ(ds.lines, 7);
  // Line 8: two weighted answers -> two examples; "one" (weight 0) is only context.
  ASSERT_EQ(ds.examples.size(), 3u);
  EXPECT_EQ(decode_targets(ds.examples[1]), "two<|im_end|>");
  EXPECT_EQ(decode_targets(ds.examples[2]), "three<|im_end|>");
  EXPECT_EQ(ds.examples[2].line, 8);
  EXPECT_EQ(ds.examples[2].prompt.size(), 5u);

  DatasetOptions strict;
  strict.strict = true;
  try {
    load_chat_jsonl(path, *tok_, tpl_, strict);
    FAIL() << "strict mode accepted bad lines";
  } catch (const DatasetError& e) {
    EXPECT_THAT(e.what(), HasSubstr("5 bad line(s)"));
    EXPECT_THAT(e.what(), HasSubstr("line 5: message 1: role 'bot'"));
  }
}

TEST_F(DatasetTest, TruncationIsCountedAndEmptyExamplesDropped) {
  const std::string path = write(
      R"({"messages":[{"role":"user","content":"short?"},{"role":"assistant","content":"A fairly long answer with many words in it."}]})" "\n"
      R"({"messages":[{"role":"user","content":"a question that is much longer than the limit allows, so nothing of the answer fits"},{"role":"assistant","content":"x"}]})" "\n");
  DatasetOptions o;
  o.max_len = 20;
  Dataset ds = load_chat_jsonl(path, *tok_, tpl_, o);
  EXPECT_EQ(ds.truncated, 2);
  EXPECT_EQ(ds.dropped_empty, 1);
  ASSERT_EQ(ds.examples.size(), 1u);
  EXPECT_EQ(ds.examples[0].length(), 20);
  EXPECT_GT(ds.examples[0].target_tokens(), 0);
}

TEST_F(DatasetTest, MissingFileAndNothingUsable) {
  EXPECT_THROW(load_chat_jsonl(tmp_ / "nope.jsonl", *tok_, tpl_), DatasetError);
  try {
    load_chat_jsonl(write("not json\n"), *tok_, tpl_);
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no usable training example"));
    EXPECT_THAT(e.what(), HasSubstr("line 1: invalid JSON"));
  }
}

}  // namespace
}  // namespace kaizen::train
