#include "learning/text/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "learning/text/tokenizer.h"

namespace kaizen::text {

namespace {

// One per thread, shared by every RegexSplitter: the match data is sized for the overall
// match only (Split needs no groups), the JIT stack grows to 8 MiB so that long runs of
// whitespace or punctuation never hit the JIT stack limit.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState s;
  return s;
}

}  // namespace

RegexSplitter::RegexSplitter(const std::string& pattern, bool literal, const std::string& file) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t flags = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  if (literal) flags |= PCRE2_LITERAL;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   flags, &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw TokenizerError(file + ": pre-tokenizer regex does not compile at offset " +
                         std::to_string(offset) + ": " + reinterpret_cast<char*>(msg));
  }
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

RegexSplitter::~RegexSplitter() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchState& ms = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t pos = 0, gap = 0;  // gap: start of the text not yet emitted
  while (pos < n) {
    const int rc = jit_ ? pcre2_jit_match(code, subject, n, pos, 0, ms.data, ms.context)
                        : pcre2_match(code, subject, n, pos, 0, ms.data, ms.context);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      // Only resource limits can get here (the JIT stack above is generous). Keep the
      // rest as one piece rather than fail: BPE still encodes it, just with other merges.
      break;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.data);
    const size_t b = ov[0], e = ov[1];
    if (b > gap) out.emplace_back(text.data() + gap, b - gap);
    if (e > b) {
      out.emplace_back(text.data() + b, e - b);
      pos = gap = e;
    } else {
      // Empty match: step over one character so the loop advances.
      pos = b + 1;
      while (pos < n && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      gap = b;
    }
  }
  if (gap < n) out.emplace_back(text.data() + gap, n - gap);
}

}  // namespace kaizen::text
