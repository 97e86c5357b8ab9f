// The grammar IR: builder checks, counters, distances (the fewest bytes to finish).
#include "learning/grammar/grammar.h"

#include <gtest/gtest.h>

#include "grammar_test_util.h"
#include "learning/grammar/json_rules.h"

namespace kaizen::grammar {
namespace {

using testing::is_prefix;
using testing::matches;

// ab | ac | abd, as literals from one state: a trie.
TEST(GrammarBuilder, LiteralsShareAPrefixTrie) {
  GrammarBuilder b;
  const int32_t r = b.add_rule("words");
  for (const char* w : {"ab", "ac", "abd"}) b.set_final(b.add_literal(b.start(r), w));
  const auto g = b.build(r);
  EXPECT_EQ(g->num_states(), 5);  // start, a, ab, ac, abd
  EXPECT_EQ(g->edges(g->rule(r).start).size(), 1u);
  for (const char* w : {"ab", "ac", "abd"}) EXPECT_TRUE(matches(g, w)) << w;
  EXPECT_FALSE(matches(g, "a"));
  EXPECT_FALSE(matches(g, "abdd"));
  EXPECT_EQ(g->min_length(r), 2);
  EXPECT_NE(g->describe().find("words"), std::string::npos);
}

TEST(GrammarBuilder, RefusesBrokenGrammars) {
  {
    GrammarBuilder b;  // overlapping byte ranges
    const int32_t r = b.add_rule("r");
    const int32_t s = b.add_state(r);
    b.set_final(s);
    b.add_bytes(b.start(r), 'a', 'c', s);
    b.add_bytes(b.start(r), 'c', 'd', s);
    EXPECT_THROW(b.build(r), std::logic_error);
  }
  {
    GrammarBuilder b;  // nullable
    const int32_t r = b.add_rule("r");
    b.set_final(b.start(r));
    EXPECT_THROW(b.build(r), std::logic_error);
  }
  {
    GrammarBuilder b;  // left recursion: r -> r 'a' | 'a'
    const int32_t r = b.add_rule("r");
    const int32_t mid = b.add_state(r), end = b.add_state(r);
    b.add_call(b.start(r), r, mid);
    b.add_byte(mid, 'a', end);
    b.add_byte(b.start(r), 'a', end);
    b.set_final(end);
    EXPECT_THROW(b.build(r), std::logic_error);
  }
  {
    GrammarBuilder b;  // a state that cannot reach the end
    const int32_t r = b.add_rule("r");
    const int32_t dead = b.add_state(r), end = b.add_state(r);
    b.add_byte(b.start(r), 'a', end);
    b.add_byte(b.start(r), 'b', dead);
    b.set_final(end);
    EXPECT_THROW(b.build(r), std::logic_error);
  }
  {
    GrammarBuilder b;  // '[' 'x'{2,} ']' where a ' ' after the first x leads only to ']' (min 2)
    const int32_t r = b.add_rule("xs", 2);
    const int32_t loop = b.add_state(r), space = b.add_state(r), end = b.add_state(r);
    b.add_byte(b.start(r), '[', loop);
    b.add_byte(loop, 'x', loop, CountOp::kInc);
    b.add_byte(loop, ']', end, CountOp::kCheckMin);
    b.add_byte(loop, ' ', space);
    b.add_byte(space, ']', end, CountOp::kCheckMin);
    b.set_final(end);
    EXPECT_THROW(b.build(r), std::logic_error);
  }
  {
    GrammarBuilder b;  // an edge into another rule
    const int32_t r = b.add_rule("r"), q = b.add_rule("q");
    EXPECT_THROW(b.add_byte(b.start(r), 'a', b.start(q)), std::logic_error);
  }
}

// Right recursion is fine: r -> 'a' r | 'b'.
TEST(GrammarBuilder, RightRecursion) {
  GrammarBuilder b;
  const int32_t r = b.add_rule("r");
  const int32_t a = b.add_state(r), end = b.add_state(r);
  b.add_byte(b.start(r), 'a', a);
  b.add_call(a, r, end);
  b.add_byte(b.start(r), 'b', end);
  b.set_final(end);
  const auto g = b.build(r);
  EXPECT_TRUE(matches(g, "b"));
  EXPECT_TRUE(matches(g, "aaab"));
  EXPECT_FALSE(matches(g, "aaa"));
  EXPECT_TRUE(is_prefix(g, "aaa"));
}

// 'x'{2,3} with the counter: kInc on each x, kCheckMin on the way out.
TEST(GrammarBuilder, CounterBoundsRepetition) {
  GrammarBuilder b;
  const int32_t r = b.add_rule("xs", 2, 3);
  const int32_t loop = b.add_state(r), end = b.add_state(r);
  b.add_byte(b.start(r), '[', loop);
  b.add_byte(loop, 'x', loop, CountOp::kInc);
  b.add_byte(loop, ']', end, CountOp::kCheckMin);
  b.set_final(end);
  const auto g = b.build(r);
  EXPECT_FALSE(matches(g, "[x]"));
  EXPECT_TRUE(matches(g, "[xx]"));
  EXPECT_TRUE(matches(g, "[xxx]"));
  EXPECT_FALSE(is_prefix(g, "[xxxx"));
  EXPECT_EQ(g->min_length(r), 4);
  EXPECT_EQ(g->dist(loop, 0), 3);  // "xx]"
  EXPECT_EQ(g->dist(loop, 1), 2);
  EXPECT_EQ(g->dist(loop, 2), 1);
  EXPECT_EQ(g->dist(loop, 3), 1);
}

TEST(GrammarBuilder, DistancesAddUpOverCalls) {
  GrammarBuilder b;
  JsonRules json(b);
  const int32_t s = json.string(3, 5);
  const int32_t a = json.array(s, 2, Grammar::kUnbounded);
  const int32_t number = json.number();
  const auto g = b.build(a);
  EXPECT_EQ(g->min_length(s), 5);              // "aaa"
  EXPECT_EQ(g->min_length(a), 2 + 5 + 1 + 5);  // ["aaa","aaa"]
  EXPECT_EQ(g->min_length(number), 1);
}

TEST(GrammarBuilder, WhitespaceIsBounded) {
  GrammarBuilder b;
  JsonRules json(b);
  const auto g = b.build(json.ws());
  EXPECT_TRUE(matches(g, " "));
  EXPECT_TRUE(matches(g, "\n"));
  EXPECT_TRUE(matches(g, "\n" + std::string(kMaxIndent, ' ')));
  EXPECT_FALSE(matches(g, "\n" + std::string(kMaxIndent + 1, ' ')));
  EXPECT_FALSE(matches(g, "  "));
  EXPECT_FALSE(matches(g, "\t"));
  EXPECT_FALSE(matches(g, "\r\n"));
}

}  // namespace
}  // namespace kaizen::grammar
