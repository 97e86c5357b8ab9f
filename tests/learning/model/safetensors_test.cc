// safetensors: round trips, zero-copy, every malformed-file case named in
// learning/model/safetensors.h, sharded checkpoints, and files written by two independent
// writers (tools/ref/safetensors_io.py, and a numpy-only script with no torch at all).
#include "learning/model/safetensors.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <ATen/ATen.h>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

namespace kaizen::model {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char(uint8_t(v >> (8 * i)));
  return s;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << p;
}

// Deterministic, non-trivial values of any supported dtype. The Python cross-check
// computes the same expressions with the same (shared) libtorch kernels.
torch::Tensor sample(at::ScalarType dt, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  auto i = at::arange(n, at::kLong);
  at::Tensor x;
  switch (dt) {
    case at::kBool:
      x = (i % 3) == 1;
      break;
    case at::kByte:
      x = (i * 37) % 256;
      break;
    case at::kChar:
      x = (i * 37) % 255 - 127;
      break;
    case at::kShort:
      x = (i * 7919) % 65535 - 32767;
      break;
    case at::kInt:
      x = i * 1000003 - 2147483000;
      break;
    case at::kLong:
      x = i * int64_t{1234567890123} - (int64_t{1} << 62);
      break;
    default:
      x = ((i.to(at::kDouble) * 0.731 - 5.3).sin() * 1000.0);
      break;
  }
  return x.to(dt).reshape(shape);
}

// Bitwise equality (NaN-safe, distinguishes -0.0).
void expect_same(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.scalar_type(), want.scalar_type()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  auto g = got.contiguous(), w = want.contiguous();
  if (g.nbytes() == 0) return;  // data_ptr() may be null
  EXPECT_EQ(0, std::memcmp(g.data_ptr(), w.data_ptr(), size_t(g.nbytes()))) << what;
}

const std::vector<std::pair<std::string, at::ScalarType>> kAllDtypes = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool}};

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kaizen-st-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file whose header is `header` verbatim, followed by `data`.
  std::string craft(const std::string& name, const std::string& header,
                    const std::string& data = "") {
    write_bytes(dir_ / name, le64(header.size()) + header + data);
    return path(name);
  }

  // open() must throw SafetensorsError whose message names the file and contains `parts`.
  void expect_open_error(const std::string& file, const std::vector<std::string>& parts) {
    try {
      SafetensorsFile::open(file);
      ADD_FAILURE() << "no error for " << file;
    } catch (const SafetensorsError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  }

  template <typename F>
  void expect_error(F&& f, const std::vector<std::string>& parts) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one containing " << parts.at(0);
    } catch (const SafetensorsError& e) {
      std::string msg = e.what();
      for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

// ---------------------------------------------------------------------------------------
// Round trips

TEST_F(SafetensorsTest, RoundTripsEveryDtypeExactly) {
  Named tensors;
  for (const auto& [name, dt] : kAllDtypes) {
    tensors.emplace_back("t." + name, sample(dt, {3, 5}));
  }
  // Values that only survive a bit-exact path.
  tensors.emplace_back("specials.f32", torch::tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f,
                                                      3.4028235e38f}));
  tensors.emplace_back("specials.bf16",
                       torch::tensor({-0.0f, INFINITY, NAN, 1e-40f}).to(at::kBFloat16));
  tensors.emplace_back("specials.f16",
                       torch::tensor({-0.0f, INFINITY, NAN, 6e-8f, 65504.f}).to(at::kHalf));
  save_safetensors(path("all.safetensors"), tensors);

  auto file = SafetensorsFile::open(path("all.safetensors"));
  ASSERT_EQ(file->tensors().size(), tensors.size());
  for (const auto& [name, want] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file->contains(name));
    EXPECT_TRUE(file->is_zero_copy(name));
    expect_same(file->tensor(name), want, name);
  }
  for (const auto& [dtype_name, dt] : kAllDtypes) {
    EXPECT_EQ(file->info("t." + dtype_name).dtype, dtype_name);
    EXPECT_EQ(file->info("t." + dtype_name).shape, (std::vector<int64_t>{3, 5}));
  }
}

TEST_F(SafetensorsTest, AlignedDataIsZeroCopyInsideTheMapping) {
  save_safetensors(path("z.safetensors"), {{"odd.f16", sample(at::kHalf, {3})},
                                           {"w", sample(at::kFloat, {4, 4})},
                                           {"d", sample(at::kDouble, {3})},
                                           {"b", sample(at::kBool, {5})}});
  auto file = SafetensorsFile::open(path("z.safetensors"));
  const uint8_t* lo = file->mapped_data();
  const uint8_t* hi = lo + file->mapped_size();
  for (const auto& [name, info] : file->tensors()) {
    SCOPED_TRACE(name);
    auto t = file->tensor(name);
    auto* p = static_cast<const uint8_t*>(t.data_ptr());
    EXPECT_TRUE(p >= lo && p < hi) << "tensor is a copy, not a view of the mapping";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % t.element_size(), 0u);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | lo[i];
    EXPECT_EQ(p, lo + 8 + n + info.begin);
  }
  // Two reads of one tensor alias the same bytes.
  EXPECT_EQ(file->tensor("w").data_ptr(), file->tensor("w").data_ptr());
}

TEST_F(SafetensorsTest, MisalignedDataIsCopiedWithCorrectValues) {
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  while ((8 + header.size()) % 4 != 1) header += ' ';  // data starts 1 past a 4-byte boundary
  float v[2] = {1.5f, -2.25f};
  std::string file_path = craft("odd.safetensors", header, std::string((char*)v, 8));
  auto file = SafetensorsFile::open(file_path);
  EXPECT_FALSE(file->is_zero_copy("w"));
  auto t = file->tensor("w");
  auto* p = static_cast<const uint8_t*>(t.data_ptr());
  EXPECT_FALSE(p >= file->mapped_data() && p < file->mapped_data() + file->mapped_size());
  EXPECT_EQ(t[0].item<float>(), 1.5f);
  EXPECT_EQ(t[1].item<float>(), -2.25f);
}

TEST_F(SafetensorsTest, TensorOutlivesFileAndCheckpoint) {
  auto want = sample(at::kFloat, {64, 3});
  save_safetensors(path("model.safetensors"), {{"w", want}});
  torch::Tensor from_file, from_ckpt;
  {
    auto file = SafetensorsFile::open(path("model.safetensors"));
    from_file = file->tensor("w");
    from_ckpt = SafetensorsCheckpoint::open(dir_.string()).tensor("w");
  }  // file and checkpoint gone; the mappings live on in the tensors' deleters
  expect_same(from_file, want, "from file");
  expect_same(from_ckpt, want, "from checkpoint");
  // Replacing the file on disk (rename) does not disturb a live view of the old one.
  save_safetensors(path("model.safetensors"), {{"w", want + 1}});
  expect_same(from_file, want, "after overwrite");
  expect_same(SafetensorsFile::open(path("model.safetensors"))->tensor("w"), want + 1, "new");
}

TEST_F(SafetensorsTest, EmptyAndScalarTensors) {
  Named tensors = {{"empty0", sample(at::kFloat, {0})},
                   {"empty_mid", sample(at::kBFloat16, {2, 0, 3})},
                   {"empty_bool", sample(at::kBool, {0, 4})},
                   {"scalar", torch::tensor(3.25).to(at::kFloat).reshape({})},
                   {"x", sample(at::kFloat, {2})}};
  save_safetensors(path("e.safetensors"), tensors);
  auto file = SafetensorsFile::open(path("e.safetensors"));
  for (const auto& [name, want] : tensors) expect_same(file->tensor(name), want, name);
  EXPECT_EQ(file->info("empty_mid").begin, file->info("empty_mid").end);
  EXPECT_EQ(file->tensor("scalar").dim(), 0);

  // A file holding nothing at all.
  save_safetensors(path("none.safetensors"), {});
  EXPECT_EQ(read_bytes(path("none.safetensors")), le64(8) + "{}      ");
  EXPECT_TRUE(SafetensorsFile::open(path("none.safetensors"))->tensors().empty());
}

TEST_F(SafetensorsTest, MetadataRoundTrips) {
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "xin chào ✓ \"quoted\"\n"}, {"empty", ""}};
  save_safetensors(path("m.safetensors"), {{"a", sample(at::kInt, {2})}}, meta);
  auto file = SafetensorsFile::open(path("m.safetensors"));
  EXPECT_EQ(file->metadata(), meta);
  EXPECT_FALSE(file->contains("__metadata__"));
}

TEST_F(SafetensorsTest, NonContiguousAndSlicedInputsAreSavedAsValues) {
  auto base = sample(at::kFloat, {3, 4});
  auto transposed = base.t();
  auto sliced = base.slice(1, 1, 3);
  auto grad = sample(at::kFloat, {2}).requires_grad_(true);
  save_safetensors(path("nc.safetensors"), {{"t", transposed}, {"s", sliced}, {"g", grad}});
  auto file = SafetensorsFile::open(path("nc.safetensors"));
  expect_same(file->tensor("t"), transposed.contiguous(), "t");
  expect_same(file->tensor("s"), sliced.contiguous(), "s");
  expect_same(file->tensor("g"), grad.detach(), "g");
}

TEST_F(SafetensorsTest, HeaderLayoutMatchesTheReferenceWriter) {
  save_safetensors(path("h.safetensors"),
                   {{"b_f16", sample(at::kHalf, {3})},
                    {"a_u8", sample(at::kByte, {1})},
                    {"c_f64", sample(at::kDouble, {1})},
                    {"d_f32", sample(at::kFloat, {1})}},
                   {{"format", "pt"}});
  std::string raw = read_bytes(path("h.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(raw[i]);
  ASSERT_EQ(n % 8, 0u);
  std::string header = raw.substr(8, n);
  std::string json_text = header.substr(0, header.find_last_not_of(' ') + 1);
  EXPECT_LT(header.size() - json_text.size(), 8u);
  auto j = nlohmann::ordered_json::parse(json_text);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "a_u8", "b_f16", "c_f64", "d_f32"}));
  // Data: descending itemsize, then name, with no gaps.
  EXPECT_EQ(j["c_f64"]["data_offsets"], nlohmann::ordered_json({0, 8}));
  EXPECT_EQ(j["d_f32"]["data_offsets"], nlohmann::ordered_json({8, 12}));
  EXPECT_EQ(j["b_f16"]["data_offsets"], nlohmann::ordered_json({12, 18}));
  EXPECT_EQ(j["a_u8"]["data_offsets"], nlohmann::ordered_json({18, 19}));
  EXPECT_EQ(raw.size(), 8 + n + 19);
}

TEST_F(SafetensorsTest, ConcurrentReadsAgree) {
  auto want = sample(at::kBFloat16, {128, 8});
  save_safetensors(path("c.safetensors"), {{"w", want}, {"b", sample(at::kBool, {7})}});
  auto file = SafetensorsFile::open(path("c.safetensors"));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!file->tensor("w").equal(want)) ++mismatches;
        (void)file->tensor("b");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---------------------------------------------------------------------------------------
// Writer errors and atomicity

TEST_F(SafetensorsTest, WriterRejectsBadInputAndLeavesNoTemporaries) {
  auto a = sample(at::kFloat, {2});
  expect_error(
      [&] {
        save_safetensors(path("x.safetensors"), {{"a", a}, {"a", a}});
      },
      {"x.safetensors", "'a'", "duplicate"});
  expect_error(
      [&] {
        save_safetensors(path("x.safetensors"), {{"__metadata__", a}});
      },
      {"'__metadata__'", "reserved"});
  expect_error(
      [&] {
        save_safetensors(path("x.safetensors"), {{"c", at::zeros({2}, at::kComplexFloat)}});
      },
      {"'c'", "ComplexFloat"});
  expect_error(
      [&] {
        save_safetensors(path("x.safetensors"), {{"u", torch::Tensor()}});
      },
      {"'u'", "undefined"});
  expect_error([&] { save_safetensors(path("x.safetensors"), {{"bad\xff", a}}); }, {"UTF-8"});
  expect_error(
      [&] {
        save_safetensors(path("no/such/dir/x.safetensors"), {{"a", a}});
      },
      {"no/such/dir/x.safetensors"});

  save_safetensors(path("ok.safetensors"), {{"a", a}});
  save_safetensors(path("ok.safetensors"), {{"a", a + 1}});  // overwrite
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(dir_)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"ok.safetensors"}));
  expect_same(SafetensorsFile::open(path("ok.safetensors"))->tensor("a"), a + 1, "overwrite");
}

// ---------------------------------------------------------------------------------------
// Malformed files: each must be a SafetensorsError naming the file (and tensor).

TEST_F(SafetensorsTest, RejectsTruncatedAndOversizedHeaders) {
  write_bytes(dir_ / "empty.safetensors", "");
  expect_open_error(path("empty.safetensors"), {"0 bytes"});
  write_bytes(dir_ / "short.safetensors", "\x02\0\0\0\0"s);
  expect_open_error(path("short.safetensors"), {"5 bytes"});
  write_bytes(dir_ / "past.safetensors", le64(100) + "{}");
  expect_open_error(path("past.safetensors"), {"header length 100", "past the end"});
  write_bytes(dir_ / "huge.safetensors", le64(uint64_t(1) << 40) + "{}");
  expect_open_error(path("huge.safetensors"), {"exceeds"});
  write_bytes(dir_ / "max.safetensors", le64(~uint64_t(0)) + "{}");
  expect_open_error(path("max.safetensors"), {"exceeds"});
  expect_open_error(path("missing.safetensors"), {"cannot open"});
  expect_open_error(dir_.string(), {"not a regular file"});
}

TEST_F(SafetensorsTest, RejectsHeadersThatAreNotAJsonObject) {
  expect_open_error(craft("a.safetensors", "{\"w\": "), {"not valid JSON"});
  expect_open_error(craft("b.safetensors", "[1, 2]"), {"not a JSON object"});
  expect_open_error(craft("c.safetensors", "\"str\""), {"not a JSON object"});
  expect_open_error(craft("d.safetensors", "{\"k\xff\": 1}"), {"not valid JSON"});
  expect_open_error(craft("e.safetensors", "{}\0\0\0\0\0\0"s), {"NUL byte at offset 10"});
  expect_open_error(craft("e2.safetensors", "{}\0{\"w\": 1}"s), {"NUL byte"});
  expect_open_error(craft("f.safetensors", R"({"w": 5})"), {"'w'", "not a JSON object"});
  expect_open_error(craft("g.safetensors", R"({"__metadata__": ["x"]})"), {"__metadata__"});
  expect_open_error(craft("h.safetensors", R"({"__metadata__": {"k": 1}})"),
                    {"__metadata__", "'k'", "not a string"});
}

TEST_F(SafetensorsTest, RejectsMissingOrMalformedFields) {
  const std::string d8(8, '\0');
  expect_open_error(craft("1.safetensors", R"({"w":{"shape":[2],"data_offsets":[0,8]}})", d8),
                    {"'w'", "dtype"});
  expect_open_error(craft("2.safetensors", R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", d8),
                    {"'w'", "shape"});
  expect_open_error(craft("3.safetensors", R"({"w":{"dtype":"F32","shape":[2]}})", d8),
                    {"'w'", "data_offsets"});
  for (const char* offsets : {"[8]", "[0,4,8]", "[-1,8]", "[0,8.0]", "\"0,8\"", "[0,null]"}) {
    SCOPED_TRACE(offsets);
    std::string h =
        std::string(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":)") + offsets + "}}";
    expect_open_error(craft("4.safetensors", h, d8), {"'w'", "two non-negative integers"});
  }
  expect_open_error(
      craft("5.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8),
      {"'w'", "begin after end"});
  expect_open_error(
      craft("6.safetensors", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8),
      {"'w'", "non-negative integer"});
  expect_open_error(
      craft("7.safetensors", R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", d8),
      {"'w'", "non-negative integer"});
  expect_open_error(
      craft("8.safetensors", R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", d8),
      {"'w'", "shape"});
  expect_open_error(
      craft("9.safetensors", R"({"w":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", d8),
      {"'w'", "unknown dtype 'F128'"});
  expect_open_error(
      craft("10.safetensors", R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", d8),
      {"'w'", "unknown dtype"});
}

TEST_F(SafetensorsTest, RejectsSizeMismatchAndOverflow) {
  const std::string d8(8, '\0');
  expect_open_error(
      craft("a.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
      {"'w'", "needs 12 bytes", "span 8"});
  expect_open_error(
      craft("b.safetensors", R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", d8),
      {"'w'", "needs 4 bytes"});
  expect_open_error(craft("c.safetensors",
                          R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],)"
                          R"("data_offsets":[0,8]}})",
                          d8),
                    {"'w'", "overflows"});
}

TEST_F(SafetensorsTest, RejectsOffsetsThatDoNotTileTheDataSection) {
  const std::string d8(8, '\0');
  expect_open_error(
      craft("beyond.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8),
      {"'w'", "beyond the data section"});
  expect_open_error(craft("overlap.safetensors",
                          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          d8),
                    {"'b'", "overlap", "'a'"});
  expect_open_error(craft("same.safetensors",
                          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                          d8),
                    {"overlap"});
  expect_open_error(craft("hole.safetensors",
                          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                          d8),
                    {"'b'", "hole", "'a'"});
  expect_open_error(
      craft("lead.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8),
      {"'w'", "hole", "start"});
  expect_open_error(
      craft("trail.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8),
      {"trailing"});
  expect_open_error(craft("trail_empty.safetensors", "{}", "x"), {"trailing"});
  // Out-of-order offsets and zero-size tensors anywhere are fine (as in the reference).
  auto ok = SafetensorsFile::open(craft("ok.safetensors",
                                        R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                        R"("a":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},)"
                                        R"("z":{"dtype":"I32","shape":[0],"data_offsets":[4,4]}})",
                                        d8));
  EXPECT_EQ(ok->tensors().size(), 3u);
}

TEST_F(SafetensorsTest, RejectsDuplicateKeys) {
  const std::string d8(8, '\0');
  expect_open_error(craft("dup.safetensors",
                          R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          d8),
                    {"duplicate key 'w'"});
  expect_open_error(craft("dupfield.safetensors",
                          R"({"w":{"dtype":"F32","dtype":"I32","shape":[1],)"
                          R"("data_offsets":[0,4]}})",
                          std::string(4, '\0')),
                    {"duplicate key 'dtype'"});
}

TEST_F(SafetensorsTest, RecognisedButUnsupportedDtypesOpenButRefuseToLoad) {
  auto file =
      SafetensorsFile::open(craft("fp8.safetensors",
                                  R"({"scale":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("w":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[4,8]},)"
                                  R"("u":{"dtype":"U16","shape":[2],"data_offsets":[8,12]}})",
                                  std::string(12, '\0')));
  EXPECT_EQ(file->info("w").dtype, "F8_E4M3");
  EXPECT_NO_THROW(file->tensor("scale"));
  expect_error([&] { file->tensor("w"); }, {path("fp8.safetensors"), "'w'", "F8_E4M3"});
  expect_error([&] { file->tensor("u"); }, {"'u'", "U16"});
}

TEST_F(SafetensorsTest, RejectsBoolBytesOtherThanZeroOrOne) {
  auto file = SafetensorsFile::open(craft(
      "b.safetensors", R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", "\1\0\2"s));
  expect_error([&] { file->tensor("m"); }, {path("b.safetensors"), "'m'", "BOOL byte 2"});
}

TEST_F(SafetensorsTest, MissingTensorIsNamed) {
  save_safetensors(path("model.safetensors"), {{"a", sample(at::kFloat, {1})}});
  auto file = SafetensorsFile::open(path("model.safetensors"));
  expect_error([&] { file->tensor("nope"); }, {path("model.safetensors"), "'nope'"});
  auto ckpt = SafetensorsCheckpoint::open(dir_.string());
  EXPECT_FALSE(ckpt.contains("nope"));
  expect_error([&] { ckpt.info("nope"); }, {"'nope'", dir_.string()});
  expect_error([&] { ckpt.tensor("nope"); }, {"'nope'"});
}

// Any prefix of a valid file, and random byte corruption of its header, must end in a
// SafetensorsError or a valid file, never a crash or another exception type.
TEST_F(SafetensorsTest, TruncatedAndCorruptedFilesFailCleanly) {
  save_safetensors(path("v.safetensors"),
                   {{"a", sample(at::kFloat, {3, 2})},
                    {"b", sample(at::kBool, {5})},
                    {"c", sample(at::kBFloat16, {4})}},
                   {{"k", "v"}});
  const std::string valid = read_bytes(dir_ / "v.safetensors");
  for (size_t len = 0; len < valid.size(); ++len) {
    // A fresh name each time: ext4 flushes a truncated-and-rewritten file on close.
    const std::string name = "t" + std::to_string(len) + ".safetensors";
    write_bytes(dir_ / name, valid.substr(0, len));
    EXPECT_THROW(SafetensorsFile::open(path(name)), SafetensorsError) << len;
    fs::remove(dir_ / name);
  }
  std::mt19937 rng(1234);
  uint64_t header_end = 8;
  for (int i = 0; i < 8; ++i) header_end += uint64_t(uint8_t(valid[i])) << (8 * i);
  int opened = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bad = valid;
    const int flips = 1 + int(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % header_end] = char(rng() % 256);
    const std::string name = "m" + std::to_string(iter) + ".safetensors";
    write_bytes(dir_ / name, bad);
    try {
      auto file = SafetensorsFile::open(path(name));
      ++opened;
      for (const auto& [name, info] : file->tensors()) {
        try {
          auto t = file->tensor(name);
          EXPECT_EQ(t.numel(), info.numel());
        } catch (const SafetensorsError&) {
        }
      }
    } catch (const SafetensorsError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iter << ": non-Safetensors exception: " << e.what();
    }
    fs::remove(dir_ / name);
  }
  EXPECT_GT(opened, 0);  // some flips land in whitespace/values and stay valid
}

// ---------------------------------------------------------------------------------------
// Checkpoints

class SafetensorsCheckpointTest : public SafetensorsTest {
 protected:
  void write_shards() {
    save_safetensors(path("model-00001-of-00002.safetensors"),
                     {{"model.embed_tokens.weight", sample(at::kBFloat16, {8, 4})},
                      {"model.norm.weight", sample(at::kFloat, {4})}});
    save_safetensors(path("model-00002-of-00002.safetensors"),
                     {{"lm_head.weight", sample(at::kBFloat16, {8, 4})}});
  }
  void write_index(const nlohmann::json& weight_map) {
    nlohmann::json index = {{"metadata", {{"total_size", 144}}}, {"weight_map", weight_map}};
    write_bytes(dir_ / "model.safetensors.index.json", index.dump(2));
  }
  nlohmann::json good_map() const {
    return {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
            {"model.norm.weight", "model-00001-of-00002.safetensors"},
            {"lm_head.weight", "model-00002-of-00002.safetensors"}};
  }
  void expect_ckpt_error(const std::string& p, const std::vector<std::string>& parts) {
    expect_error([&] { SafetensorsCheckpoint::open(p); }, parts);
  }
};

TEST_F(SafetensorsCheckpointTest, LoadsShardsThroughTheIndex) {
  write_shards();
  write_index(good_map());
  for (const std::string& p : {dir_.string(), path("model.safetensors.index.json")}) {
    SCOPED_TRACE(p);
    auto ckpt = SafetensorsCheckpoint::open(p);
    EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight",
                                                      "model.norm.weight"}));
    EXPECT_EQ(ckpt.files().size(), 2u);
    expect_same(ckpt.tensor("lm_head.weight"), sample(at::kBFloat16, {8, 4}), "lm_head");
    expect_same(ckpt.tensor("model.norm.weight"), sample(at::kFloat, {4}), "norm");
    EXPECT_EQ(ckpt.info("model.embed_tokens.weight").dtype, "BF16");
    EXPECT_EQ(ckpt.file_of("lm_head.weight").path(), path("model-00002-of-00002.safetensors"));
  }
}

TEST_F(SafetensorsCheckpointTest, SingleFileDirectoryAndExplicitFile) {
  save_safetensors(path("model.safetensors"),
                   {{"b", sample(at::kInt, {2})}, {"a", sample(at::kHalf, {3})}});
  for (const std::string& p : {dir_.string(), path("model.safetensors")}) {
    auto ckpt = SafetensorsCheckpoint::open(p);
    EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"a", "b"}));
    expect_same(ckpt.tensor("a"), sample(at::kHalf, {3}), "a");
  }
}

TEST_F(SafetensorsCheckpointTest, RejectsBrokenIndexes) {
  expect_ckpt_error(path("nothing-here"), {"nothing-here", "no such file"});
  expect_ckpt_error(dir_.string(), {dir_.string(), "neither"});

  write_shards();
  auto map = good_map();
  map["extra.weight"] = "model-00003-of-00003.safetensors";
  write_index(map);
  expect_ckpt_error(dir_.string(), {"model.safetensors.index.json", "'extra.weight'",
                                    "model-00003-of-00003.safetensors", "does not exist"});

  map = good_map();
  map["lm_head.weight"] = "model-00001-of-00002.safetensors";
  write_index(map);
  expect_ckpt_error(dir_.string(), {"'lm_head.weight'", "not found in its shard"});

  map = good_map();
  map["lm_head.weight"] = "../model-00002-of-00002.safetensors";
  write_index(map);
  expect_ckpt_error(dir_.string(), {"'lm_head.weight'", "not a plain file name"});

  map = good_map();
  map["lm_head.weight"] = 2;
  write_index(map);
  expect_ckpt_error(dir_.string(), {"'lm_head.weight'", "not a string"});

  write_bytes(dir_ / "model.safetensors.index.json", R"({"metadata": {}})");
  expect_ckpt_error(dir_.string(), {"weight_map"});
  write_bytes(dir_ / "model.safetensors.index.json", R"({"weight_map": )");
  expect_ckpt_error(dir_.string(), {"index", "not valid JSON"});

  write_index(good_map());
  write_bytes(dir_ / "model-00002-of-00002.safetensors", "garbage!!");
  expect_ckpt_error(dir_.string(), {path("model-00002-of-00002.safetensors")});
}

// ---------------------------------------------------------------------------------------
// Independent writers and readers (Python)

std::string ref_python() {
  const char* env = std::getenv("KAIZEN_REF_PYTHON");
  std::string py = env && *env ? env : "/usr/bin/python3";
  return fs::exists(py) ? py : "";
}

fs::path source_dir() {
  if (const char* env = std::getenv("KAIZEN_SOURCE_DIR"); env && *env) return env;
  return fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

int run(const std::string& cmd, std::string* output) {
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output->append(buf, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The same tensors as `sample`, spelled in Python; names chosen so that the reference
// writer's name-sorted layout misaligns some tensors (exercising the copy path).
const char* kSamplePy = R"PY(
import torch
def sample(dt, shape):
    n = 1
    for d in shape: n *= d
    i = torch.arange(n, dtype=torch.int64)
    if dt == torch.bool: x = (i % 3) == 1
    elif dt == torch.uint8: x = (i * 37) % 256
    elif dt == torch.int8: x = (i * 37) % 255 - 127
    elif dt == torch.int16: x = (i * 7919) % 65535 - 32767
    elif dt == torch.int32: x = i * 1000003 - 2147483000
    elif dt == torch.int64: x = i * 1234567890123 - (1 << 62)
    else: x = ((i.to(torch.float64) * 0.731 - 5.3).sin() * 1000.0)
    return x.to(dt).reshape(shape)
SPECS = {
    "a.f16": (torch.float16, [3]), "b.f32": (torch.float32, [2, 3]),
    "c.bf16": (torch.bfloat16, [5]), "d.f64": (torch.float64, [2, 2]),
    "e.i64": (torch.int64, [3]), "f.i32": (torch.int32, [1, 3]),
    "g.i16": (torch.int16, [3]), "h.i8": (torch.int8, [5]), "i.u8": (torch.uint8, [7]),
    "j.bool": (torch.bool, [2, 3]), "k.empty": (torch.float32, [0, 4]),
    "l.scalar": (torch.float32, []),
}
)PY";

const std::vector<std::tuple<std::string, at::ScalarType, std::vector<int64_t>>> kSpecs = {
    {"a.f16", at::kHalf, {3}},      {"b.f32", at::kFloat, {2, 3}},   {"c.bf16", at::kBFloat16, {5}},
    {"d.f64", at::kDouble, {2, 2}}, {"e.i64", at::kLong, {3}},       {"f.i32", at::kInt, {1, 3}},
    {"g.i16", at::kShort, {3}},     {"h.i8", at::kChar, {5}},        {"i.u8", at::kByte, {7}},
    {"j.bool", at::kBool, {2, 3}},  {"k.empty", at::kFloat, {0, 4}}, {"l.scalar", at::kFloat, {}}};

class SafetensorsPythonTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    python_ = ref_python();
    if (python_.empty()) GTEST_SKIP() << "no python at KAIZEN_REF_PYTHON or /usr/bin/python3";
  }
  std::string python_;
};

TEST_F(SafetensorsPythonTest, ReadsFilesFromTheReferenceWriterAndViceVersa) {
  const fs::path ref_dir = source_dir() / "tools" / "ref";
  ASSERT_TRUE(fs::exists(ref_dir / "safetensors_io.py")) << ref_dir;
  std::ofstream(dir_ / "xcheck.py") << "import sys\nsys.path.insert(0, sys.argv[1])\n"
                                    << kSamplePy << R"PY(
import safetensors_io
mode, path = sys.argv[2], sys.argv[3]
if mode == "write":
    safetensors_io.write_safetensors(path, {k: sample(*v) for k, v in SPECS.items()},
                                     {"writer": "tools/ref"})
else:
    tensors, meta = safetensors_io.read_safetensors(path)
    assert meta == {"writer": "kaizen", "lang": "c++"}, meta
    assert sorted(tensors) == sorted(SPECS), sorted(tensors)
    for k, (dt, shape) in SPECS.items():
        want, got = sample(dt, shape), tensors[k]
        assert got.dtype == dt and list(got.shape) == shape, (k, got.dtype, got.shape)
        assert torch.equal(got, want), (k, got, want)
    print("python read ok")
)PY";
  std::string out;
  ASSERT_EQ(run(python_ + " " + path("xcheck.py") + " " + ref_dir.string() + " write " +
                    path("ref.safetensors"),
                &out),
            0)
      << out;
  auto file = SafetensorsFile::open(path("ref.safetensors"));
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"writer", "tools/ref"}}));
  ASSERT_EQ(file->tensors().size(), kSpecs.size());
  int copies = 0;
  for (const auto& [name, dt, shape] : kSpecs) {
    expect_same(file->tensor(name), sample(dt, shape), name);
    copies += !file->is_zero_copy(name) && file->info(name).end > file->info(name).begin;
  }
  EXPECT_GT(copies, 0) << "expected the name-sorted layout to misalign something";

  Named tensors;
  for (const auto& [name, dt, shape] : kSpecs) tensors.emplace_back(name, sample(dt, shape));
  save_safetensors(path("ours.safetensors"), tensors, {{"writer", "kaizen"}, {"lang", "c++"}});
  out.clear();
  ASSERT_EQ(run(python_ + " " + path("xcheck.py") + " " + ref_dir.string() + " read " +
                    path("ours.safetensors"),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("python read ok"), std::string::npos) << out;
}

// A writer sharing nothing with libtorch: struct + json + numpy, BF16 rounded by hand.
// It records each stored element's exact value as JSON; we compare against that.
TEST_F(SafetensorsPythonTest, ReadsFilesFromANumpyOnlyWriter) {
  std::ofstream(dir_ / "np_writer.py") << R"PY(
import json, struct, sys
import numpy as np
out, expected_path = sys.argv[1], sys.argv[2]
x = np.sin(np.arange(6, dtype=np.float64) * 0.731 - 5.3) * 1000.0
def bf16_bits(f32):  # round to nearest even, as torch does
    u = f32.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
arrays = {  # name -> (dtype name, shape, little-endian bytes, exact values)
}
def add(name, dt, arr, values):
    arrays[name] = (dt, list(arr.shape), arr.tobytes(), values)
f16 = x.astype("<f2"); add("half", "F16", f16.reshape(2, 3), f16.astype(np.float64).tolist())
f32 = x.astype("<f4"); add("single", "F32", f32.reshape(3, 2), f32.astype(np.float64).tolist())
bits = bf16_bits(x.astype(np.float32))
add("brain", "BF16", bits.astype("<u2").reshape(6),
    (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64).tolist())
add("double", "F64", x.astype("<f8"), x.tolist())
i64 = (np.arange(3, dtype=np.int64) * 1234567890123 - (1 << 62)).astype("<i8")
add("long", "I64", i64, [int(v) for v in i64])
i32 = np.array([-2147483648, 0, 2147483647], dtype="<i4"); add("int", "I32", i32, i32.tolist())
i16 = np.array([-32768, 7, 32767], dtype="<i2"); add("short", "I16", i16, i16.tolist())
i8 = np.array([-128, -1, 127], dtype="i1"); add("char", "I8", i8, i8.tolist())
u8 = np.array([0, 200, 255], dtype="u1"); add("byte", "U8", u8, u8.tolist())
b = np.array([True, False, True]); add("flag", "BOOL", b, [int(v) for v in b])
header, blobs, offset = {"__metadata__": {"writer": "numpy"}}, [], 0
for name in ["flag", "half", "single", "brain", "double", "long", "int", "short", "char",
             "byte"]:  # deliberately unsorted and unaligned
    dt, shape, raw, _ = arrays[name]
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
    blobs.append(raw); offset += len(raw)
h = json.dumps(header).encode()
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
json.dump({k: {"dtype": v[0], "shape": v[1], "values": v[3]} for k, v in arrays.items()},
          open(expected_path, "w"))
)PY";
  std::string out;
  ASSERT_EQ(run(python_ + " " + path("np_writer.py") + " " + path("np.safetensors") + " " +
                    path("expected.json"),
                &out),
            0)
      << out;
  auto file = SafetensorsFile::open(path("np.safetensors"));
  EXPECT_EQ(file->metadata().at("writer"), "numpy");
  auto expected = nlohmann::json::parse(read_bytes(dir_ / "expected.json"));
  ASSERT_EQ(file->tensors().size(), expected.size());
  for (const auto& [name, want] : expected.items()) {
    SCOPED_TRACE(name);
    const TensorInfo& info = file->info(name);
    EXPECT_EQ(info.dtype, want["dtype"].get<std::string>());
    EXPECT_EQ(info.shape, want["shape"].get<std::vector<int64_t>>());
    auto t = file->tensor(name).reshape({-1});
    const auto& values = want["values"];
    ASSERT_EQ(t.numel(), int64_t(values.size()));
    if (!t.is_floating_point()) {  // compare integers as integers: int64 exceeds a double
      auto l = t.to(at::kLong);
      for (int64_t i = 0; i < t.numel(); ++i) {
        EXPECT_EQ(l[i].item<int64_t>(), values[i].get<int64_t>()) << i;
      }
      continue;
    }
    auto d = t.to(at::kDouble);
    for (int64_t i = 0; i < t.numel(); ++i) {
      EXPECT_EQ(d[i].item<double>(), values[i].get<double>()) << i;
    }
  }
}

}  // namespace
}  // namespace kaizen::model
