#include "learning/train/dataset.h"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

namespace kaizen::train {

using nlohmann::json;

int64_t Example::target_tokens() const {
  int64_t n = 0;
  for (uint8_t m : loss) n += m;
  return n;
}

int64_t Dataset::target_tokens() const {
  int64_t n = 0;
  for (const auto& e : examples) n += e.target_tokens();
  return n;
}

int64_t Dataset::tokens() const {
  int64_t n = 0;
  for (const auto& e : examples) n += e.length();
  return n;
}

namespace {

// An assistant message's "tool_calls" as OpenAI's fine-tuning format writes them.
std::vector<text::ToolCall> parse_tool_calls(const json& calls, const std::string& where) {
  if (!calls.is_array()) throw std::invalid_argument(where + "\"tool_calls\" must be a list");
  std::vector<text::ToolCall> out;
  for (const auto& c : calls) {
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) {
      throw std::invalid_argument(where + "a tool call needs a \"function\" object");
    }
    const json& fn = c["function"];
    if (!fn.contains("name") || !fn["name"].is_string() || fn["name"].get<std::string>().empty()) {
      throw std::invalid_argument(where + "a tool call needs a function \"name\"");
    }
    text::ToolCall call;
    call.id = c.value("id", "");
    call.name = fn["name"].get<std::string>();
    if (!fn.contains("arguments") || fn["arguments"].is_null()) {
      call.arguments = "{}";
    } else if (fn["arguments"].is_string()) {
      call.arguments = fn["arguments"].get<std::string>();
    } else if (fn["arguments"].is_object()) {
      call.arguments = fn["arguments"].dump();
      call.arguments_is_object = true;
    } else {
      throw std::invalid_argument(where + "tool call \"arguments\" must be a JSON string or object");
    }
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

std::vector<text::ChatMessage> parse_chat_record(const std::string& line, std::vector<int>* weights,
                                                 std::vector<nlohmann::ordered_json>* tools) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("not a JSON object");
  if (!j.contains("messages") || !j["messages"].is_array()) {
    throw std::invalid_argument("no \"messages\" list");
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    if (!j["tools"].is_array()) throw std::invalid_argument("\"tools\" must be a list");
    for (const auto& t : j["tools"]) {
      if (!t.is_object() || !t.contains("function") || !t["function"].is_object() || !t["function"].contains("name")) {
        throw std::invalid_argument("a tool needs {\"type\": \"function\", \"function\": {\"name\": ...}}");
      }
    }
    if (tools) {  // the same list with the record's key order, which the template shows
      const auto ordered = nlohmann::ordered_json::parse(line, nullptr, false);
      for (const auto& t : ordered.at("tools")) tools->push_back(t);
    }
  }
  static const std::set<std::string> kRoles = {"system", "user", "assistant", "tool"};
  std::vector<text::ChatMessage> out;
  bool has_answer = false;
  int index = 0;
  for (const auto& m : j["messages"]) {
    ++index;
    const std::string where = "message " + std::to_string(index) + ": ";
    if (!m.is_object()) throw std::invalid_argument(where + "not an object");
    if (!m.contains("role") || !m["role"].is_string()) throw std::invalid_argument(where + "no string \"role\"");
    const std::string role = m["role"].get<std::string>();
    if (!kRoles.count(role)) {
      throw std::invalid_argument(where + "role '" + role + "' is not system, user, assistant or tool");
    }
    text::ChatMessage msg;
    msg.role = role;
    if (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      msg.tool_calls = parse_tool_calls(m["tool_calls"], where);
    }
    const bool content_optional = !msg.tool_calls.empty();
    if (m.contains("content") && m["content"].is_string()) {
      msg.content = m["content"].get<std::string>();
    } else if (!(content_optional && (!m.contains("content") || m["content"].is_null()))) {
      throw std::invalid_argument(where + "no string \"content\"");
    }
    if (role == "tool") msg.tool_call_id = m.value("tool_call_id", "");
    int weight = 1;
    if (m.contains("weight")) {
      if (!m["weight"].is_number_integer() || (m["weight"] != 0 && m["weight"] != 1)) {
        throw std::invalid_argument(where + "\"weight\" must be 0 or 1");
      }
      weight = m["weight"].get<int>();
    }
    if (role == "assistant" && weight == 1) has_answer = true;
    out.push_back(std::move(msg));
    if (weights) weights->push_back(weight);
  }
  if (!has_answer) throw std::invalid_argument("no assistant message to learn");
  return out;
}

Example encode_example(const std::vector<text::ChatMessage>& messages, const text::Tokenizer& tokenizer,
                       const text::ChatTemplate& chat_template, int64_t max_len, bool* truncated,
                       const std::vector<nlohmann::ordered_json>& tools) {
  Example ex;
  std::string trained;  // the answer as rendered, for a tool-call answer
  for (const auto& seg : chat_template.render_segments(messages, tools)) {
    if (seg.trainable) trained += seg.text;
    const std::vector<int32_t> ids = tokenizer.encode(seg.text, /*parse_special=*/true);
    for (int32_t id : ids) {
      ex.ids.push_back(id);
      ex.loss.push_back(seg.trainable ? 1 : 0);
    }
  }
  // The first token has no predecessor: it can never be a target.
  if (!ex.loss.empty()) ex.loss[0] = 0;
  bool cut = false;
  if (max_len > 0 && ex.length() > max_len) {
    ex.ids.resize(static_cast<size_t>(max_len));
    ex.loss.resize(static_cast<size_t>(max_len));
    cut = true;
  }
  if (truncated) *truncated = cut;
  ex.prompt.assign(messages.begin(), messages.end() - 1);
  ex.answer = messages.back().content;
  ex.tools = tools;
  if (!messages.back().tool_calls.empty()) {
    for (const auto& eot : chat_template.end_of_turn_tokens()) {
      if (trained.size() >= eot.size() && trained.compare(trained.size() - eot.size(), eot.size(), eot) == 0) {
        trained.resize(trained.size() - eot.size());
        break;
      }
    }
    ex.answer = trained;
  }
  return ex;
}

Dataset load_chat_jsonl(const std::string& path, const text::Tokenizer& tokenizer,
                        const text::ChatTemplate& chat_template, const DatasetOptions& options) {
  std::ifstream in(path);
  if (!in) throw DatasetError(path + ": cannot open training data");
  Dataset ds;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ++ds.lines;
    try {
      std::vector<int> weights;
      std::vector<nlohmann::ordered_json> tools;
      auto messages = parse_chat_record(line, &weights, &tools);
      for (size_t i = 0; i < messages.size(); ++i) {
        if (messages[i].role != "assistant" || weights[i] == 0) continue;
        std::vector<text::ChatMessage> upto(messages.begin(), messages.begin() + i + 1);
        bool cut = false;
        Example ex = encode_example(upto, tokenizer, chat_template, options.max_len, &cut, tools);
        ex.line = lineno;
        if (cut) ++ds.truncated;
        if (ex.target_tokens() == 0) {
          ++ds.dropped_empty;
          continue;
        }
        ds.examples.push_back(std::move(ex));
      }
    } catch (const std::invalid_argument& e) {
      ds.bad_lines.push_back({lineno, e.what()});
    } catch (const text::TokenizerError& e) {
      ds.bad_lines.push_back({lineno, e.what()});
    }
  }
  if (in.bad()) throw DatasetError(path + ": read error");
  if (options.strict && !ds.bad_lines.empty()) {
    std::string msg = path + ": " + std::to_string(ds.bad_lines.size()) + " bad line(s) (--strict):";
    for (size_t i = 0; i < ds.bad_lines.size() && i < 20; ++i) {
      msg += "\n  line " + std::to_string(ds.bad_lines[i].line) + ": " + ds.bad_lines[i].reason;
    }
    throw DatasetError(msg);
  }
  if (ds.examples.empty()) {
    std::string msg = path + ": no usable training example";
    if (!ds.bad_lines.empty()) {
      msg += " (" + std::to_string(ds.bad_lines.size()) + " bad lines; first: line " +
             std::to_string(ds.bad_lines[0].line) + ": " + ds.bad_lines[0].reason + ")";
    }
    throw DatasetError(msg);
  }
  return ds;
}

}  // namespace kaizen::train
