#include "learning/text/chat_template.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "learning/text/tokenizer.h"
#include "learning/text/utf8.h"

namespace kaizen::text {

namespace {

// Python's str.lstrip('\n') / rstrip('\n') / strip('\n').
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

// Jinja's `trim` (Python str.strip()): Unicode whitespace on both ends.
bool is_py_space(char32_t c) {
  return utf8::is_whitespace(c) || (c >= 0x1C && c <= 0x1F);
}
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

class Pieces {
 public:
  void add(std::string text, bool trainable) {
    if (text.empty()) return;
    if (!out_.empty() && out_.back().trainable == trainable) {
      out_.back().text += text;
    } else {
      out_.push_back({std::move(text), trainable});
    }
  }
  // The final answer: leading whitespace that tokenizes together with the prompt stays
  // with the prompt (see render_segments in the header).
  void add_answer(const std::string& body, const std::string& end_of_turn, bool trainable) {
    const size_t cut = trainable ? fused_whitespace_prefix(body) : 0;
    add(body.substr(0, cut), false);
    add(body.substr(cut) + end_of_turn, trainable);
  }
  std::vector<ChatSegment> take() { return std::move(out_); }

 private:
  std::vector<ChatSegment> out_;
};

bool is_tool_response(const std::string& s) {
  const std::string open = "<tool_response>", close = "</tool_response>";
  return s.size() >= open.size() + close.size() - 0 && s.compare(0, open.size(), open) == 0 &&
         s.compare(s.size() - close.size(), close.size(), close) == 0;
}

void render_qwen3(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                  Pieces& p) {
  const size_t n = msgs.size();
  if (n > 0 && msgs[0].role == "system") {
    p.add("<|im_start|>system\n" + msgs[0].content + "<|im_end|>\n", false);
  }
  // The last user message that is not a tool response (the template's last_query_index).
  size_t last_query = n == 0 ? 0 : n - 1;
  for (size_t k = n; k-- > 0;) {
    if (msgs[k].role == "user" && !is_tool_response(msgs[k].content)) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = msgs[i];
    const bool last = i + 1 == n;
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      p.add("<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n", false);
    } else if (m.role == "assistant") {
      std::string content = m.content, reasoning;
      const size_t close = m.content.find("</think>");
      if (close != std::string::npos) {
        content = lstrip_nl(m.content.substr(m.content.rfind("</think>") + 8));
        const std::string before = rstrip_nl(m.content.substr(0, close));
        const size_t open = before.rfind("<think>");
        reasoning = lstrip_nl(open == std::string::npos ? before : before.substr(open + 7));
      }
      std::string body;
      if (i > last_query && (last || !reasoning.empty())) {
        p.add("<|im_start|>" + m.role + "\n<think>\n" + strip_nl(reasoning) + "\n</think>\n\n",
              false);
        body = lstrip_nl(content);
      } else {
        p.add("<|im_start|>" + m.role + "\n", false);
        body = content;
      }
      p.add_answer(body, "<|im_end|>", mark && last);
      p.add("\n", false);
    } else if (m.role == "tool") {
      std::string s;
      if (i == 0 || msgs[i - 1].role != "tool") s += "<|im_start|>user";
      s += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (last || msgs[i + 1].role != "tool") s += "<|im_end|>\n";
      p.add(s, false);
    }
  }
  if (opts.add_generation_prompt) {
    p.add("<|im_start|>assistant\n", false);
    if (!opts.enable_thinking) p.add("<think>\n\n</think>\n\n", false);
  }
}

void render_chatml(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                   Pieces& p) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    p.add("<|im_start|>" + m.role + "\n", false);
    p.add_answer(m.content, "<|im_end|>", mark && i + 1 == msgs.size());
    p.add("\n", false);
  }
  if (opts.add_generation_prompt) p.add("<|im_start|>assistant\n", false);
}

void render_llama3(const std::vector<ChatMessage>& msgs, const ChatOptions& opts, bool mark,
                   Pieces& p) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    p.add(std::string(i == 0 ? "<|begin_of_text|>" : "") + "<|start_header_id|>" + m.role +
              "<|end_header_id|>\n\n",
          false);
    p.add_answer(trim(m.content), "<|eot_id|>", mark && i + 1 == msgs.size());
  }
  if (opts.add_generation_prompt) p.add("<|start_header_id|>assistant<|end_header_id|>\n\n", false);
}

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
  throw TokenizerError("unknown chat template '" + name + "' (known: qwen3, chatml, llama3)");
}

const char* ChatTemplate::name_of(TemplateKind kind) {
  switch (kind) {
    case TemplateKind::kQwen3:
      return "qwen3";
    case TemplateKind::kChatML:
      return "chatml";
    case TemplateKind::kLlama3:
      return "llama3";
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
                       "); name one: qwen3, chatml or llama3");
}

std::vector<ChatSegment> ChatTemplate::render_pieces(const std::vector<ChatMessage>& messages,
                                                     const ChatOptions& opts,
                                                     bool mark_last_answer) const {
  Pieces p;
  switch (kind_) {
    case TemplateKind::kQwen3:
      render_qwen3(messages, opts, mark_last_answer, p);
      break;
    case TemplateKind::kChatML:
      render_chatml(messages, opts, mark_last_answer, p);
      break;
    case TemplateKind::kLlama3:
      render_llama3(messages, opts, mark_last_answer, p);
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
    const std::vector<ChatMessage>& messages) const {
  if (messages.empty() || messages.back().role != "assistant") {
    throw std::invalid_argument("render_segments: the last message must be the assistant's answer");
  }
  ChatOptions opts;
  opts.add_generation_prompt = false;
  opts.enable_thinking = false;
  return render_pieces(messages, opts, true);
}

std::vector<std::string> ChatTemplate::end_of_turn_tokens() const {
  if (kind_ == TemplateKind::kLlama3) return {"<|eot_id|>"};
  return {"<|im_end|>"};
}

}  // namespace kaizen::text
