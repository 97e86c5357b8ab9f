// systemd integration: readiness/status notifications, watchdog, socket activation.
//
// With KAIZEN_HAVE_SYSTEMD these call libsystemd (sd_notify, sd_listen_fds,
// sd_watchdog_enabled); without it they speak the same protocols directly (a datagram
// to $NOTIFY_SOCKET; $LISTEN_PID/$LISTEN_FDS). Outside systemd every call is a cheap
// no-op, so kaizend runs the same from a shell. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace kaizen::daemon::sd {

// Sends one notification (e.g. "READY=1", "STATUS=loading model"). Returns true when a
// notify socket exists and the message was sent.
bool notify(const std::string& state);

inline bool ready(const std::string& status) { return notify("READY=1\nSTATUS=" + status); }
inline bool status(const std::string& text) { return notify("STATUS=" + text); }
inline bool stopping(const std::string& status) {
  return notify("STOPPING=1\nSTATUS=" + status);
}
inline bool watchdog_ping() { return notify("WATCHDOG=1"); }
inline bool reloading() { return notify("RELOADING=1"); }
// Asks systemd for `extra` more start-up time (model load), measured from now.
bool extend_timeout(std::chrono::microseconds extra);

// The watchdog interval systemd expects pings within (WatchdogSec=), or zero when the
// watchdog is off or meant for another process.
std::chrono::microseconds watchdog_interval();

// A listening socket passed by systemd socket activation.
struct ListenFd {
  int fd = -1;
  int family = 0;    // AF_UNIX, AF_INET, AF_INET6
  bool stream = false;
};

// Sockets passed with $LISTEN_FDS for this pid (fds 3..), marked close-on-exec. The
// variables are unset so children do not inherit them. Empty without activation.
std::vector<ListenFd> listen_fds();

}  // namespace kaizen::daemon::sd
