#include "learning/model/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace kaizen::model {

namespace fs = std::filesystem;

namespace {

// "<path>: <what> failed: <errno text>"
[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw DurableFileError(path + ": " + what + " failed: " + std::strerror(err), err);
}

std::string parent_dir(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

void PendingFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // One write() moves at most ~2 GiB on Linux; ask for 1 GiB at a time.
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      fail(target_, "write to " + tmp_path_, err);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void atomic_write_file(const std::string& path, const std::function<void(PendingFile&)>& writer) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  // O_TRUNC, not O_EXCL: a leftover with this name is a crashed earlier process's
  // temporary (pids are unique among live processes, the counter within this one).
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    fail(path, "create " + tmp, err);
  }
  PendingFile file(fd, path, tmp);
  bool fd_open = true;
  try {
    writer(file);
    if (::fsync(fd) != 0) {
      const int err = errno;
      fail(path, "fsync of " + tmp, err);
    }
    fd_open = false;
    if (::close(fd) != 0) {
      const int err = errno;
      fail(path, "close of " + tmp, err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      fail(path, "rename from " + tmp, err);
    }
  } catch (...) {
    if (fd_open) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  try {
    fsync_dir(parent_dir(path));
  } catch (const DurableFileError& e) {
    throw DurableFileError(path + ": in place, but " + e.what(), e.error);
  }
}

void atomic_write_file(const std::string& path, std::string_view contents) {
  atomic_write_file(path, [&](PendingFile& f) { f.write(contents); });
}

void fsync_dir(const std::string& dir_in) {
  const std::string dir = dir_in.empty() ? "." : dir_in;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    fail(dir, "open (to fsync the directory)", err);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(dir, "fsync of the directory", err);
}

}  // namespace kaizen::model
