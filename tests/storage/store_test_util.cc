#include "store_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <rocksdb/db.h>

#include "testing/kaizen_test.h"

namespace kaizen::storage::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kaizen-storage-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    throw std::runtime_error("mkdtemp failed: " + std::string(strerror(errno)));
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

void with_raw_db(const std::string& dir, const std::string& cf_name,
                 const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& fn) {
  rocksdb::DBOptions options;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir, &names);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  s = rocksdb::DB::Open(options, dir, descriptors, &handles, &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  rocksdb::ColumnFamilyHandle* target = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == cf_name) target = handles[i];
  }
  EXPECT_NE(target, nullptr) << "no column family " << cf_name;
  if (target) fn(db, target);
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  (void)db->Close();
  delete db;
}

}  // namespace

void raw_put(const std::string& dir, const std::string& cf, const std::string& key,
             const std::string& value) {
  with_raw_db(dir, cf, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::Status s = db->Put(rocksdb::WriteOptions(), h, key, value);
    ASSERT_TRUE(s.ok()) << s.ToString();
  });
}

void raw_delete(const std::string& dir, const std::string& cf, const std::string& key) {
  with_raw_db(dir, cf, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::Status s = db->Delete(rocksdb::WriteOptions(), h, key);
    ASSERT_TRUE(s.ok()) << s.ToString();
  });
}

pid_t spawn_helper(const std::string& test_name, const std::map<std::string, std::string>& env,
                   const std::string& log_path) {
  kaizen::testing::ExecArgs exec(
      {"/proc/self/exe", "--gtest_also_run_disabled_tests", "--gtest_filter=" + test_name}, env);
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid = fork();
  if (pid == 0) {
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    // /proc/self/exe, not its target path: works even if the binary was replaced
    // (rebuilt) while the test runs.
    execve("/proc/self/exe", exec.argv(), exec.envp());
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace kaizen::storage::test
