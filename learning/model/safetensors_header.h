// The torch-free half of the safetensors reader (learning/model/safetensors.h): the
// header and the shard index, parsed and validated from bytes. Everything a downloaded
// file can say about itself is checked here, before any tensor is touched, so that this
// part can be fuzzed on its own (tests/fuzz/fuzz_safetensors.cc) without libtorch.
//
// The rules are those listed at the top of safetensors.h (the reference crate's
// read_metadata + Metadata::validate, plus duplicate keys and NUL bytes refused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kaizen::model {

// Every failure in the safetensors reader and writer (bad file, missing tensor, I/O
// error) is a SafetensorsError whose message names the file and, where one is involved,
// the tensor.
struct SafetensorsError : std::runtime_error {
  using runtime_error::runtime_error;
};

[[noreturn]] void throw_safetensors_error(const std::string& path, const std::string& what);
[[noreturn]] void throw_safetensors_error(const std::string& path, const std::string& tensor,
                                          const std::string& what);

// One tensor's header entry. begin/end are byte offsets into the data section.
struct TensorInfo {
  std::string name;
  std::string dtype;  // as written in the file: "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
  int64_t numel() const;
};

// Same limit as the reference crate: a header this large is a corrupt length field,
// not a real model (Qwen3-32B's header is ~100 KB).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// The key of the string -> string metadata map, reserved as a tensor name.
constexpr const char* kSafetensorsMetadataKey = "__metadata__";

// Bytes per element of a safetensors dtype string, or 0 if the string is not a dtype.
size_t safetensors_itemsize(const std::string& dtype);

struct SafetensorsHeader {
  uint64_t data_start = 0;  // 8 + header length: where the data section begins
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

// `file` is the whole file (`size` bytes). Validates the length field, the JSON header and
// that the tensors tile the data section exactly. Throws SafetensorsError naming `path`.
SafetensorsHeader parse_safetensors_header(const std::string& path, const uint8_t* file,
                                           uint64_t size);

// model.safetensors.index.json: {"weight_map": {tensor: shard file name}}. Each shard is
// a plain file name (no '/', not "." or ".."), so an index cannot point elsewhere on disk.
// Throws SafetensorsError naming `path` and, where one is involved, the tensor.
std::map<std::string, std::string> parse_safetensors_index(const std::string& path,
                                                           std::string_view text);

}  // namespace kaizen::model
