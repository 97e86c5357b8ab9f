// Process-level behaviour of the server binary (kaizen_fake_server: the real Server and
// config code in front of FakeService): sd_notify READY/STOPPING/WATCHDOG, SIGTERM drain,
// SIGHUP reload, systemd socket activation.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "daemon/sd_notify.h"
#include "http_client.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon::testing {
namespace {

using namespace std::chrono_literals;

// <build>/tests/test_daemon -> <build>; used when ctest did not pass KAIZEN_BUILD_DIR.
std::string build_dir() {
  if (const char* b = std::getenv("KAIZEN_BUILD_DIR")) return b;
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  std::string p(exe, n > 0 ? static_cast<size_t>(n) : 0);
  p = p.substr(0, p.rfind('/'));        // <build>/tests
  return p.substr(0, p.rfind('/'));     // <build>
}

std::string fake_server_bin() { return build_dir() + "/tests/kaizen_fake_server"; }

// A datagram socket standing in for systemd's notify socket.
struct NotifySocket {
  int fd = -1;
  std::string path;
  NotifySocket() {
    path = "/tmp/kaizen-notify-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter()++) + ".sock";
    ::unlink(path.c_str());
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  }
  ~NotifySocket() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
  // Next datagram, or "" after timeout.
  std::string next(std::chrono::milliseconds timeout = 5000ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Waits for a datagram containing `needle`; on timeout fails (naming the needle and
  // the last datagram seen) and returns false.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout = 10000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last = "(none)";
    while (std::chrono::steady_clock::now() < deadline) {
      std::string m = next(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (m.find(needle) != std::string::npos) return true;
      if (!m.empty()) last = m;
    }
    ADD_FAILURE() << "timed out after " << timeout.count() << " ms waiting for a notification with \""
                  << needle << "\"; last datagram: \"" << last << "\"";
    return false;
  }
};

TEST(SdNotifyTest, SendsToNotifySocket) {
  NotifySocket ns;
  ::setenv("NOTIFY_SOCKET", ns.path.c_str(), 1);
  EXPECT_TRUE(sd::ready("serving"));
  EXPECT_EQ(ns.next(), "READY=1\nSTATUS=serving");
  EXPECT_TRUE(sd::extend_timeout(std::chrono::seconds(30)));
  EXPECT_EQ(ns.next(), "EXTEND_TIMEOUT_USEC=30000000");
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(sd::status("nobody listens"));  // outside systemd: a no-op
  EXPECT_EQ(sd::watchdog_interval().count(), 0);
  EXPECT_TRUE(sd::listen_fds().empty());
}

struct Child {
  pid_t pid = -1;
  int out = -1;  // child's stdout
  uint16_t port = 0;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
  }
  int wait_exit() {
    int st = 0;
    ::waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
};

// Starts bin with args; `pass` fds become 3, 4, ... with LISTEN_PID/LISTEN_FDS set as
// systemd does; `env` entries are KEY=VALUE ("WATCHDOG_PID=self" means the child's pid).
void spawn(Child* c, const std::string& bin, std::vector<std::string> args,
           std::vector<std::string> env, std::vector<int> pass = {}) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::close(pipefd[0]);
    std::vector<int> high;
    for (int fd : pass) high.push_back(::fcntl(fd, F_DUPFD, 100));
    for (size_t i = 0; i < high.size(); ++i) ::dup2(high[i], 3 + static_cast<int>(i));
    if (!pass.empty()) {
      ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
      ::setenv("LISTEN_FDS", std::to_string(pass.size()).c_str(), 1);
    }
    for (const std::string& e : env) {
      size_t eq = e.find('=');
      std::string k = e.substr(0, eq), v = e.substr(eq + 1);
      if (v == "self") v = std::to_string(::getpid());
      ::setenv(k.c_str(), v.c_str(), 1);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    std::_Exit(127);
  }
  ::close(pipefd[1]);
  c->pid = pid;
  c->out = pipefd[0];
}

// Reads the child's "tcp_port=N" line.
bool read_port(Child* c) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{c->out, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(c->out, buf, sizeof(buf));
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
    size_t at = out.find("tcp_port=");
    if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
      c->port = static_cast<uint16_t>(std::atoi(out.c_str() + at + 9));
      return true;
    }
  }
  return false;
}

std::string temp_path(const std::string& stem) {
  static int n = 0;
  return "/tmp/kaizen-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

std::vector<std::string> base_args(const std::string& sock) {
  return {"--config=/dev/null", "--listen=127.0.0.1:0", "--socket=" + sock,
          std::string("--api_key=") + kToken, "--log_level=warn"};
}

TEST(ProcessTest, ReadyWatchdogAndSigtermDrain) {
  NotifySocket ns;
  Child c;
  std::string sock = temp_path("proc") + ".sock";
  spawn(&c, fake_server_bin(), base_args(sock),
        {"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=400000", "WATCHDOG_PID=self",
         "KAIZEN_FAKE_TOKEN_DELAY_MS=5"});
  ASSERT_TRUE(read_port(&c));
  EXPECT_TRUE(ns.wait_for("READY=1"));
  EXPECT_TRUE(ns.wait_for("WATCHDOG=1", 2000ms));
  EXPECT_TRUE(ns.wait_for("WATCHDOG=1", 2000ms));  // repeated from the event loop
  int fd = connect_tcp(c.port);
  send_all(fd, make_request("POST", "/v1/chat/completions",
                            chat_body("__long__", true, "kaizen", {{"max_tokens", 100}}),
                            {std::string("Authorization: Bearer ") + kToken}));
  char ch;
  ASSERT_EQ(::recv(fd, &ch, 1, MSG_PEEK), 1);
  ::kill(c.pid, SIGTERM);
  EXPECT_TRUE(ns.wait_for("STOPPING=1"));
  HttpResponse r = read_response(fd);
  ::close(fd);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(sse_events(r.body).back(), "[DONE]");  // the in-flight stream was finished
  EXPECT_EQ(c.wait_exit(), 0);
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "socket file left behind";
}

TEST(ProcessTest, SighupReloadsApiKeyAndRefusesBadConfig) {
  std::string conf = temp_path("reload") + ".conf";
  std::string sock = temp_path("reload") + ".sock";
  std::ofstream(conf) << "listen = 127.0.0.1:0\nsocket = " << sock << "\napi_key = old-key\n";
  NotifySocket ns;  // the server reports each reload's outcome as STATUS=
  Child c;
  spawn(&c, fake_server_bin(), {"--config=" + conf, "--log_level=warn"}, {"NOTIFY_SOCKET=" + ns.path});
  ASSERT_TRUE(read_port(&c));
  auto models = [&](const std::string& key) {
    return tcp_request(c.port, make_request("GET", "/v1/models", "", {"Authorization: Bearer " + key}))
        .status;
  };
  EXPECT_EQ(models("old-key"), 200);
  std::ofstream(conf) << "listen = 127.0.0.1:0\nsocket = " << sock << "\napi_key = new-key\n";
  ::kill(c.pid, SIGHUP);
  int status = 0;
  ::kaizen::testing::wait_until([&] { return (status = models("new-key")) == 200; }, 10000ms,
                                "SIGHUP to make new-key valid (GET /v1/models 200)",
                                [&] { return "status " + std::to_string(status); });
  EXPECT_EQ(status, 200);
  EXPECT_EQ(models("old-key"), 401);
  // A broken file is refused as a whole; the running config stays.
  std::ofstream(conf) << "api_key = newer-key\nnot_a_key = 1\n";
  ::kill(c.pid, SIGHUP);
  EXPECT_TRUE(ns.wait_for("STATUS=config reload refused"));  // the server has read and refused it
  EXPECT_EQ(models("new-key"), 200);
  EXPECT_EQ(models("newer-key"), 401);
  ::kill(c.pid, SIGTERM);
  EXPECT_EQ(c.wait_exit(), 0);
  ::unlink(conf.c_str());
}

TEST(ProcessTest, SocketActivationUsesPassedSockets) {
  // TCP listener on an ephemeral port and a Unix listener, created here as systemd would.
  int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(tcp, 16), 0);
  socklen_t len = sizeof(a);
  ::getsockname(tcp, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  std::string path = temp_path("activated") + ".sock";
  int ux = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  std::strncpy(u.sun_path, path.c_str(), sizeof(u.sun_path) - 1);
  ASSERT_EQ(::bind(ux, reinterpret_cast<sockaddr*>(&u), sizeof(u)), 0);
  ASSERT_EQ(::listen(ux, 16), 0);

  Child c;
  // The configured addresses would fail to bind: only the passed sockets can work.
  spawn(&c, fake_server_bin(),
        {"--config=/dev/null", "--listen=127.0.0.1:1", "--socket=/nonexistent/dir/x.sock",
         std::string("--api_key=") + kToken, "--log_level=warn"},
        {}, {ux, tcp});
  ASSERT_TRUE(read_port(&c));
  EXPECT_EQ(c.port, port);
  EXPECT_EQ(tcp_request(port, make_request("GET", "/healthz")).status, 200);
  HttpResponse r = unix_request(path, make_request("GET", "/admin/status"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(tcp_request(port, make_request("POST", "/v1/chat/completions", chat_body("activated"),
                                           {std::string("Authorization: Bearer ") + kToken}))
                .json()["choices"][0]["message"]["content"],
            "Echo: activated");
  ::kill(c.pid, SIGTERM);
  EXPECT_EQ(c.wait_exit(), 0);
  ::close(tcp);
  ::close(ux);
  ::unlink(path.c_str());
}

// kaizend itself: --check-config prints the effective config (0) or every problem (2).
TEST(ProcessTest, KaizendCheckConfig) {
  const char* bin_dir = std::getenv("KAIZEN_BIN_DIR");
  std::string bin = (bin_dir ? std::string(bin_dir) : build_dir() + "/bin") + "/kaizend";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << bin << " not built";
  auto run = [&](const std::string& args, int* code) {
    std::string out;
    FILE* p = ::popen((bin + " " + args + " 2>&1").c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    *code = WEXITSTATUS(st);
    return out;
  };
  int code = -1;
  std::string out = run("--config=/dev/null --check-config --listen=127.0.0.1:9999", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("listen = 127.0.0.1:9999"), std::string::npos) << out;
  EXPECT_NE(out.find("[limits]"), std::string::npos) << out;
  out = run("--config=/dev/null --check-config --bogus=1 --io_threads=x", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("unknown key 'bogus'"), std::string::npos) << out;
  EXPECT_NE(out.find("io_threads: 'x' is not an integer"), std::string::npos) << out;
  // An empty flag value switches a listener off.
  out = run("--config=/dev/null --check-config --socket= --listen=", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("socket = \n"), std::string::npos) << out;
  out = run("--help", &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("--limits.max_body_bytes"), std::string::npos);
}

}  // namespace
}  // namespace kaizen::daemon::testing
