#include "learning/model/loader.h"

#include <sys/mman.h>

#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "learning/model/durable_file.h"
#include "learning/model/safetensors.h"

namespace kaizen::model {

namespace fs = std::filesystem;

namespace {

// One anonymous mapping for all CPU weights, 2 MiB aligned and advised for transparent
// huge pages; tensors are views into it and keep it alive.
class WeightArena {
 public:
  explicit WeightArena(size_t bytes) : size_(bytes + kHuge) {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw ModelLoadError("cannot map " + std::to_string(bytes) + " bytes for the weights");
    base_ = static_cast<uint8_t*>(p);
    next_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base_) + kHuge - 1) & ~(kHuge - 1));
#ifdef MADV_HUGEPAGE
    madvise(next_, bytes, MADV_HUGEPAGE);  // a hint: without THP it is 4 KiB pages, still correct
#endif
  }
  ~WeightArena() { munmap(base_, size_); }
  WeightArena(const WeightArena&) = delete;
  WeightArena& operator=(const WeightArena&) = delete;

  static size_t padded(size_t n) { return (n + 63) & ~size_t{63}; }
  // A copy of `src` (CPU, contiguous) inside the arena; the tensor holds `self`.
  static torch::Tensor copy(const std::shared_ptr<WeightArena>& self, const torch::Tensor& src) {
    const size_t n = src.numel() * src.element_size();
    uint8_t* dst = self->next_;
    self->next_ += padded(n);
    std::memcpy(dst, src.data_ptr(), n);
    std::shared_ptr<WeightArena> keep = self;
    return torch::from_blob(dst, src.sizes(), [keep](void*) mutable { keep.reset(); }, src.options());
  }

 private:
  static constexpr size_t kHuge = size_t{2} << 20;
  size_t size_;
  uint8_t* base_ = nullptr;
  uint8_t* next_ = nullptr;
};

}  // namespace

torch::Device parse_device(const std::string& spec) {
  if (spec.empty() || spec == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::kCPU;
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw std::invalid_argument("device '" + spec + "': this build of libtorch sees no CUDA device");
    }
    try {
      return torch::Device(spec);
    } catch (const std::exception&) {
    }
  }
  throw std::invalid_argument("device '" + spec + "' is not one of cpu, cuda, cuda:N, auto");
}

torch::ScalarType parse_dtype(const std::string& spec, torch::Device device) {
  if (spec.empty() || spec == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
  if (spec == "float32" || spec == "fp32") return torch::kFloat;
  if (spec == "bfloat16" || spec == "bf16") return torch::kBFloat16;
  if (spec == "float16" || spec == "fp16") return torch::kHalf;
  throw std::invalid_argument("dtype '" + spec + "' is not one of float32, bfloat16, float16, auto");
}

const char* dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kHalf: return "float16";
    default: return "other";
  }
}

std::shared_ptr<Decoder> load_decoder(const std::string& model_dir, const LoadOptions& options) {
  const fs::path dir(model_dir);
  if (!fs::is_directory(dir)) throw ModelLoadError(model_dir + ": not a directory");
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) throw ModelLoadError(model_dir + ": no config.json");
  ModelConfig config;
  try {
    config = ModelConfig::from_file(config_path.string());
  } catch (const ConfigError& e) {
    throw ModelLoadError(e.what());
  }
  DecoderOptions dopts;
  dopts.device = parse_device(options.device);
  dopts.dtype = parse_dtype(options.dtype, dopts.device);

  SafetensorsCheckpoint ckpt = [&] {
    try {
      return SafetensorsCheckpoint::open(model_dir);
    } catch (const SafetensorsError& e) {
      throw ModelLoadError(e.what());
    }
  }();
  auto decoder = std::make_shared<Decoder>(config, dopts);
  std::shared_ptr<WeightArena> arena;
  if (!options.mmap_weights && dopts.device.is_cpu()) {
    size_t bytes = 0;
    for (const auto& [name, shape] : decoder->parameter_shapes()) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      bytes += WeightArena::padded(static_cast<size_t>(n) * c10::elementSize(dopts.dtype));
    }
    arena = std::make_shared<WeightArena>(bytes);
  }
  std::set<std::string> consumed;
  for (const auto& [name, shape] : decoder->parameter_shapes()) {
    if (!ckpt.contains(name)) {
      throw ModelLoadError(model_dir + ": weight '" + name + "' is missing (expected shape " +
                           c10::str(c10::IntArrayRef(shape)) + ")");
    }
    const TensorInfo& info = ckpt.info(name);
    if (info.shape != shape) {
      throw ModelLoadError(model_dir + ": weight '" + name + "' has shape " +
                           c10::str(c10::IntArrayRef(info.shape)) + ", the config implies " +
                           c10::str(c10::IntArrayRef(shape)));
    }
    torch::Tensor t;
    try {
      t = ckpt.tensor(name);
    } catch (const SafetensorsError& e) {
      throw ModelLoadError(e.what());
    }
    if (!t.is_floating_point()) {
      throw ModelLoadError(model_dir + ": weight '" + name + "' has non-float dtype " + info.dtype);
    }
    if (arena && t.scalar_type() == dopts.dtype && t.is_contiguous()) {
      t = WeightArena::copy(arena, t);  // else set_weight converts into fresh memory anyway
    }
    decoder->set_weight(name, t);
    consumed.insert(name);
  }
  for (const std::string& name : ckpt.names()) {
    if (consumed.count(name)) continue;
    // Tied checkpoints may still store lm_head.weight; old ones store rotary buffers.
    if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    throw ModelLoadError(model_dir + ": unexpected weight '" + name + "' (shape " +
                         c10::str(c10::IntArrayRef(ckpt.info(name).shape)) + ") for a " +
                         config.architecture + " with this config");
  }
  spdlog::debug("loaded model dir={} arch={} layers={} hidden={} device={} dtype={}", model_dir,
                arch_name(config.arch), config.num_hidden_layers, config.hidden_size,
                dopts.device.str(), dtype_name(dopts.dtype));
  return decoder;
}

void save_decoder(const Decoder& decoder, const std::string& dir) {
  fs::create_directories(dir);
  save_safetensors((fs::path(dir) / "model.safetensors").string(), decoder.named_weights(),
                   {{"format", "pt"}});
  try {
    atomic_write_file((fs::path(dir) / "config.json").string(),
                      decoder.config().to_json().dump(2) + "\n");
  } catch (const DurableFileError& e) {
    throw ModelLoadError(e.what());
  }
}

}  // namespace kaizen::model
