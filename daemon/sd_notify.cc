#include "daemon/sd_notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef KAIZEN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace kaizen::daemon::sd {
namespace {

int socket_family(int fd, bool* stream) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  int type = 0;
  socklen_t tlen = sizeof(type);
  *stream = ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM;
  return addr.ss_family;
}

#ifndef KAIZEN_HAVE_SYSTEMD
// Parses a non-negative decimal environment variable; -1 when unset or malformed.
long long env_number(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  long long n = std::strtoll(v, &end, 10);
  return (*end == '\0' && n >= 0) ? n : -1;
}

// The sd_notify protocol: one datagram of newline-separated KEY=VALUE to $NOTIFY_SOCKET
// (a path, or '@' for the abstract namespace).
bool notify_datagram(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t n = std::strlen(path);
  if (n >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, n);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                          reinterpret_cast<sockaddr*>(&addr), len);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}
#endif

}  // namespace

bool notify(const std::string& state) {
#ifdef KAIZEN_HAVE_SYSTEMD
  return ::sd_notify(0, state.c_str()) > 0;
#else
  return notify_datagram(state);
#endif
}

bool extend_timeout(std::chrono::microseconds extra) {
  return notify("EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count()));
}

std::chrono::microseconds watchdog_interval() {
#ifdef KAIZEN_HAVE_SYSTEMD
  uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) > 0) return std::chrono::microseconds(usec);
  return std::chrono::microseconds(0);
#else
  long long pid = env_number("WATCHDOG_PID");
  if (pid >= 0 && pid != ::getpid()) return std::chrono::microseconds(0);
  long long usec = env_number("WATCHDOG_USEC");
  return std::chrono::microseconds(usec > 0 ? usec : 0);
#endif
}

std::vector<ListenFd> listen_fds() {
  std::vector<ListenFd> out;
  int n = 0;
  constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
#ifdef KAIZEN_HAVE_SYSTEMD
  n = ::sd_listen_fds(/*unset_environment=*/1);
#else
  long long pid = env_number("LISTEN_PID");
  long long count = env_number("LISTEN_FDS");
  if (pid == ::getpid() && count > 0) n = static_cast<int>(count);
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
#endif
  for (int fd = kFirstFd; fd < kFirstFd + n; ++fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ListenFd l;
    l.fd = fd;
    l.family = socket_family(fd, &l.stream);
    out.push_back(l);
  }
  return out;
}

}  // namespace kaizen::daemon::sd
