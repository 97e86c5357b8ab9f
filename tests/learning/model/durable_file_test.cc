// durable_file: atomic replacement (old contents until the rename, nothing left behind
// on failure) and error messages that name the file, the step and the errno text.
#include "learning/model/durable_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "testing/kaizen_test.h"

namespace kaizen::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// f() must throw DurableFileError whose message contains every part.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing " << parts.at(0);
  } catch (const DurableFileError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

TEST(DurableFile, WritesAndOverwritesLeavingOnlyTheFile) {
  TempDir tmp;
  const std::string path = tmp / "config.json";
  atomic_write_file(path, "first\n");
  EXPECT_EQ(read_file(path), "first\n");
  atomic_write_file(path, "second, longer than the first\n");
  EXPECT_EQ(read_file(path), "second, longer than the first\n");
  atomic_write_file(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(entries(tmp.path()), (std::set<std::string>{"config.json"}));
}

TEST(DurableFile, WriterStreamsIntoATemporaryNextToTheFile) {
  TempDir tmp;
  const std::string path = tmp / "model.safetensors";
  atomic_write_file(path, "old");
  const std::string big(3 << 20, 'x');  // several MiB in one write()
  atomic_write_file(path, [&](PendingFile& f) {
    EXPECT_EQ(f.path().rfind(path + ".tmp-" + std::to_string(::getpid()) + "-", 0), 0u) << f.path();
    EXPECT_TRUE(fs::exists(f.path()));
    f.write("head:");
    f.write(big.data(), big.size());
    f.write(":tail");
    EXPECT_EQ(read_file(path), "old");  // replaced only at the rename
  });
  EXPECT_EQ(read_file(path), "head:" + big + ":tail");
  EXPECT_EQ(entries(tmp.path()), (std::set<std::string>{"model.safetensors"}));
}

TEST(DurableFile, FailingWriterKeepsTheOldFileAndRemovesTheTemporary) {
  TempDir tmp;
  const std::string path = tmp / "adapter_config.json";
  atomic_write_file(path, "old contents");
  std::string temporary;
  try {
    atomic_write_file(path, [&](PendingFile& f) {
      temporary = f.path();
      f.write("half of the new contents");
      throw std::logic_error("writer gave up");
    });
    ADD_FAILURE() << "the writer's exception did not propagate";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "writer gave up");  // unchanged, not wrapped
  }
  EXPECT_FALSE(temporary.empty());
  EXPECT_FALSE(fs::exists(temporary));
  EXPECT_EQ(read_file(path), "old contents");
  EXPECT_EQ(entries(tmp.path()), (std::set<std::string>{"adapter_config.json"}));
}

TEST(DurableFile, MissingDirectoryNamesThePathTheStepAndTheError) {
  TempDir tmp;
  const std::string path = tmp / "no/such/dir/model.safetensors";
  expect_error([&] { atomic_write_file(path, "x"); }, {path, "create", std::strerror(ENOENT)});
  // A regular file where a directory should be.
  atomic_write_file(tmp / "plain", "x");
  expect_error([&] { atomic_write_file(tmp / "plain/config.json", "x"); },
               {tmp / "plain/config.json", "create", std::strerror(ENOTDIR)});
  EXPECT_EQ(entries(tmp.path()), (std::set<std::string>{"plain"}));
}

TEST(DurableFile, ReadOnlyDirectoryNamesThePathTheStepAndTheError) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "ro";
  fs::create_directory(dir);
  atomic_write_file((dir / "f").string(), "old");
  ASSERT_EQ(::chmod(dir.c_str(), 0555), 0);
  if (::access(dir.c_str(), W_OK) == 0) {  // root (CAP_DAC_OVERRIDE) writes anyway
    ::chmod(dir.c_str(), 0755);
    GTEST_SKIP() << "a read-only directory is writable for this user (root?)";
  }
  expect_error([&] { atomic_write_file((dir / "f").string(), "new"); },
               {(dir / "f").string(), "create", std::strerror(EACCES)});
  ::chmod(dir.c_str(), 0755);
  EXPECT_EQ(read_file((dir / "f").string()), "old");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"f"}));
}

TEST(DurableFile, FsyncDir) {
  TempDir tmp;
  fsync_dir(tmp.path().string());
  const std::string missing = tmp / "missing";
  expect_error([&] { fsync_dir(missing); }, {missing, std::strerror(ENOENT)});
}

}  // namespace
}  // namespace kaizen::model
