// The Split pre-tokenizer with behavior "Isolated": a text is cut into the regex's
// matches and the gaps between them, in order. PCRE2 with Unicode properties (\p{L},
// Unicode \s), compiled once with JIT; per-thread match data and JIT stack.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kaizen::text {

class RegexSplitter {
 public:
  // literal: pattern is a plain string (tokenizer.json {"String": ...}), not a regex.
  // Throws TokenizerError naming `file` if the pattern does not compile.
  RegexSplitter(const std::string& pattern, bool literal, const std::string& file);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the non-empty pieces of `text` to `out`. Ill-formed UTF-8 never matches, so
  // such bytes end up in gap pieces of their own. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  void* code_;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace kaizen::text
