#include "storage/import.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "storage/store.h"

namespace kaizen::storage {

using nlohmann::json;

Status parse_chat_line(const std::string& line, std::vector<ChatMessage>* messages,
                       std::vector<std::string>* paraphrases) {
  messages->clear();
  if (paraphrases) paraphrases->clear();
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");
  auto it = j.find("messages");
  if (it == j.end()) return Status::InvalidArgument("no \"messages\" field");
  if (!it->is_array()) return Status::InvalidArgument("\"messages\" is not an array");
  if (it->empty()) return Status::InvalidArgument("\"messages\" is empty");
  bool has_user = false;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string at = "message " + std::to_string(i);
    if (!m.is_object()) return Status::InvalidArgument(at + " is not an object");
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string()) {
      return Status::InvalidArgument(at + ": \"role\" missing or not a string");
    }
    const auto& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "user" && r != "assistant") {
      return Status::InvalidArgument(at + ": unknown role '" + r +
                                     "' (want system, user or assistant)");
    }
    if (content == m.end() || !content->is_string()) {
      return Status::InvalidArgument(at + ": \"content\" missing or not a string");
    }
    has_user = has_user || r == "user";
    messages->push_back({r, content->get<std::string>()});
  }
  if (!has_user) return Status::InvalidArgument("no user message");
  if (auto p = j.find("paraphrases"); p != j.end()) {
    if (!p->is_array()) return Status::InvalidArgument("\"paraphrases\" is not an array");
    for (size_t i = 0; i < p->size(); ++i) {
      const json& q = (*p)[i];
      if (!q.is_string() || q.get_ref<const std::string&>().empty()) {
        return Status::InvalidArgument("paraphrase " + std::to_string(i) + " is not a non-empty string");
      }
      if (paraphrases) paraphrases->push_back(q.get<std::string>());
    }
  }
  if (messages->back().role != "assistant") {
    return Status::InvalidArgument("last message must be from the assistant (got " +
                                   messages->back().role + ")");
  }
  return Status::OK();
}

Status import_chat_jsonl(Store& store, std::istream& in, const std::string& source_name,
                         ImportReport* report) {
  *report = ImportReport();
  // Lines are written in chunks: one synced batch per chunk keeps big files fast.
  constexpr size_t kChunk = 256;
  std::vector<Example> pending;
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::OK();
    auto ids = store.add_examples(std::move(pending), /*dedupe=*/true);
    pending.clear();
    if (!ids.ok()) return ids.status();
    for (uint64_t id : *ids) {
      if (id == 0) {
        ++report->duplicates;
      } else {
        ++report->imported;
        report->example_ids.push_back(id);
      }
    }
    return Status::OK();
  };
  std::string line;
  while (std::getline(in, line)) {
    ++report->lines;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank
    Example e;
    Status s = parse_chat_line(line, &e.messages, &e.paraphrases);
    if (!s.ok()) {
      report->errors.push_back({report->lines, s.message()});
      continue;
    }
    e.source = ExampleSource::kKnowledge;
    e.state = ExampleState::kApproved;
    e.provenance = source_name + ":" + std::to_string(report->lines);
    pending.push_back(std::move(e));
    if (pending.size() >= kChunk) KAIZEN_RETURN_IF_ERROR(flush());
  }
  if (in.bad())
    return Status::IOError(source_name + ": read error after line " +
                           std::to_string(report->lines));
  return flush();
}

Status import_chat_jsonl_file(Store& store, const std::string& path, ImportReport* report) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(path + ": no such file");
  if (std::filesystem::is_directory(path, ec))
    return Status::InvalidArgument(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": cannot open for reading");
  return import_chat_jsonl(store, in, std::filesystem::path(path).filename().string(), report);
}

}  // namespace kaizen::storage
