// safetensors read (memory-mapped, zero-copy) and write (atomic), plus the Hugging Face
// model-directory layout (single file or shards + model.safetensors.index.json).
//
// Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
// then the data section; offsets are relative to the end of the header.
//
// Validation follows the reference Rust crate (huggingface/safetensors, tensor.rs:
// read_metadata + Metadata::validate): header length <= 100,000,000 bytes and within the
// file; tensors sorted by data_offsets must tile the data section exactly (the first
// begins at 0, each begins where the previous ends, the last ends at the end of the file),
// so overlaps, holes and trailing bytes are all errors; end - begin must equal
// product(shape) * itemsize with overflow checked. Stricter than the crate: duplicate
// JSON keys (which serde would silently collapse) are rejected, and BOOL bytes must be 0/1.
//
// Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. F8_E4M3, F8_E5M2, U16, U32 and
// U64 are recognised, so such a file opens and its header can be inspected, but
// tensor() refuses them (libtorch 1.13 has no such dtype). Any other dtype string is a
// bad file. Host byte order must be little-endian (checked at compile time).
#pragma once

#include <torch/types.h>

#include "learning/model/safetensors_header.h"

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kaizen::model {

// One .safetensors file, memory-mapped read-only. Immutable after open(); all methods are
// thread-safe. The file must not be truncated or rewritten in place while open (that is
// SIGBUS territory for any mmap reader); save_safetensors() replaces files by rename, which
// is safe: readers keep the old inode.
class SafetensorsFile {
 public:
  // Maps the file and validates the whole header eagerly. Throws SafetensorsError.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws SafetensorsError naming the tensor and the file if absent.
  const TensorInfo& info(const std::string& name) const;

  // CPU tensor of the stored dtype and shape. Zero-copy when the data is aligned to its
  // itemsize (always, for files written by save_safetensors or the reference writers):
  // the tensor aliases the mapping and keeps it alive through its deleter, so it may
  // outlive this object. Otherwise a private copy. READ-ONLY by contract: the mapping is
  // PROT_READ, so writing through an aliasing tensor faults; clone() before mutating.
  // Throws SafetensorsError if absent, for a recognised-but-unsupported dtype, or for a
  // BOOL byte other than 0/1.
  torch::Tensor tensor(const std::string& name) const;

  // True when tensor(name) would alias the mapping rather than copy.
  bool is_zero_copy(const std::string& name) const;

  // The mapped bytes [data(), data() + mapped_size()) — for tests and diagnostics.
  const uint8_t* mapped_data() const;
  size_t mapped_size() const;

  struct Mapping;  // the mmap'd region; shared with tensors that alias it

 private:
  SafetensorsFile() = default;

  std::string path_;
  std::shared_ptr<const Mapping> mapping_;
  uint64_t data_start_ = 0;  // 8 + header length
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights: `<dir>/model.safetensors`, or shards listed by
// `<dir>/model.safetensors.index.json` ({"weight_map": {name: shard file}}); a path to a
// regular file opens just that file. A cheap-to-copy value; the files stay mapped while
// any copy (or any tensor from it) lives. Thread-safe like SafetensorsFile.
//
// For a sharded model, the names are exactly the weight_map's keys: each shard must exist
// (a plain file name in the same directory), validate, and contain every tensor mapped to
// it; tensors a shard holds beyond its weight_map entries are not exposed.
class SafetensorsCheckpoint {
 public:
  // Throws SafetensorsError naming the directory/file and, where relevant, the tensor.
  static SafetensorsCheckpoint open(const std::string& dir_or_file);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  // Both throw SafetensorsError naming the tensor and the checkpoint if absent.
  const TensorInfo& info(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;
  // The file holding `name` (throws like info()).
  const SafetensorsFile& file_of(const std::string& name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;  // points into files_
};

// Writes `tensors` to `path` atomically (atomic_write_file, durable_file.h: a temporary
// in the same directory, fsync, rename over `path`, fsync the directory); on a failure
// before the rename the temporary is removed and `path` is untouched. Tensors may live
// on any device and be non-contiguous; they are copied to CPU contiguous. Header keys:
// "__metadata__" first (omitted when empty), then names sorted; the header is
// space-padded to a multiple of 8 and data is laid out by descending itemsize, then name
// (like the Rust reference writer, which sorts by dtype alignment), so every tensor is
// aligned to its itemsize and zero-copy readable.
// Throws SafetensorsError (naming the tensor) for an unsupported dtype, a duplicate or
// reserved name, or an I/O error.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace kaizen::model
