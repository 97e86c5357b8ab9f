#include "learning/model/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

namespace kaizen::model {

namespace {

// Every dtype the format defines; which of them this build turns into tensors is
// safetensors.cc's table (libtorch 1.13 has no F8, U16, U32 or U64).
struct DtypeSpec {
  const char* name;
  size_t itemsize;
};

constexpr DtypeSpec kDtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},    {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},      {"BOOL", 1},
    {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

const DtypeSpec* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string in_quotes(const std::string& s) {
  return "'" + s + "'";
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw_safetensors_error(path, what);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name,
                              const std::string& what) {
  throw_safetensors_error(path, name, what);
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
  const size_t itemsize = safetensors_itemsize(info.dtype);
  if (itemsize == 0) fail_tensor(path, name, "unknown dtype " + in_quotes(info.dtype));

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
  if (!checked_product(info.shape, itemsize, &nbytes)) {
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

// `text_offset`: where `text` begins in the file, so that errors give file offsets.
nlohmann::json parse_json_object(const std::string& path, std::string_view text, const char* what,
                                 uint64_t text_offset) {
  // nlohmann stops at a NUL as if the input ended, which would accept trailing garbage
  // that the reference (serde_json) rejects.
  if (const void* nul = std::memchr(text.data(), '\0', text.size())) {
    fail(path, std::string(what) + " is not valid JSON: NUL byte at offset " +
                   std::to_string(text_offset + static_cast<uint64_t>(
                                                    static_cast<const char*>(nul) - text.data())));
  }
  // The callback is copied into the parser; share the state through a pointer.
  auto finder = std::make_shared<DuplicateKeyFinder>();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(),
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

}  // namespace

void throw_safetensors_error(const std::string& path, const std::string& what) {
  throw SafetensorsError("safetensors " + path + ": " + what);
}

void throw_safetensors_error(const std::string& path, const std::string& tensor,
                             const std::string& what) {
  throw SafetensorsError("safetensors " + path + ": tensor " + in_quotes(tensor) + ": " + what);
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t safetensors_itemsize(const std::string& dtype) {
  const DtypeSpec* spec = find_dtype(dtype);
  return spec ? spec->itemsize : 0;
}

SafetensorsHeader parse_safetensors_header(const std::string& path, const uint8_t* file,
                                           uint64_t size) {
  if (size < 8) {
    fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file[i];
  if (header_len > kMaxSafetensorsHeaderBytes) {
    fail(path, "header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kMaxSafetensorsHeaderBytes) +
                   "-byte limit (corrupt length field?)");
  }
  if (header_len > size - 8) {
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(size) + "-byte file");
  }
  const std::string_view text(reinterpret_cast<const char*>(file + 8), header_len);
  const nlohmann::json j = parse_json_object(path, text, "header", 8);

  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  for (const auto& [key, value] : j.items()) {
    if (key == kSafetensorsMetadataKey) {
      if (!value.is_object()) fail(path, "\"__metadata__\" is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          fail(path, "\"__metadata__\" value for " + in_quotes(mk) + " is not a string");
        }
        header.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    header.tensors.emplace(key, parse_tensor_entry(path, key, value));
  }
  check_tiling(path, header.tensors, size - header.data_start);
  return header;
}

std::map<std::string, std::string> parse_safetensors_index(const std::string& path,
                                                           std::string_view text) {
  const nlohmann::json index = parse_json_object(path, text, "index", 0);
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) {
    fail(path, "missing or non-object \"weight_map\"");
  }
  std::map<std::string, std::string> out;
  for (const auto& [name, shard] : map->items()) {
    if (!shard.is_string()) fail_tensor(path, name, "weight_map value is not a string");
    std::string file = shard.get<std::string>();
    // Shards are plain names beside the index; a path could point anywhere on disk.
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos) {
      fail_tensor(path, name, "shard " + in_quotes(file) + " is not a plain file name");
    }
    out.emplace(name, std::move(file));
  }
  return out;
}

}  // namespace kaizen::model
