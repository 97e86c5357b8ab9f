// Driving tests/fault/fault_inject.c from a test: the control file's mode byte and path
// prefix, and where the built library is. Header-only; used by the process that runs
// under the injector (it switches its own disk) or by its parent.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace kaizen::testing {

class FaultControl {
 public:
  enum Mode : char { kOff = '0', kNoSpace = 'S', kIoError = 'E' };

  // Writes files under `prefix` normally until set() says otherwise.
  FaultControl(std::string ctl_path, const std::string& prefix) : path_(std::move(ctl_path)) {
    const std::string body = std::string(1, kOff) + prefix + std::string(1, '\0');
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size())) {
      throw std::runtime_error("cannot write fault control file " + path_);
    }
    ::close(fd);
  }

  // From now on (the next write of the process under the injector).
  void set(Mode mode) const {
    const char m = mode;
    int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::pwrite(fd, &m, 1, 0) != 1)
      throw std::runtime_error("cannot set fault mode in " + path_);
    ::close(fd);
  }

  // Points the faults at another directory (and turns them off until the next set()).
  void aim(const std::string& prefix) const {
    set(kOff);
    const std::string body = prefix + std::string(1, '\0');
    int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::pwrite(fd, body.data(), body.size(), 1) != static_cast<ssize_t>(body.size())) {
      throw std::runtime_error("cannot set the fault prefix in " + path_);
    }
    ::close(fd);
  }

  const std::string& path() const { return path_; }

  // The built injector: $KAIZEN_BUILD_DIR/tests/libkaizen_fault_inject.so.
  static std::string library() {
    const char* build = std::getenv("KAIZEN_BUILD_DIR");
    return std::string(build ? build : ".") + "/tests/libkaizen_fault_inject.so";
  }

 private:
  std::string path_;
};

}  // namespace kaizen::testing
