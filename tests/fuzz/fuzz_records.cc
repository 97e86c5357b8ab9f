// libFuzzer target: bytes as stored in RocksDB -> storage::decode for each record type
// (the first byte picks which). Damaged bytes must be a Status, never a crash; a record
// that decodes must re-encode canonically: encode(decode(b)) decodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "storage/records.h"
#include "tests/fuzz/fuzz_check.h"

namespace st = kaizen::storage;

namespace {

template <typename Record>
void round_trip(std::string_view bytes) {
  Record r;
  if (!st::decode(bytes, "fuzz", &r).ok()) return;
  const std::string once = st::encode(r);
  Record again;
  FUZZ_CHECK(st::decode(once, "fuzz/re-encoded", &again).ok());
  FUZZ_CHECK(st::encode(again) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0:
      round_trip<st::Conversation>(bytes);
      break;
    case 1:
      round_trip<st::Message>(bytes);
      break;
    case 2:
      round_trip<st::Feedback>(bytes);
      break;
    case 3:
      round_trip<st::Example>(bytes);
      break;
    case 4:
      round_trip<st::Adapter>(bytes);
      break;
    case 5:
      round_trip<st::Run>(bytes);
      break;
    default:
      round_trip<st::ReplayEntry>(bytes);
      break;
  }
  return 0;
}
