#include "learning/model/safetensors.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "learning/model/durable_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader maps it without byte swapping"
#endif

namespace kaizen::model {

namespace fs = std::filesystem;

namespace {

// Same limit as the reference crate: a header this large is a corrupt length field,
// not a real model (Qwen3-32B's header is ~100 KB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeSpec {
  const char* name;
  size_t itemsize;
  bool supported;  // false: recognised, but libtorch 1.13 has no matching dtype
  at::ScalarType scalar;
};

constexpr DtypeSpec kDtypes[] = {
    {"F64", 8, true, at::kDouble},    {"F32", 4, true, at::kFloat},
    {"F16", 2, true, at::kHalf},      {"BF16", 2, true, at::kBFloat16},
    {"I64", 8, true, at::kLong},      {"I32", 4, true, at::kInt},
    {"I16", 2, true, at::kShort},     {"I8", 1, true, at::kChar},
    {"U8", 1, true, at::kByte},       {"BOOL", 1, true, at::kBool},
    {"F8_E4M3", 1, false, at::kByte}, {"F8_E5M2", 1, false, at::kByte},
    {"U16", 2, false, at::kByte},     {"U32", 4, false, at::kByte},
    {"U64", 8, false, at::kByte},
};

const DtypeSpec* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeSpec* find_dtype(at::ScalarType scalar) {
  for (const auto& d : kDtypes) {
    if (d.supported && d.scalar == scalar) return &d;
  }
  return nullptr;
}

std::string in_quotes(const std::string& s) {
  return "'" + s + "'";
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw SafetensorsError("safetensors " + path + ": " + what);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name,
                              const std::string& what) {
  throw SafetensorsError("safetensors " + path + ": tensor " + in_quotes(name) + ": " + what);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// nlohmann keeps the last of duplicate keys silently; a safetensors header with two
// entries for one tensor is corrupt, so record the first duplicate at any depth.
class DuplicateKeyFinder {
 public:
  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      keys_.emplace_back();
    } else if (event == E::object_end) {
      if (!keys_.empty()) keys_.pop_back();
    } else if (event == E::key && !keys_.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!keys_.back().insert(key).second && duplicate_.empty()) duplicate_ = key;
    }
    return true;
  }
  const std::string& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::string duplicate_;
};

nlohmann::json parse_json_object(const std::string& path, const char* begin, const char* end,
                                 const char* what) {
  // The callback is copied into the parser; share the state through a pointer.
  auto finder = std::make_shared<DuplicateKeyFinder>();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(begin, end,
                              [finder](int d, nlohmann::json::parse_event_t e, nlohmann::json& p) {
                                return (*finder)(d, e, p);
                              });
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string(what) + " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) fail(path, std::string(what) + " is not a JSON object");
  if (!finder->duplicate().empty()) {
    fail(path, std::string(what) + " has duplicate key " + in_quotes(finder->duplicate()));
  }
  return j;
}

bool checked_product(const std::vector<int64_t>& shape, uint64_t itemsize, uint64_t* out) {
  uint64_t n = itemsize;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

TensorInfo parse_tensor_entry(const std::string& path, const std::string& name,
                              const nlohmann::json& entry) {
  if (!entry.is_object()) fail_tensor(path, name, "header entry is not a JSON object");
  TensorInfo info;
  info.name = name;

  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) {
    fail_tensor(path, name, "missing or non-string \"dtype\"");
  }
  info.dtype = dtype->get<std::string>();
  const DtypeSpec* spec = find_dtype(info.dtype);
  if (spec == nullptr) fail_tensor(path, name, "unknown dtype " + in_quotes(info.dtype));

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) {
    fail_tensor(path, name, "missing or non-array \"shape\"");
  }
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail_tensor(path, name,
                  "shape " + shape->dump() +
                      " has a dimension that is not a "
                      "non-negative integer");
    }
    info.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    fail_tensor(path, name, "\"data_offsets\" must be two non-negative integers");
  }
  info.begin = (*offsets)[0].get<uint64_t>();
  info.end = (*offsets)[1].get<uint64_t>();
  if (info.begin > info.end) {
    fail_tensor(path, name,
                "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                    "] begin after end");
  }

  uint64_t nbytes = 0;
  if (!checked_product(info.shape, spec->itemsize, &nbytes)) {
    fail_tensor(path, name, "shape " + shape->dump() + " overflows");
  }
  if (nbytes != info.end - info.begin) {
    fail_tensor(path, name,
                "shape " + shape->dump() + " of " + info.dtype + " needs " +
                    std::to_string(nbytes) + " bytes but data_offsets span " +
                    std::to_string(info.end - info.begin));
  }
  return info;
}

// Tensors sorted by offsets must tile [0, data_size) exactly, as in the reference crate.
void check_tiling(const std::string& path, const std::map<std::string, TensorInfo>& tensors,
                  uint64_t data_size) {
  std::vector<const TensorInfo*> order;
  for (const auto& [name, info] : tensors) {
    if (info.end > data_size) {
      fail_tensor(path, name,
                  "data_offsets end " + std::to_string(info.end) + " is beyond the data section (" +
                      std::to_string(data_size) + " bytes; file truncated?)");
    }
    order.push_back(&info);
  }
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : order) {
    if (t->begin < expected) {
      fail_tensor(path, t->name,
                  "data_offsets [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
                      "] overlap tensor " + in_quotes(prev->name) + " [" +
                      std::to_string(prev->begin) + ", " + std::to_string(prev->end) + "]");
    }
    if (t->begin > expected) {
      fail_tensor(path, t->name,
                  "data_offsets begin " + std::to_string(t->begin) + " leaves a hole after " +
                      (prev ? "tensor " + in_quotes(prev->name) + " (ends at " +
                                  std::to_string(prev->end) + ")"
                            : std::string("the start of the data section")));
    }
    expected = t->end;
    prev = t;
  }
  if (expected != data_size) {
    fail(path, "data section is " + std::to_string(data_size) + " bytes but tensors cover " +
                   std::to_string(expected) + " (trailing bytes)");
  }
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t safetensors_itemsize(const std::string& dtype) {
  const DtypeSpec* spec = find_dtype(dtype);
  return spec ? spec->itemsize : 0;
}

// ---------------------------------------------------------------------------------------
// SafetensorsFile

struct SafetensorsFile::Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data != nullptr) munmap(const_cast<uint8_t*>(data), size);
  }
};

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: " + errno_text(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, "cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path,
         "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  auto mapping = std::make_shared<Mapping>();
  void* p = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);  // the mapping keeps the file referenced
  if (p == MAP_FAILED) fail(path, "cannot mmap: " + errno_text(map_err));
  mapping->data = static_cast<const uint8_t*>(p);
  mapping->size = file_size;

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | mapping->data[i];
  if (header_len > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kMaxHeaderBytes) + "-byte limit (corrupt length field?)");
  }
  if (header_len > file_size - 8) {
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(file_size) + "-byte file");
  }

  const char* header = reinterpret_cast<const char*>(mapping->data + 8);
  // nlohmann stops at a NUL as if the input ended, which would accept trailing garbage
  // that the reference (serde_json) rejects.
  if (const void* nul = std::memchr(header, '\0', header_len)) {
    fail(path, "header is not valid JSON: NUL byte at offset " +
                   std::to_string(8 + (static_cast<const char*>(nul) - header)));
  }
  nlohmann::json j = parse_json_object(path, header, header + header_len, "header");

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->data_start_ = 8 + header_len;
  for (const auto& [key, value] : j.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) fail(path, "\"__metadata__\" is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          fail(path, "\"__metadata__\" value for " + in_quotes(mk) + " is not a string");
        }
        file->metadata_.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    file->tensors_.emplace(key, parse_tensor_entry(path, key, value));
  }
  check_tiling(path, file->tensors_, file_size - file->data_start_);
  file->mapping_ = std::move(mapping);
  return file;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail_tensor(path_, name, "not in this file");
  return it->second;
}

bool SafetensorsFile::is_zero_copy(const std::string& name) const {
  const TensorInfo& t = info(name);
  const DtypeSpec* spec = find_dtype(t.dtype);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(mapping_->data + data_start_ + t.begin);
  return spec->supported && t.end > t.begin && addr % spec->itemsize == 0;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo& t = info(name);
  const DtypeSpec* spec = find_dtype(t.dtype);  // validated at open()
  if (!spec->supported) {
    fail_tensor(path_, name,
                "dtype " + t.dtype +
                    " is recognised but not supported by "
                    "this build's libtorch (1.13); convert the checkpoint to "
                    "BF16/F16/F32");
  }
  const auto options = at::TensorOptions().dtype(spec->scalar).device(at::kCPU);
  const uint8_t* src = mapping_->data + data_start_ + t.begin;
  const size_t nbytes = t.end - t.begin;
  if (nbytes == 0) return at::empty(t.shape, options);
  if (spec->scalar == at::kBool) {
    // torch assumes bool bytes are 0/1; anything else gives inconsistent results.
    for (size_t i = 0; i < nbytes; ++i) {
      if (src[i] > 1) {
        fail_tensor(path_, name,
                    "BOOL byte " + std::to_string(src[i]) + " at element " + std::to_string(i) +
                        " is not 0 or 1");
      }
    }
  }
  if (reinterpret_cast<uintptr_t>(src) % spec->itemsize == 0) {
    std::shared_ptr<const Mapping> keep = mapping_;
    return at::from_blob(
        const_cast<uint8_t*>(src), t.shape, [keep](void*) mutable { keep.reset(); }, options);
  }
  at::Tensor copy = at::empty(t.shape, options);
  std::memcpy(copy.data_ptr(), src, nbytes);
  return copy;
}

const uint8_t* SafetensorsFile::mapped_data() const {
  return mapping_->data;
}
size_t SafetensorsFile::mapped_size() const {
  return mapping_->size;
}

// ---------------------------------------------------------------------------------------
// SafetensorsCheckpoint

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr uint64_t kMaxIndexBytes = 100'000'000;

std::string read_small_file(const std::string& path, uint64_t limit) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot stat: " + ec.message());
  if (size > limit) fail(path, "is " + std::to_string(size) + " bytes, over the limit");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open: " + errno_text(errno));
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) fail(path, "short read");
  return text;
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir_or_file) {
  SafetensorsCheckpoint ckpt;
  ckpt.path_ = dir_or_file;
  std::error_code ec;
  const auto status = fs::status(dir_or_file, ec);
  if (ec || !fs::exists(status)) fail(dir_or_file, "no such file or directory");

  std::string index_path;
  if (fs::is_directory(status)) {
    const fs::path dir(dir_or_file);
    if (fs::exists(dir / kIndexFile, ec)) {
      index_path = (dir / kIndexFile).string();
    } else if (fs::exists(dir / kSingleFile, ec)) {
      ckpt.files_.push_back(SafetensorsFile::open((dir / kSingleFile).string()));
    } else {
      fail(dir_or_file, std::string("directory has neither ") + kSingleFile + " nor " + kIndexFile);
    }
  } else if (dir_or_file.size() >= 5 &&
             dir_or_file.compare(dir_or_file.size() - 5, 5, ".json") == 0) {
    index_path = dir_or_file;
  } else {
    ckpt.files_.push_back(SafetensorsFile::open(dir_or_file));
  }

  if (index_path.empty()) {
    for (const auto& [name, info] : ckpt.files_[0]->tensors()) {
      ckpt.where_.emplace(name, ckpt.files_[0].get());
    }
    return ckpt;
  }

  const std::string text = read_small_file(index_path, kMaxIndexBytes);
  nlohmann::json index =
      parse_json_object(index_path, text.data(), text.data() + text.size(), "index");
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) {
    fail(index_path, "missing or non-object \"weight_map\"");
  }
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, shard] : map->items()) {
    if (!shard.is_string()) fail_tensor(index_path, name, "weight_map value is not a string");
    const std::string file = shard.get<std::string>();
    // Shards are plain names beside the index; a path could point anywhere on disk.
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos) {
      fail_tensor(index_path, name, "shard " + in_quotes(file) + " is not a plain file name");
    }
    auto it = shards.find(file);
    if (it == shards.end()) {
      const fs::path shard_path = dir / file;
      if (!fs::exists(shard_path, ec)) {
        fail_tensor(index_path, name, "shard " + in_quotes(file) + " does not exist");
      }
      ckpt.files_.push_back(SafetensorsFile::open(shard_path.string()));
      it = shards.emplace(file, ckpt.files_.back().get()).first;
    }
    if (!it->second->contains(name)) {
      fail_tensor(index_path, name, "not found in its shard " + in_quotes(file));
    }
    ckpt.where_.emplace(name, it->second);
  }
  return ckpt;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

const SafetensorsFile& SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail_tensor(path_, name, "not in this checkpoint");
  return *it->second;
}

const TensorInfo& SafetensorsCheckpoint::info(const std::string& name) const {
  return file_of(name).info(name);
}

torch::Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  return file_of(name).tensor(name);
}

// ---------------------------------------------------------------------------------------
// save_safetensors

namespace {

struct PreparedTensor {
  std::string name;
  const DtypeSpec* spec;
  at::Tensor cpu;  // contiguous
  uint64_t nbytes;
  uint64_t begin = 0;
};

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<PreparedTensor> prepared;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name == kMetadataKey) fail_tensor(path, name, "name is reserved");
    if (!seen.insert(name).second) fail_tensor(path, name, "duplicate name");
    if (!t.defined()) fail_tensor(path, name, "undefined tensor");
    const DtypeSpec* spec = find_dtype(t.scalar_type());
    if (spec == nullptr) {
      fail_tensor(path, name,
                  std::string("dtype ") + c10::toString(t.scalar_type()) +
                      " has no "
                      "safetensors equivalent");
    }
    PreparedTensor p{name, spec, {}, 0};
    try {
      p.cpu = t.detach().to(at::kCPU).contiguous();
    } catch (const std::exception& e) {
      fail_tensor(path, name, std::string("cannot copy to CPU: ") + e.what());
    }
    p.nbytes = static_cast<uint64_t>(p.cpu.numel()) * spec->itemsize;
    prepared.push_back(std::move(p));
  }

  // Data layout: descending itemsize keeps every tensor aligned to its own itemsize
  // with no padding between tensors (padding would be a hole the reference rejects).
  std::vector<PreparedTensor*> layout;
  for (auto& p : prepared) layout.push_back(&p);
  std::sort(layout.begin(), layout.end(), [](const PreparedTensor* a, const PreparedTensor* b) {
    if (a->spec->itemsize != b->spec->itemsize) return a->spec->itemsize > b->spec->itemsize;
    return a->name < b->name;
  });
  uint64_t offset = 0;
  for (PreparedTensor* p : layout) {
    p->begin = offset;
    offset += p->nbytes;
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::vector<const PreparedTensor*> by_name;
  for (const auto& p : prepared) by_name.push_back(&p);
  std::sort(by_name.begin(), by_name.end(),
            [](const PreparedTensor* a, const PreparedTensor* b) { return a->name < b->name; });
  for (const PreparedTensor* p : by_name) {
    nlohmann::ordered_json entry;
    entry["dtype"] = p->spec->name;
    entry["shape"] = p->cpu.sizes().vec();
    entry["data_offsets"] = {p->begin, p->begin + p->nbytes};
    header[p->name] = std::move(entry);
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("tensor names and metadata must be valid UTF-8: ") + e.what());
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = uint8_t(uint64_t(header_text.size()) >> (8 * i));

  try {
    atomic_write_file(path, [&](PendingFile& f) {
      f.write(len_bytes, 8);
      f.write(header_text);
      for (const PreparedTensor* p : layout) {
        if (p->nbytes > 0) f.write(p->cpu.data_ptr(), p->nbytes);
      }
    });
  } catch (const DurableFileError& e) {
    throw SafetensorsError(std::string("safetensors ") + e.what());
  }
}

}  // namespace kaizen::model
