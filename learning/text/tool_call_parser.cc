#include "learning/text/tool_call_parser.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "learning/text/py_json.h"

namespace kaizen::text {

namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

// JSON's whitespace, which is also all the templates write between content and calls.
bool is_ws(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

bool all_ws(std::string_view s) {
  for (char c : s) {
    if (!is_ws(c)) return false;
  }
  return true;
}

// Length of the longest suffix of s that is a proper prefix of tag.
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k) {
    if (s.substr(s.size() - k) == tag.substr(0, k)) return k;
  }
  return 0;
}

// n, shortened so that s[0, n) does not end inside a UTF-8 sequence that s[n..] (or more
// output) would complete.
size_t utf8_boundary(std::string_view s, size_t n) {
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len > back ? n - back : n;
  }
  return n;
}

// A call object, {"name": "N", "arguments" | "parameters": ...}, or nothing. `require_args`:
// the Llama format needs the arguments key to tell a call from a JSON answer.
std::optional<ParsedToolCall> to_call(std::string_view text, bool require_args) {
  const auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;  // also a parse error (discarded)
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string()) return std::nullopt;
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  if (args == j.end() && require_args) return std::nullopt;
  ParsedToolCall call{name->get<std::string>(), "{}"};
  if (args != j.end() && args->is_string()) {
    call.arguments = args->get<std::string>();
  } else if (args != j.end() && !args->is_null()) {
    call.arguments = py_json_dumps(*args);
  }
  return call;
}

}  // namespace

ToolCallParser::ToolCallParser(TemplateKind kind)
    : format_(kind == TemplateKind::kLlama3 || kind == TemplateKind::kLlama31 ? Format::kLlamaJson
                                                                              : Format::kHermes),
      state_(format_ == Format::kHermes ? State::kText : State::kStart) {}

std::vector<ToolCallParser::Event> ToolCallParser::push(std::string_view delta) {
  std::vector<Event> out;
  if (state_ == State::kDone) return out;
  buf_.append(delta);
  if (format_ == Format::kHermes) {
    drain_hermes(false, out);
  } else {
    drain_llama(false, out);
  }
  return out;
}

std::vector<ToolCallParser::Event> ToolCallParser::finish() {
  std::vector<Event> out;
  if (state_ == State::kDone) return out;
  if (format_ == Format::kHermes) {
    drain_hermes(true, out);
  } else {
    drain_llama(true, out);
  }
  state_ = State::kDone;
  buf_.clear();
  return out;
}

void ToolCallParser::emit_text(size_t n, bool final, std::vector<Event>& out) {
  if (!final) n = utf8_boundary(buf_, n);
  if (n == 0) return;
  if (!out.empty() && !out.back().call) {
    out.back().text.append(buf_, 0, n);
  } else {
    out.push_back({buf_.substr(0, n), std::nullopt});
  }
  buf_.erase(0, n);
}

void ToolCallParser::emit_call(ParsedToolCall call, std::vector<Event>& out) {
  out.push_back({"", std::move(call)});
  saw_call_ = true;
}

void ToolCallParser::drain_hermes(bool final, std::vector<Event>& out) {
  for (;;) {
    if (state_ == State::kText) {
      const size_t open = buf_.find(kOpen);
      if (open == std::string::npos) {
        if (final) {
          // Whitespace after the last call is the template's; anything else is text.
          if (after_call_ && all_ws(buf_)) buf_.clear();
          emit_text(buf_.size(), true, out);
          return;
        }
        // Hold what could still become "<tool_call>", and trailing whitespace.
        size_t n = buf_.size() - partial_tag_suffix(buf_, kOpen);
        while (n > 0 && is_ws(buf_[n - 1])) --n;
        if (n > 0) after_call_ = false;
        emit_text(n, false, out);
        return;
      }
      // The whitespace before the tag separates content from the call.
      size_t n = open;
      while (n > 0 && is_ws(buf_[n - 1])) --n;
      if (n > 0) after_call_ = false;
      emit_text(n, true, out);  // a tag follows: nothing here is cut short
      separator_ = buf_.substr(0, open - n);
      buf_.erase(0, open - n + kOpen.size());
      state_ = State::kInCall;
      scan_ = 0;
      continue;
    }
    // kInCall: the body so far is scanned once (scan_ = where "</tool_call>" could start).
    const size_t close = buf_.find(kClose, scan_);
    if (close == std::string::npos) {
      scan_ = buf_.size() < kClose.size() ? 0 : buf_.size() - kClose.size() + 1;
      if (!final) return;
      // Unterminated: the block is text, as the model wrote it.
      buf_.insert(0, separator_ + std::string(kOpen));
      state_ = State::kText;
      after_call_ = false;
      emit_text(buf_.size(), true, out);
      return;
    }
    if (auto call = to_call(std::string_view(buf_).substr(0, close), false)) {
      emit_call(std::move(*call), out);
      buf_.erase(0, close + kClose.size());
      after_call_ = true;
    } else {
      buf_.insert(0, separator_ + std::string(kOpen));
      emit_text(separator_.size() + kOpen.size() + close + kClose.size(), true, out);
      after_call_ = false;
    }
    separator_.clear();
    state_ = State::kText;
  }
}

void ToolCallParser::drain_llama(bool final, std::vector<Event>& out) {
  for (;;) {
    switch (state_) {
      case State::kStart: {
        size_t i = 0;
        while (i < buf_.size() && is_ws(buf_[i])) ++i;
        std::string_view rest = std::string_view(buf_).substr(i);
        if (rest.substr(0, kPythonTag.size()) == kPythonTag) {
          i += kPythonTag.size();
          while (i < buf_.size() && is_ws(buf_[i])) ++i;
          rest = std::string_view(buf_).substr(i);
        } else if (!rest.empty() && kPythonTag.substr(0, rest.size()) == rest && !final) {
          return;  // maybe the tag
        }
        if (rest.empty()) {
          if (!final) return;
          if (saw_call_ && all_ws(buf_)) buf_.clear();
          emit_text(buf_.size(), true, out);
          return;
        }
        if (rest[0] != '{') {
          state_ = State::kText;
          continue;
        }
        state_ = State::kJson;
        scan_ = i;
        depth_ = 0;
        in_string_ = escape_ = false;
        continue;
      }
      case State::kJson: {
        // Find where the object that starts the answer closes (strings may hold braces).
        size_t end = std::string::npos;
        for (; scan_ < buf_.size() && end == std::string::npos; ++scan_) {
          const char c = buf_[scan_];
          if (in_string_) {
            if (escape_) {
              escape_ = false;
            } else if (c == '\\') {
              escape_ = true;
            } else if (c == '"') {
              in_string_ = false;
            }
          } else if (c == '"') {
            in_string_ = true;
          } else if (c == '{' || c == '[') {
            ++depth_;
          } else if ((c == '}' || c == ']') && --depth_ == 0) {
            end = scan_ + 1;
          }
        }
        if (end == std::string::npos) {
          if (!final) return;
          state_ = State::kText;  // unterminated: the answer is text
          continue;
        }
        const size_t start = buf_.find('{');  // the object's first byte (after ws / tag)
        auto call = to_call(std::string_view(buf_).substr(start, end - start), true);
        if (!call) {
          state_ = State::kText;  // JSON, but not a call: the answer as it is
          continue;
        }
        emit_call(std::move(*call), out);
        buf_.erase(0, end);
        state_ = State::kAfterCall;
        continue;
      }
      case State::kAfterCall: {
        size_t i = 0;
        while (i < buf_.size() && is_ws(buf_[i])) ++i;
        if (i == buf_.size()) {
          if (final) buf_.clear();
          return;
        }
        if (buf_[i] == ';') {
          buf_.erase(0, i + 1);
          state_ = State::kStart;
        } else {
          state_ = State::kText;
        }
        continue;
      }
      case State::kText:
        emit_text(buf_.size(), final, out);
        return;
      case State::kInCall:
      case State::kDone:
        return;
    }
  }
}

}  // namespace kaizen::text
