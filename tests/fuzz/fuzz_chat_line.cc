// libFuzzer target: one line of a knowledge JSONL file -> storage::parse_chat_line.
// A bad line must be an InvalidArgument with a reason; an accepted line must export
// (to_chat_record, what feedback export writes) to a line that imports to the same
// example: same export bytes, same content hash (the import's dedupe key).
#include <cstddef>
#include <cstdint>
#include <string>

#include "storage/chat_line.h"
#include "tests/fuzz/fuzz_check.h"

namespace st = kaizen::storage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  st::Example ex;
  const st::Status s = st::parse_chat_line(line, &ex);
  if (!s.ok()) {
    FUZZ_CHECK(!s.message().empty());
    return 0;
  }
  FUZZ_CHECK(!ex.messages.empty() && ex.messages.back().role == "assistant");
  const std::string exported = st::to_chat_record(ex);
  st::Example again;
  const st::Status s2 = st::parse_chat_line(exported, &again);
  if (!s2.ok()) {
    std::fprintf(stderr, "exported line is refused: %s\n%s\n", s2.message().c_str(),
                 exported.c_str());
    std::abort();
  }
  FUZZ_CHECK(st::to_chat_record(again) == exported);
  FUZZ_CHECK(st::content_hash(again.messages, again.tools_json) ==
             st::content_hash(ex.messages, ex.tools_json));
  return 0;
}
