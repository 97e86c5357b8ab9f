// Knowledge import: OpenAI chat fine-tuning JSONL -> approved examples.
//
// Each non-blank line must be {"messages":[{"role":..., "content":...}, ...]} with roles
// system/user/assistant/tool, string contents, at least one user message, and an
// assistant message last (function calling: see storage/chat_line.h). Good lines become
// examples with source knowledge, state approved and provenance "<file name>:<line>". A
// bad line is reported (line number + reason) and skipped; the other lines are still
// imported. Import is idempotent: a line whose
// messages are already stored (same content hash, from any earlier import or from the
// same file) counts as a duplicate and adds nothing.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "storage/chat_line.h"
#include "storage/records.h"
#include "storage/status.h"

namespace kaizen::storage {

class Store;

struct ImportLineError {
  uint64_t line = 0;   // 1-based
  std::string reason;  // e.g. "last message must be from the assistant (got user)"
};

struct ImportReport {
  uint64_t lines = 0;       // lines read, blank ones included
  uint64_t imported = 0;    // new examples stored
  uint64_t duplicates = 0;  // lines whose content was already stored
  std::vector<ImportLineError> errors;
  std::vector<uint64_t> example_ids;  // ids of the new examples, in line order
};

// Imports from a stream; `source_name` is used in provenance ("faq.jsonl").
// Returns a non-OK Status only when the store fails (the report then covers the lines
// written before the failure); bad lines are in report->errors.
Status import_chat_jsonl(Store& store, std::istream& in, const std::string& source_name,
                         ImportReport* report);
// Opens `path` (NotFound / IOError) and imports it with its file name as source_name.
Status import_chat_jsonl_file(Store& store, const std::string& path, ImportReport* report);

}  // namespace kaizen::storage
