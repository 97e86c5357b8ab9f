// Chat templates: exact strings written by hand from the Jinja templates (Qwen3's from its
// tokenizer_config.json, Llama-3-Instruct's, plain ChatML), the same cases rendered by
// jinja2 (tools/ref/chat_template_ref.py) as a peer, and the training split.
#include <gtest/gtest.h>

#include <random>

#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "text_test_util.h"

namespace kaizen::text {
namespace {

using testing::TempDir;
using testing::write_file;

const ChatOptions kGen{true, true};
const ChatOptions kGenNoThink{true, false};
const ChatOptions kNoGen{false, true};

// Meta-Llama-3-8B-Instruct's tokenizer_config.json chat_template.
const char* kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
// Plain ChatML (no default system message).
const char* kChatMLJinja =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

TEST(ChatTemplate, Qwen3SingleTurn) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kQwen3);
  const std::vector<ChatMessage> m = {{"user", "Xin chào"}};
  EXPECT_EQ(t.render(m, kGen), "<|im_start|>user\nXin chào<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(m, kGenNoThink),
            "<|im_start|>user\nXin chào<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(t.render(m, kNoGen), "<|im_start|>user\nXin chào<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3SystemMultiTurnStripsEarlierThinking) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kQwen3);
  const std::vector<ChatMessage> m = {
      {"system", "You are kaizen."},
      {"user", "CHOREI là gì?"},
      {"assistant", "<think>\nLet me recall.\n</think>\n\nCHOREI là buổi họp sáng."},
      {"user", "Còn sabitech? /no_think"},
  };
  EXPECT_EQ(t.render(m, kGen),
            "<|im_start|>system\nYou are kaizen.<|im_end|>\n"
            "<|im_start|>user\nCHOREI là gì?<|im_end|>\n"
            "<|im_start|>assistant\nCHOREI là buổi họp sáng.<|im_end|>\n"
            "<|im_start|>user\nCòn sabitech? /no_think<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3TurnsAfterLastQueryKeepReasoning) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kQwen3);
  const std::vector<ChatMessage> m = {
      {"user", "Q"},
      {"assistant", "<think>plan</think>calling"},
      {"tool", "42"},
      {"assistant", "The answer is 42."},
  };
  EXPECT_EQ(t.render(m, kNoGen),
            "<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nplan\n</think>\n\ncalling<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nThe answer is 42.<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3SystemLaterInConversation) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kQwen3);
  const std::vector<ChatMessage> m = {{"user", "a"}, {"system", "b"}, {"developer", "dropped"}};
  EXPECT_EQ(
      t.render(m, kGen),
      "<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ChatMLAndLlama3) {
  const std::vector<ChatMessage> m = {
      {"system", " Be brief. "}, {"user", "Hi\n"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  EXPECT_EQ(ChatTemplate::of_kind(TemplateKind::kChatML).render(m, kGenNoThink),
            "<|im_start|>system\n Be brief. <|im_end|>\n<|im_start|>user\nHi\n<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate::of_kind(TemplateKind::kLlama3).render(m, kGen),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ChatTemplate::of_kind(TemplateKind::kLlama3).end_of_turn_tokens(),
            std::vector<std::string>{"<|eot_id|>"});
  EXPECT_EQ(ChatTemplate::of_kind(TemplateKind::kQwen3).end_of_turn_tokens(),
            std::vector<std::string>{"<|im_end|>"});
}

TEST(ChatTemplate, SegmentsMarkOnlyTheFinalAnswer) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kQwen3);
  const std::vector<ChatMessage> m = {
      {"system", "S"}, {"user", "Q1"},      {"assistant", "<think>old</think>A1"},
      {"user", "Q2"},  {"assistant", "A2"},
  };
  const auto seg = t.render_segments(m);
  ASSERT_EQ(seg.size(), 3u);
  EXPECT_EQ(seg[0].text,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_FALSE(seg[0].trainable);
  EXPECT_EQ(seg[1].text, "A2<|im_end|>");
  EXPECT_TRUE(seg[1].trainable);
  EXPECT_EQ(seg[2].text, "\n");
  EXPECT_FALSE(seg[2].trainable);

  const auto l3 = ChatTemplate::of_kind(TemplateKind::kLlama3)
                      .render_segments({{"user", "Q"}, {"assistant", " A "}});
  ASSERT_EQ(l3.size(), 2u);
  EXPECT_EQ(l3[1].text, "A<|eot_id|>");
  EXPECT_TRUE(l3[1].trainable);

  EXPECT_THROW(t.render_segments({{"user", "Q"}}), std::invalid_argument);
  EXPECT_THROW(t.render_segments({}), std::invalid_argument);
}

TEST(ChatTemplate, DetectsKindFromModelDir) {
  EXPECT_EQ(ChatTemplate::from_model_dir(testing::qwen3_dir()).kind(), TemplateKind::kQwen3);
  TempDir d;
  write_file(d.file("tokenizer_config.json"),
             nlohmann::json{{"chat_template", kChatMLJinja}}.dump());
  EXPECT_EQ(ChatTemplate::from_model_dir(d.path()).kind(), TemplateKind::kChatML);
  EXPECT_EQ(ChatTemplate::from_model_dir(d.path(), "llama3").kind(), TemplateKind::kLlama3);
  write_file(d.file("tokenizer_config.json"),
             nlohmann::json{{"chat_template", {{{"name", "default"}, {"template", kLlama3Jinja}}}}}
                 .dump());
  EXPECT_EQ(ChatTemplate::from_model_dir(d.path()).kind(), TemplateKind::kLlama3);
  EXPECT_THROW(ChatTemplate::from_model_dir(d.path(), "mistral"), TokenizerError);

  TempDir bare;
  EXPECT_THROW(ChatTemplate::from_model_dir(bare.path()), TokenizerError);
  write_file(bare.file("config.json"), R"({"model_type": "qwen3"})");
  EXPECT_EQ(ChatTemplate::from_model_dir(bare.path()).kind(), TemplateKind::kQwen3);
  write_file(bare.file("tokenizer_config.json"), "{ not json");
  try {
    ChatTemplate::from_model_dir(bare.path());
    ADD_FAILURE() << "malformed tokenizer_config.json accepted";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

// Random conversations: plain text with whitespace edges, thinking blocks, /no_think.
std::vector<std::vector<ChatMessage>> random_conversations(int count, unsigned seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> texts = {"Xin chào!",
                                          "CHOREI có nghĩa là gì?",
                                          " leading space",
                                          "\nleading newline",
                                          "  \n\n indented after blank lines",
                                          "trailing newline\n",
                                          "trailing spaces  ",
                                          "code:\n    x = 1\n",
                                          "日本語のテキスト",
                                          "emoji 👨‍👩‍👧 ok",
                                          "/no_think what now?",
                                          "\r\nCRLF\r\n",
                                          "\t tab",
                                          "",
                                          " ",
                                          "<think>\nreasoning\n</think>\n\nanswer",
                                          "<think></think>short",
                                          "a\n\n\nb",
                                          "numbers 12345"};
  std::vector<std::vector<ChatMessage>> out;
  for (int c = 0; c < count; ++c) {
    std::vector<ChatMessage> conv;
    if (rng() % 2) conv.push_back({"system", texts[rng() % texts.size()]});
    const int turns = 1 + rng() % 3;
    for (int k = 0; k < turns; ++k) {
      conv.push_back({"user", texts[rng() % texts.size()]});
      conv.push_back({"assistant", texts[rng() % texts.size()]});
    }
    out.push_back(std::move(conv));
  }
  return out;
}

TEST(ChatTemplate, SegmentsTokenizeLikeTheWholeText) {
  auto tok = testing::qwen3();
  for (TemplateKind kind : {TemplateKind::kQwen3, TemplateKind::kChatML}) {
    const auto t = ChatTemplate::of_kind(kind);
    for (const auto& conv : random_conversations(300, 1234)) {
      const auto segs = t.render_segments(conv);
      std::string joined;
      std::vector<int32_t> ids;
      int trainable = 0;
      for (const auto& s : segs) {
        joined += s.text;
        const auto part = tok->encode(s.text);
        ids.insert(ids.end(), part.begin(), part.end());
        if (s.trainable) {
          ++trainable;
          EXPECT_EQ(s.text.substr(s.text.size() - 10), "<|im_end|>");
        }
      }
      EXPECT_EQ(trainable, 1);
      ASSERT_EQ(joined, t.render(conv, {false, false}));
      EXPECT_EQ(ids, tok->encode(joined)) << nlohmann::json(joined).dump();
    }
  }
}

// The same conversations through the real templates with jinja2.
TEST(ChatTemplate, MatchesJinjaRendering) {
  const std::string py = testing::jinja_python();
  if (py.empty()) GTEST_SKIP() << "no python with jinja2 (apt install python3-jinja2)";
  const std::string qwen3_template = nlohmann::json::parse(
      testing::read_file(testing::qwen3_dir() + "/tokenizer_config.json"))["chat_template"];
  struct Case {
    TemplateKind kind;
    std::string jinja, bos;
  };
  const std::vector<Case> cases = {{TemplateKind::kQwen3, qwen3_template, ""},
                                   {TemplateKind::kChatML, kChatMLJinja, ""},
                                   {TemplateKind::kLlama3, kLlama3Jinja, "<|begin_of_text|>"}};
  auto convs = random_conversations(60, 99);
  convs.push_back({{"user", "u"},
                   {"assistant", "<think>a</think>b"},
                   {"tool", "t1"},
                   {"tool", "t2"},
                   {"assistant", "<think>\n\nc\n</think>\n\n\nd"}});
  for (const auto& c : cases) {
    nlohmann::json req = {
        {"template", c.jinja}, {"bos_token", c.bos}, {"cases", nlohmann::json::array()}};
    std::vector<std::string> ours;
    const auto t = ChatTemplate::of_kind(c.kind);
    for (const auto& conv : convs) {
      if (c.kind != TemplateKind::kQwen3 && conv.back().role != "assistant") continue;
      nlohmann::json msgs = nlohmann::json::array();
      for (const auto& m : conv) msgs.push_back({{"role", m.role}, {"content", m.content}});
      for (int variant = 0; variant < 3; ++variant) {
        const ChatOptions o{variant != 0, variant != 2};
        nlohmann::json one = {{"messages", msgs},
                              {"add_generation_prompt", o.add_generation_prompt}};
        if (variant == 2) one["enable_thinking"] = false;
        req["cases"].push_back(one);
        ours.push_back(t.render(conv, o));
      }
    }
    const auto ref = testing::run_chat_template_ref(py, req);
    ASSERT_EQ(ref.size(), ours.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_EQ(ours[i], ref[i].get<std::string>())
          << ChatTemplate::name_of(c.kind) << " case " << i << "\n"
          << req["cases"][i].dump();
    }
  }
}

}  // namespace
}  // namespace kaizen::text
