// Helpers shared by the storage tests: temporary directories, raw RocksDB access (to
// plant bad bytes the Store would never write), and child processes (the test binary
// re-exec'd into one DISABLED_ helper test).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/status.h"

namespace kaizen::storage::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Puts raw bytes under `key` in column family `cf` of the (closed) database in `dir`.
void raw_put(const std::string& dir, const std::string& cf, const std::string& key,
             const std::string& value);
// Deletes a key the same way.
void raw_delete(const std::string& dir, const std::string& cf, const std::string& key);

// Starts this test binary running only the helper test `test_name` (a DISABLED_ test),
// with `env` added to the environment; stdout/stderr go to `log_path`. Returns the pid.
pid_t spawn_helper(const std::string& test_name, const std::map<std::string, std::string>& env,
                   const std::string& log_path);
// Waits for `pid`; returns its exit code, or 128 + signal number if it was killed.
int wait_child(pid_t pid);

// gtest assertion helpers that print the Status on failure.
inline ::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}

std::string read_file(const std::string& path);

}  // namespace kaizen::storage::test

#define ASSERT_OK(expr) ASSERT_TRUE(::kaizen::storage::test::IsOk((expr)))
#define EXPECT_OK(expr) EXPECT_TRUE(::kaizen::storage::test::IsOk((expr)))
