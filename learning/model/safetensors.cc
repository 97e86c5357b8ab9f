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

#include "learning/model/durable_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader maps it without byte swapping"
#endif

namespace kaizen::model {

namespace fs = std::filesystem;

namespace {

// The dtypes libtorch 1.13 has; safetensors_header.cc knows every safetensors dtype.
struct TorchDtype {
  const char* name;
  at::ScalarType scalar;
};

constexpr TorchDtype kTorchDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},
};

const TorchDtype* find_dtype(const std::string& name) {
  for (const auto& d : kTorchDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const TorchDtype* find_dtype(at::ScalarType scalar) {
  for (const auto& d : kTorchDtypes) {
    if (d.scalar == scalar) return &d;
  }
  return nullptr;
}

std::string in_quotes(const std::string& s) {
  return "'" + s + "'";
}

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

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
  if (fd < 0) throw_safetensors_error(path, "cannot open: " + errno_text(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw_safetensors_error(path, "cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_safetensors_error(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw_safetensors_error(path, "file is " + std::to_string(file_size) +
                                      " bytes, shorter than the 8-byte header length");
  }
  auto mapping = std::make_shared<Mapping>();
  void* p = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);  // the mapping keeps the file referenced
  if (p == MAP_FAILED) throw_safetensors_error(path, "cannot mmap: " + errno_text(map_err));
  mapping->data = static_cast<const uint8_t*>(p);
  mapping->size = file_size;

  SafetensorsHeader header = parse_safetensors_header(path, mapping->data, file_size);
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->data_start_ = header.data_start;
  file->tensors_ = std::move(header.tensors);
  file->metadata_ = std::move(header.metadata);
  file->mapping_ = std::move(mapping);
  return file;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw_safetensors_error(path_, name, "not in this file");
  return it->second;
}

bool SafetensorsFile::is_zero_copy(const std::string& name) const {
  const TensorInfo& t = info(name);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(mapping_->data + data_start_ + t.begin);
  return find_dtype(t.dtype) != nullptr && t.end > t.begin &&
         addr % safetensors_itemsize(t.dtype) == 0;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo& t = info(name);
  const TorchDtype* spec = find_dtype(t.dtype);  // nullptr: recognised, not supported
  if (spec == nullptr) {
    throw_safetensors_error(path_, name,
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
        throw_safetensors_error(path_, name,
                                "BOOL byte " + std::to_string(src[i]) + " at element " +
                                    std::to_string(i) + " is not 0 or 1");
      }
    }
  }
  if (reinterpret_cast<uintptr_t>(src) % safetensors_itemsize(t.dtype) == 0) {
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
  if (ec) throw_safetensors_error(path, "cannot stat: " + ec.message());
  if (size > limit) {
    throw_safetensors_error(path, "is " + std::to_string(size) + " bytes, over the limit");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_safetensors_error(path, "cannot open: " + errno_text(errno));
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) throw_safetensors_error(path, "short read");
  return text;
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir_or_file) {
  SafetensorsCheckpoint ckpt;
  ckpt.path_ = dir_or_file;
  std::error_code ec;
  const auto status = fs::status(dir_or_file, ec);
  if (ec || !fs::exists(status)) throw_safetensors_error(dir_or_file, "no such file or directory");

  std::string index_path;
  if (fs::is_directory(status)) {
    const fs::path dir(dir_or_file);
    if (fs::exists(dir / kIndexFile, ec)) {
      index_path = (dir / kIndexFile).string();
    } else if (fs::exists(dir / kSingleFile, ec)) {
      ckpt.files_.push_back(SafetensorsFile::open((dir / kSingleFile).string()));
    } else {
      throw_safetensors_error(
          dir_or_file, std::string("directory has neither ") + kSingleFile + " nor " + kIndexFile);
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
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, file] : parse_safetensors_index(index_path, text)) {
    auto it = shards.find(file);
    if (it == shards.end()) {
      const fs::path shard_path = dir / file;
      if (!fs::exists(shard_path, ec)) {
        throw_safetensors_error(index_path, name, "shard " + in_quotes(file) + " does not exist");
      }
      ckpt.files_.push_back(SafetensorsFile::open(shard_path.string()));
      it = shards.emplace(file, ckpt.files_.back().get()).first;
    }
    if (!it->second->contains(name)) {
      throw_safetensors_error(index_path, name, "not found in its shard " + in_quotes(file));
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
  if (it == where_.end()) throw_safetensors_error(path_, name, "not in this checkpoint");
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
  const TorchDtype* spec;
  size_t itemsize;
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
    if (name == kSafetensorsMetadataKey) throw_safetensors_error(path, name, "name is reserved");
    if (!seen.insert(name).second) throw_safetensors_error(path, name, "duplicate name");
    if (!t.defined()) throw_safetensors_error(path, name, "undefined tensor");
    const TorchDtype* spec = find_dtype(t.scalar_type());
    if (spec == nullptr) {
      throw_safetensors_error(path, name,
                              std::string("dtype ") + c10::toString(t.scalar_type()) +
                                  " has no "
                                  "safetensors equivalent");
    }
    PreparedTensor p{name, spec, safetensors_itemsize(spec->name), {}, 0};
    try {
      p.cpu = t.detach().to(at::kCPU).contiguous();
    } catch (const std::exception& e) {
      throw_safetensors_error(path, name, std::string("cannot copy to CPU: ") + e.what());
    }
    p.nbytes = static_cast<uint64_t>(p.cpu.numel()) * p.itemsize;
    prepared.push_back(std::move(p));
  }

  // Data layout: descending itemsize keeps every tensor aligned to its own itemsize
  // with no padding between tensors (padding would be a hole the reference rejects).
  std::vector<PreparedTensor*> layout;
  for (auto& p : prepared) layout.push_back(&p);
  std::sort(layout.begin(), layout.end(), [](const PreparedTensor* a, const PreparedTensor* b) {
    if (a->itemsize != b->itemsize) return a->itemsize > b->itemsize;
    return a->name < b->name;
  });
  uint64_t offset = 0;
  for (PreparedTensor* p : layout) {
    p->begin = offset;
    offset += p->nbytes;
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kSafetensorsMetadataKey] = metadata;
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
    throw_safetensors_error(
        path, std::string("tensor names and metadata must be valid UTF-8: ") + e.what());
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
