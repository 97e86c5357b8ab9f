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

std::vector<text::ChatMessage> parse_chat_record(const std::string& line, std::vector<int>* weights) {
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
  static const std::set<std::string> kRoles = {"system", "user", "assistant"};
  std::vector<text::ChatMessage> out;
  bool has_answer = false;
  int index = 0;
  for (const auto& m : j["messages"]) {
    ++index;
    const std::string where = "message " + std::to_string(index) + ": ";
    if (!m.is_object()) throw std::invalid_argument(where + "not an object");
    if (!m.contains("role") || !m["role"].is_string()) throw std::invalid_argument(where + "no string \"role\"");
    if (!m.contains("content") || !m["content"].is_string()) {
      throw std::invalid_argument(where + "no string \"content\"");
    }
    const std::string role = m["role"].get<std::string>();
    if (!kRoles.count(role)) {
      throw std::invalid_argument(where + "role '" + role + "' is not system, user or assistant");
    }
    int weight = 1;
    if (m.contains("weight")) {
      if (!m["weight"].is_number_integer() || (m["weight"] != 0 && m["weight"] != 1)) {
        throw std::invalid_argument(where + "\"weight\" must be 0 or 1");
      }
      weight = m["weight"].get<int>();
    }
    if (role == "assistant" && weight == 1) has_answer = true;
    out.push_back({role, m["content"].get<std::string>()});
    if (weights) weights->push_back(weight);
  }
  if (!has_answer) throw std::invalid_argument("no assistant message to learn");
  return out;
}

Example encode_example(const std::vector<text::ChatMessage>& messages, const text::Tokenizer& tokenizer,
                       const text::ChatTemplate& chat_template, int64_t max_len, bool* truncated) {
  Example ex;
  for (const auto& seg : chat_template.render_segments(messages)) {
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
      auto messages = parse_chat_record(line, &weights);
      for (size_t i = 0; i < messages.size(); ++i) {
        if (messages[i].role != "assistant" || weights[i] == 0) continue;
        std::vector<text::ChatMessage> upto(messages.begin(), messages.begin() + i + 1);
        bool cut = false;
        Example ex = encode_example(upto, tokenizer, chat_template, options.max_len, &cut);
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
