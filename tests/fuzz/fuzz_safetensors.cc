// libFuzzer target: a .safetensors file's bytes -> parse_safetensors_header, and a
// model.safetensors.index.json -> parse_safetensors_index (inputs starting with '{').
// Bad input must be a SafetensorsError; what is accepted must satisfy the rules the
// loader relies on before it maps tensors: each entry's bytes are shape x itemsize, the
// entries tile the data section exactly, every dtype is known, shard names are plain.
#include <cstddef>
#include <cstdint>
#include <string>

#include "learning/model/safetensors_header.h"
#include "tests/fuzz/fuzz_check.h"

using namespace kaizen::model;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == '{') {
    try {
      const auto shards = parse_safetensors_index(
          "fuzz.index.json", std::string_view(reinterpret_cast<const char*>(data), size));
      for (const auto& [tensor, file] : shards) {
        FUZZ_CHECK(!file.empty() && file != "." && file != "..");
        FUZZ_CHECK(file.find('/') == std::string::npos);
      }
    } catch (const SafetensorsError&) {
    }
    return 0;
  }
  try {
    const SafetensorsHeader h = parse_safetensors_header("fuzz.safetensors", data, size);
    FUZZ_CHECK(h.data_start >= 8 && h.data_start <= size);
    FUZZ_CHECK(h.tensors.count(kSafetensorsMetadataKey) == 0);
    uint64_t covered = 0;
    for (const auto& [name, t] : h.tensors) {
      FUZZ_CHECK(t.name == name);
      const size_t itemsize = safetensors_itemsize(t.dtype);
      FUZZ_CHECK(itemsize > 0);
      FUZZ_CHECK(t.begin <= t.end && t.end <= size - h.data_start);
      uint64_t bytes = itemsize;
      for (int64_t d : t.shape) {
        FUZZ_CHECK(d >= 0);
        FUZZ_CHECK(!__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes));
      }
      FUZZ_CHECK(bytes == t.end - t.begin);
      covered += t.end - t.begin;
    }
    FUZZ_CHECK(covered == size - h.data_start);  // no overlap, no hole, no trailing bytes
  } catch (const SafetensorsError&) {
  }
  return 0;
}
