#include "learning/text/chat_template.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "learning/text/chat_template_impl.h"
#include "learning/text/tokenizer.h"
#include "learning/text/utf8.h"

namespace kaizen::text {

namespace chat_impl {

std::string lstrip_nl(const std::string& s) {
  const size_t b = s.find_first_not_of('\n');
  return b == std::string::npos ? "" : s.substr(b);
}
std::string rstrip_nl(const std::string& s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}
std::string strip_nl(const std::string& s) {
  return lstrip_nl(rstrip_nl(s));
}

namespace {
bool is_py_space(char32_t c) {
  return utf8::is_whitespace(c) || (c >= 0x1C && c <= 0x1F);
}

// Length of the prefix of `s` that the pre-tokenizer would fuse with a preceding "\n":
// its leading whitespace up to and including the last line break in it (the regex's
// \s*[\r\n]+ alternative).
size_t fused_whitespace_prefix(const std::string& s) {
  size_t i = 0, len = 0, cut = 0;
  while (i < s.size() && utf8::next_sequence(s, i, &len) == utf8::Seq::kValid) {
    const char32_t c = utf8::decode_at(s, i, len);
    if (!utf8::is_whitespace(c)) break;
    i += len;
    if (c == '\n' || c == '\r') cut = i;
  }
  return cut;
}
}  // namespace

std::string trim(const std::string& s) {
  size_t b = 0, len = 0;
  while (b < s.size() && utf8::next_sequence(s, b, &len) == utf8::Seq::kValid &&
         is_py_space(utf8::decode_at(s, b, len))) {
    b += len;
  }
  size_t e = s.size(), start = 0;
  while (e > b && is_py_space(utf8::decode_before(s, e, &start))) e = start;
  return s.substr(b, e - b);
}

void Pieces::add(std::string text, bool trainable) {
  if (text.empty()) return;
  if (!out_.empty() && out_.back().trainable == trainable) {
    out_.back().text += text;
  } else {
    out_.push_back({std::move(text), trainable});
  }
}

void Pieces::add_answer(const std::string& body, const std::string& end_of_turn, bool trainable) {
  const size_t cut = trainable ? fused_whitespace_prefix(body) : 0;
  add(body.substr(0, cut), false);
  add(body.substr(cut) + end_of_turn, trainable);
}

}  // namespace chat_impl

namespace {

bool read_text(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// The chat_template text of tokenizer_config.json (a string, or a list of named templates
// of which "default" is used), or of chat_template.jinja, which newer transformers write.
std::string read_template_text(const std::string& dir) {
  std::string text;
  if (read_text(dir + "/chat_template.jinja", &text)) return text;
  const std::string path = dir + "/tokenizer_config.json";
  if (!read_text(path, &text)) return "";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw TokenizerError(path + ": malformed JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("chat_template")) return "";
  const auto& t = j.at("chat_template");
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    for (const auto& named : t) {
      if (named.is_object() && named.value("name", "") == "default") {
        return named.value("template", "");
      }
    }
  }
  return "";
}

std::string read_model_type(const std::string& dir) {
  std::string text;
  if (!read_text(dir + "/config.json", &text)) return "";
  try {
    const auto j = nlohmann::json::parse(text);
    return j.is_object() ? j.value("model_type", "") : "";
  } catch (const nlohmann::json::exception&) {
    return "";  // config.json is the model loader's business; here it is only a hint
  }
}

}  // namespace

ChatTemplate ChatTemplate::of_kind(TemplateKind kind) {
  return ChatTemplate(kind);
}

TemplateKind ChatTemplate::kind_from_name(const std::string& name) {
  if (name == "qwen3") return TemplateKind::kQwen3;
  if (name == "chatml") return TemplateKind::kChatML;
  if (name == "llama3") return TemplateKind::kLlama3;
  if (name == "llama31") return TemplateKind::kLlama31;
  throw TokenizerError("unknown chat template '" + name +
                       "' (known: qwen3, chatml, llama3, llama31)");
}

const char* ChatTemplate::name_of(TemplateKind kind) {
  switch (kind) {
    case TemplateKind::kQwen3:
      return "qwen3";
    case TemplateKind::kChatML:
      return "chatml";
    case TemplateKind::kLlama3:
      return "llama3";
    case TemplateKind::kLlama31:
      return "llama31";
  }
  return "?";
}

ChatTemplate ChatTemplate::from_model_dir(const std::string& dir,
                                          const std::string& override_name) {
  if (!override_name.empty()) return ChatTemplate(kind_from_name(override_name));
  const std::string text = read_template_text(dir);
  const bool chatml = text.find("<|im_start|>") != std::string::npos;
  if (chatml && text.find("<think>") != std::string::npos)
    return ChatTemplate(TemplateKind::kQwen3);
  if (chatml) return ChatTemplate(TemplateKind::kChatML);
  if (text.find("Cutting Knowledge Date") != std::string::npos) {
    return ChatTemplate(TemplateKind::kLlama31);
  }
  if (text.find("<|start_header_id|>") != std::string::npos) {
    return ChatTemplate(TemplateKind::kLlama3);
  }
  const std::string type = read_model_type(dir);
  if (type == "qwen3" || type == "qwen3_moe") return ChatTemplate(TemplateKind::kQwen3);
  if (type == "qwen2" || type == "qwen2_moe") return ChatTemplate(TemplateKind::kChatML);
  if (type == "llama") return ChatTemplate(TemplateKind::kLlama3);
  throw TokenizerError(dir + ": cannot tell which chat template to use (" +
                       (text.empty() ? "no chat_template in tokenizer_config.json"
                                     : "chat_template is neither ChatML nor Llama-3") +
                       (type.empty() ? "" : ", model_type '" + type + "'") +
                       "); name one: qwen3, chatml, llama3 or llama31");
}

std::vector<ChatSegment> ChatTemplate::render_pieces(const std::vector<ChatMessage>& messages,
                                                     const ChatOptions& opts,
                                                     bool mark_last_answer) const {
  chat_impl::Pieces p;
  switch (kind_) {
    case TemplateKind::kQwen3:
      chat_impl::render_qwen3(messages, opts, mark_last_answer, p);
      break;
    case TemplateKind::kChatML:
      chat_impl::render_chatml(messages, opts, mark_last_answer, p);
      break;
    case TemplateKind::kLlama3:
      chat_impl::render_llama3(messages, opts, mark_last_answer, p);
      break;
    case TemplateKind::kLlama31:
      chat_impl::render_llama31(messages, opts, mark_last_answer, p);
      break;
  }
  return p.take();
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 const ChatOptions& opts) const {
  std::string out;
  for (const auto& s : render_pieces(messages, opts, false)) out += s.text;
  return out;
}

std::vector<ChatSegment> ChatTemplate::render_segments(
    const std::vector<ChatMessage>& messages,
    const std::vector<nlohmann::ordered_json>& tools) const {
  if (messages.empty() || messages.back().role != "assistant") {
    throw std::invalid_argument("render_segments: the last message must be the assistant's answer");
  }
  ChatOptions opts;
  opts.add_generation_prompt = false;
  opts.enable_thinking = false;
  opts.tools = tools;
  std::vector<ChatSegment> segments = render_pieces(messages, opts, true);
  // Found by fuzzing: Llama-3.1 with tools moves the first message into the user turn
  // whatever its role, so an answer-only conversation would train on nothing.
  if (std::none_of(segments.begin(), segments.end(),
                   [](const ChatSegment& s) { return s.trainable; })) {
    throw std::invalid_argument(
        "render_segments: the template renders nothing of the last message as the "
        "assistant's answer (Llama-3.1 with tools takes the first message as the user's: "
        "start the conversation with a user message)");
  }
  return segments;
}

std::vector<std::string> ChatTemplate::end_of_turn_tokens() const {
  switch (kind_) {
    case TemplateKind::kLlama3:
      return {"<|eot_id|>"};
    case TemplateKind::kLlama31:
      return {"<|eot_id|>", "<|eom_id|>"};
    case TemplateKind::kQwen3:
    case TemplateKind::kChatML:
      break;
  }
  return {"<|im_end|>"};
}

}  // namespace kaizen::text
