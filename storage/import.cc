#include "storage/import.h"

#include <filesystem>
#include <fstream>

#include "storage/store.h"

namespace kaizen::storage {

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
    Status s = parse_chat_line(line, &e);
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
