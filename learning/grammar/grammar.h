// The grammar IR behind constrained decoding: a recursive transition network over bytes.
//
// A grammar is a set of rules. Each rule is a small automaton: states joined by byte edges
// (a byte range, deterministic per state) and call edges ("match rule R here, then continue
// at state T"); reaching a final state may end the rule. Matching runs it as a pushdown
// automaton, the stack holding one frame per open rule (learning/grammar/matcher.h).
//
// Each rule has one counter, starting at 0 when the rule is entered, which edges can bump and
// test against the rule's [min_count, max_count]; that is how string lengths in code points
// and array item counts are bounded without unrolling.
//
// Rules must be non-nullable (a rule consumes at least one byte) and not left-recursive, and
// every state must be able to reach the end of its rule: build() checks this, so a matcher
// never walks into a dead end, and it computes for every state the fewest bytes that end the
// rule, which the matcher sums over the stack to keep answers within a token budget.
//
// A Grammar is immutable once built and shared between threads.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kaizen::grammar {

// What an edge does with its rule's counter. An edge whose guard fails is not taken.
enum class CountOp : uint8_t {
  kNone,
  kInc,            // guard count < max_count, then count += 1
  kCheckMin,       // guard count >= min_count
  kCheckBelowMax,  // guard count < max_count
};

struct ByteEdge {
  uint8_t lo, hi;  // the byte range [lo, hi]
  CountOp op;
  int32_t target;  // a state of the same rule
};

struct CallEdge {
  int32_t rule;  // the rule to match
  int32_t ret;   // where the caller continues, a state of the caller's rule
  CountOp op;    // applied to the caller's counter when the call starts
};

template <typename T>
struct Span {
  const T* first;
  const T* last;
  const T* begin() const { return first; }
  const T* end() const { return last; }
  size_t size() const { return static_cast<size_t>(last - first); }
};

class Grammar {
 public:
  static constexpr int32_t kUnbounded = std::numeric_limits<int32_t>::max();
  static constexpr int32_t kInfinite = std::numeric_limits<int32_t>::max() / 4;  // no path

  struct State {
    int32_t rule;
    bool final;        // the rule may end here
    bool string_body;  // a JSON string body at a character boundary (see GrammarBuilder)
    uint32_t edges_begin, edges_end;  // into the byte edges, sorted by lo, disjoint
    uint32_t calls_begin, calls_end;
    uint32_t dist_begin;  // min_count + 1 distances, by need (see dist())
  };
  struct Rule {
    std::string name;
    int32_t start;
    int32_t min_count, max_count;
    bool counted() const { return min_count > 0 || max_count != kUnbounded; }
  };

  int32_t root() const { return root_; }
  int32_t num_rules() const { return static_cast<int32_t>(rules_.size()); }
  int32_t num_states() const { return static_cast<int32_t>(states_.size()); }
  const Rule& rule(int32_t r) const { return rules_[r]; }
  const State& state(int32_t s) const { return states_[s]; }
  Span<ByteEdge> edges(int32_t s) const {
    return {edges_.data() + states_[s].edges_begin, edges_.data() + states_[s].edges_end};
  }
  Span<CallEdge> calls(int32_t s) const {
    return {calls_.data() + states_[s].calls_begin, calls_.data() + states_[s].calls_end};
  }
  // The edge of state s that takes byte b, or null.
  const ByteEdge* find_edge(int32_t s, uint8_t b) const {
    for (const ByteEdge& e : edges(s)) {
      if (b < e.lo) break;
      if (b <= e.hi) return &e;
    }
    return nullptr;
  }
  // The fewest bytes that take state s, with its rule's counter at `count`, to the end of the
  // rule (callees included). kInfinite for configurations that cannot occur.
  int32_t dist(int32_t s, int32_t count) const {
    const State& st = states_[s];
    const Rule& r = rules_[st.rule];
    const int32_t need = count >= r.min_count ? 0 : r.min_count - count;
    return dist_[st.dist_begin + need];
  }
  // The fewest bytes of a whole match of rule r.
  int32_t min_length(int32_t r) const { return dist(rules_[r].start, 0); }

  // A readable listing of rules, states and edges, for tests and debugging.
  std::string describe() const;

 private:
  friend class GrammarBuilder;
  Grammar() = default;

  int32_t root_ = 0;
  std::vector<Rule> rules_;
  std::vector<State> states_;
  std::vector<ByteEdge> edges_;
  std::vector<CallEdge> calls_;
  std::vector<int32_t> dist_;
};

// Builds a Grammar. State ids are global; each state belongs to the rule it was made for.
// Misuse (an edge between rules, overlapping byte ranges, a bad id) throws std::logic_error:
// grammars are built by code, so these are programming errors, not user input errors.
class GrammarBuilder {
 public:
  // A new rule with a fresh start state. Counter bounds as in CountOp.
  int32_t add_rule(std::string name, int32_t min_count = 0,
                   int32_t max_count = Grammar::kUnbounded);
  int32_t start(int32_t rule) const;
  int32_t add_state(int32_t rule);
  int32_t rule_of(int32_t state) const;
  void add_bytes(int32_t from, uint8_t lo, uint8_t hi, int32_t to, CountOp op = CountOp::kNone);
  void add_byte(int32_t from, uint8_t b, int32_t to, CountOp op = CountOp::kNone) {
    add_bytes(from, b, b, to, op);
  }
  void add_call(int32_t from, int32_t rule, int32_t to, CountOp op = CountOp::kNone);
  void set_final(int32_t state);
  // Marks the character-boundary state of a JSON string body. The matcher then takes every
  // token that is plain string text (well-formed UTF-8, no '"', '\\' or byte < 0x20) as a
  // block instead of walking it byte by byte, so the state must behave exactly like that:
  // each such character loops back to it with one kInc. add_json_string_body() builds one.
  void set_string_body(int32_t state);

  // Follows or adds a chain of single-byte edges spelling `bytes` from `from` and returns the
  // state at its end. Chains added this way share prefixes, so literals added from the same
  // state form a trie (keys, enum values, tool names).
  int32_t add_literal(int32_t from, std::string_view bytes);

  // The body of a JSON string in `rule` (whose counter counts code points), starting at
  // `body` (marked string_body) and ending with the closing quote at `end`: UTF-8 without
  // overlongs or surrogates, the escapes \" \\ \/ \b \f \n \r \t and \uXXXX (XXXX not a
  // surrogate, so each character counts one code point as JSON Schema counts them).
  void add_json_string_body(int32_t rule, int32_t body, int32_t end);

  // Checks the grammar (see the file comment), computes distances and returns it. The
  // builder is left empty.
  std::shared_ptr<const Grammar> build(int32_t root_rule);

 private:
  struct PendingState {
    int32_t rule = 0;
    bool final = false;
    bool string_body = false;
    bool literal = false;  // made by add_literal, so later literals may share it
    std::vector<ByteEdge> edges;
    std::vector<CallEdge> calls;
  };
  void check_state(int32_t s) const;
  void compute_distances(Grammar& g) const;
  static void check_counted_paths(const Grammar& g,
                                  const std::vector<std::vector<int32_t>>& rule_states);

  std::vector<Grammar::Rule> rules_;
  std::vector<PendingState> states_;
};

}  // namespace kaizen::grammar
