// Grammar rules for JSON text, shared by the schema compiler and the tool-call grammar.
//
// What is generated is JSON (RFC 8259) in the subset a model should write, bounded so that a
// model emitting nonsense still ends in finite, sane output:
//   whitespace  only at these points: after '{', '[' or ',' and before '}' or ']' one of
//               "", " " or "\n" followed by 0..kMaxIndent spaces; after ':' "" or " ".
//               Nothing before ',' or ':', nor around the whole text.
//   numbers     -?(0|[1-9][0-9]{0,15}) for integers (at most kMaxIntDigits digits), and for
//               numbers optionally .[0-9]{1,16} and [eE][+-]?[0-9]{1,3}.
//   strings     UTF-8 (no overlongs, no surrogates), no raw byte < 0x20, escapes \" \\ \/ \b
//               \f \n \r \t \uXXXX with XXXX not a surrogate (D800-DFFF).
//   free values (json_object, an object schema without properties, a schema of {}): objects
//               and arrays nest at most kMaxAnyDepth deep (the outermost is depth 1), keys are
//               any JSON string.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "learning/grammar/grammar.h"

namespace kaizen::grammar {

constexpr int kMaxIndent = 32;
constexpr int kMaxIntDigits = 16;
constexpr int kMaxFracDigits = 16;
constexpr int kMaxExpDigits = 3;
constexpr int kMaxAnyDepth = 16;

// Makes rules in a GrammarBuilder, each once (later calls return the same rule).
class JsonRules {
 public:
  explicit JsonRules(GrammarBuilder& builder) : b_(builder) {}
  GrammarBuilder& builder() { return b_; }

  // Whitespace that is not empty: " " or "\n" + 0..kMaxIndent spaces.
  int32_t ws();
  // A JSON string of min_len..max_len code points (max_len kUnbounded: no limit).
  int32_t string(int32_t min_len = 0, int32_t max_len = Grammar::kUnbounded);
  int32_t number();
  int32_t integer();
  int32_t boolean();
  int32_t null();
  // Exactly one of `texts` (each non-empty).
  int32_t literals(const std::vector<std::string>& texts, const std::string& name);
  // Any JSON value / object / array, containers starting at nesting depth `depth`.
  int32_t any_value(int depth = 1);
  int32_t any_object(int depth = 1);
  int32_t any_array(int depth = 1);
  // '[' items ']' with min_items..max_items items of rule `item` (max kUnbounded: no limit).
  int32_t array(int32_t item, int32_t min_items, int32_t max_items);

  // Optional whitespace, then what emit(state) adds at `state`: emit is called for `from`
  // and for the state after a ws() call from `from`.
  void with_ws(int32_t from, const std::function<void(int32_t)>& emit);
  // Calls from `from` to every kind of value, returning to `to`.
  void add_value_calls(int32_t from, int32_t to, int depth);

 private:
  GrammarBuilder& b_;
  int32_t ws_ = -1, number_ = -1, integer_ = -1, boolean_ = -1, null_ = -1, scalar_words_ = -1;
  std::map<std::pair<int32_t, int32_t>, int32_t> strings_;
  std::map<int, int32_t> values_, objects_, arrays_;
};

}  // namespace kaizen::grammar
