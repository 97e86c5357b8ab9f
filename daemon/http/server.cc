#include "daemon/http/server.h"

#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "daemon/http/listener.h"
#include "daemon/log.h"
#include "daemon/sd_notify.h"
#include "daemon/http/server_state.h"

namespace kaizen::daemon {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using unix_stream = net::local::stream_protocol;

// 1,000+ concurrent connections need more descriptors than the common 1024 soft limit.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

}  // namespace

struct Server::Impl {
  Impl(const Config& config, Service& service, ServerOptions opts)
      : options(std::move(opts)),
        ioc(static_cast<int>(config.io_threads)),
        state(std::make_shared<ServerState>(config, service, options.chat_limits)),
        signals(ioc),
        watchdog(ioc) {}

  std::string open_unix(const Config& c) {
    const std::string& path = c.socket;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return "socket " + path + ": exists and is not a socket";
      // A live daemon answers connect(); a stale file from a crash does not.
      unix_stream::socket probe(ioc);
      boost::system::error_code ec;
      probe.connect(unix_stream::endpoint(path), ec);
      if (!ec) return "socket " + path + ": another process is listening on it";
      ::unlink(path.c_str());
    }
    unix_stream::acceptor acc(net::make_strand(ioc));
    boost::system::error_code ec;
    acc.open(unix_stream(), ec);
    if (!ec) acc.bind(unix_stream::endpoint(path), ec);
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return "socket " + path + ": " + ec.message();
    if (::chmod(path.c_str(), c.socket_mode_bits) != 0)
      return "socket " + path + ": chmod: " + std::strerror(errno);
    if (!c.socket_group.empty()) {
      group* g = ::getgrnam(c.socket_group.c_str());
      if (!g || ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
        return "socket " + path + ": chown to group " + c.socket_group + ": " +
               std::strerror(errno);
    }
    unix_path = path;
    unix_listener = std::make_shared<Listener<unix_stream>>(ioc, std::move(acc), state);
    return {};
  }

  std::string open_tcp(const Config& c) {
    tcp::acceptor acc(net::make_strand(ioc));
    boost::system::error_code ec;
    tcp::endpoint ep(net::ip::make_address(c.listen_host, ec), c.listen_port);
    if (!ec) acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return "listen " + c.listen + ": " + ec.message();
    tcp_listener = std::make_shared<Listener<tcp>>(ioc, std::move(acc), state);
    return {};
  }

  // Sockets from systemd replace the configured ones of the same kind.
  std::string adopt_activated(bool* have_unix, bool* have_tcp) {
    for (const sd::ListenFd& l : sd::listen_fds()) {
      boost::system::error_code ec;
      if (l.stream && l.family == AF_UNIX && !unix_listener) {
        unix_stream::acceptor acc(net::make_strand(ioc));
        acc.assign(unix_stream(), l.fd, ec);
        if (ec) return "activated socket fd " + std::to_string(l.fd) + ": " + ec.message();
        unix_listener = std::make_shared<Listener<unix_stream>>(ioc, std::move(acc), state);
        *have_unix = true;
        logger()->info("event=socket_activated kind=unix fd={}", l.fd);
      } else if (l.stream && (l.family == AF_INET || l.family == AF_INET6) && !tcp_listener) {
        tcp::acceptor acc(net::make_strand(ioc));
        acc.assign(l.family == AF_INET ? tcp::v4() : tcp::v6(), l.fd, ec);
        if (ec) return "activated socket fd " + std::to_string(l.fd) + ": " + ec.message();
        tcp_listener = std::make_shared<Listener<tcp>>(ioc, std::move(acc), state);
        *have_tcp = true;
        logger()->info("event=socket_activated kind=tcp fd={}", l.fd);
      } else {
        logger()->warn("event=socket_ignored fd={} family={} reason=\"not a stream socket "
                       "kaizend uses, or a second one of its kind\"",
                       l.fd, l.family);
        ::close(l.fd);
      }
    }
    return {};
  }

  void arm_watchdog() {
    watchdog.expires_after(watchdog_every);
    watchdog.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      sd::watchdog_ping();
      arm_watchdog();
    });
  }

  void arm_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload_from_source();
        arm_signals();
        return;
      }
      logger()->info("event=signal signal={} action=drain", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      request_stop();
    });
  }

  void reload_from_source() {
    if (options.reload_source.path.empty()) {
      logger()->info("event=reload skipped=\"no config source\"");
      return;
    }
    Config fresh;
    std::vector<std::string> errors = load_config(options.reload_source, &fresh);
    if (!errors.empty()) {
      for (const auto& e : errors) logger()->error("event=reload_refused problem=\"{}\"", e);
      sd::status("config reload refused, see log; running with the previous config");
      return;
    }
    std::string what = reload(fresh);
    logger()->info("event=reload {}", what);
    sd::status("serving; config reloaded");
  }

  std::string reload(const Config& fresh) {
    std::shared_ptr<const Config> old = state->config();
    auto next = std::make_shared<Config>(*old);
    std::vector<std::string> changed, ignored;
    if (fresh.bearer_token != old->bearer_token) changed.push_back("api_key");
    next->api_key = fresh.api_key;
    next->api_key_file = fresh.api_key_file;
    next->bearer_token = fresh.bearer_token;
    if (fresh.allowed_hosts != old->allowed_hosts) changed.push_back("allowed_hosts");
    next->allowed_hosts = fresh.allowed_hosts;
    if (fresh.log_level != old->log_level) changed.push_back("log_level");
    next->log_level = fresh.log_level;
    const Limits& a = old->limits;
    const Limits& b = fresh.limits;
    if (std::tie(a.max_header_bytes, a.max_body_bytes, a.max_prompt_chars, a.max_messages,
                 a.max_tokens, a.default_max_tokens, a.max_active_chats, a.max_queued_chats,
                 a.retry_after_s, a.max_connections, a.header_timeout_s, a.idle_timeout_s,
                 a.body_timeout_s, a.write_timeout_s, a.drain_timeout_s) !=
        std::tie(b.max_header_bytes, b.max_body_bytes, b.max_prompt_chars, b.max_messages,
                 b.max_tokens, b.default_max_tokens, b.max_active_chats, b.max_queued_chats,
                 b.retry_after_s, b.max_connections, b.header_timeout_s, b.idle_timeout_s,
                 b.body_timeout_s, b.write_timeout_s, b.drain_timeout_s))
      changed.push_back("limits");
    next->limits = fresh.limits;
    // Keys that only a restart applies.
    if (fresh.socket != old->socket) ignored.push_back("socket");
    if (fresh.listen != old->listen) ignored.push_back("listen");
    if (fresh.io_threads != old->io_threads) ignored.push_back("io_threads");
    if (fresh.model != old->model) ignored.push_back("model");
    if (fresh.device != old->device) ignored.push_back("device");
    if (fresh.threads != old->threads) ignored.push_back("threads");
    if (fresh.state_dir != old->state_dir) ignored.push_back("state_dir");
    if (fresh.socket_mode != old->socket_mode || fresh.socket_group != old->socket_group)
      ignored.push_back("socket_mode/socket_group");
    state->gate.set_limits(next->limits.max_active_chats, next->limits.max_queued_chats);
    set_log_level(next->log_level);
    state->set_config(std::move(next));
    std::string out = "reloaded=\"" + (changed.empty() ? "nothing changed" : join(changed)) + "\"";
    if (!ignored.empty()) out += " needs_restart=\"" + join(ignored) + "\"";
    return out;
  }

  void request_stop() {
    std::lock_guard<std::mutex> lock(stop_mu);
    stop_requested = true;
    stop_cv.notify_all();
  }

  ServerOptions options;
  net::io_context ioc;
  std::shared_ptr<ServerState> state;
  std::shared_ptr<Listener<unix_stream>> unix_listener;
  std::shared_ptr<Listener<tcp>> tcp_listener;
  std::string unix_path;  // unlinked at exit when we created it
  net::signal_set signals;
  net::steady_timer watchdog;
  std::chrono::microseconds watchdog_every{0};
  std::vector<std::thread> threads;
  bool started = false;

  std::mutex stop_mu;  // guards stop_requested
  std::condition_variable stop_cv;
  bool stop_requested = false;
};

Server::Server(const Config& config, Service& service, ServerOptions options)
    : impl_(std::make_unique<Impl>(config, service, std::move(options))) {}

Server::~Server() {
  if (impl_->started) {
    impl_->ioc.stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
  }
  if (!impl_->unix_path.empty()) ::unlink(impl_->unix_path.c_str());
}

std::string Server::start() {
  Impl& s = *impl_;
  raise_fd_limit();
  std::shared_ptr<const Config> c = s.state->config();
  set_log_level(c->log_level);
  bool have_unix = false, have_tcp = false;
  if (s.options.use_socket_activation) {
    std::string err = s.adopt_activated(&have_unix, &have_tcp);
    if (!err.empty()) return err;
  }
  if (!have_unix && !c->socket.empty()) {
    std::string err = s.open_unix(*c);
    if (!err.empty()) return err;
  }
  if (!have_tcp && !c->listen.empty()) {
    std::string err = s.open_tcp(*c);
    if (!err.empty()) return err;
  }
  if (!s.unix_listener && !s.tcp_listener)
    return "no listener: both socket and listen are empty and systemd passed no sockets";
  if (s.tcp_listener && c->bearer_token.empty())
    logger()->warn("event=no_api_key detail=\"TCP chat answers 403 until api_key_file is set\"");

  if (s.unix_listener) s.unix_listener->run();
  if (s.tcp_listener) s.tcp_listener->run();
  if (s.options.handle_signals) {
    s.signals.add(SIGTERM);
    s.signals.add(SIGINT);
    s.signals.add(SIGHUP);
    s.arm_signals();
  }
  s.watchdog_every = sd::watchdog_interval() / 2;
  if (s.watchdog_every.count() > 0) {
    sd::watchdog_ping();
    s.arm_watchdog();
  }
  for (int64_t i = 0; i < c->io_threads; ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
  s.started = true;
  logger()->info("event=listening unix=\"{}\" tcp=\"{}\" io_threads={} watchdog_ms={}",
                 s.unix_listener ? (s.unix_path.empty() ? "activated" : s.unix_path) : "off",
                 s.tcp_listener ? s.tcp_listener->local_endpoint().address().to_string() + ":" +
                                      std::to_string(tcp_port())
                                : "off",
                 c->io_threads,
                 std::chrono::duration_cast<std::chrono::milliseconds>(s.watchdog_every * 2)
                     .count());
  return {};
}

int64_t Server::run() {
  Impl& s = *impl_;
  {
    std::unique_lock<std::mutex> lock(s.stop_mu);
    s.stop_cv.wait(lock, [&] { return s.stop_requested; });
  }
  // Drain: stop accepting, let in-flight requests finish, then stop the threads.
  s.state->draining = true;
  sd::stopping("draining " + std::to_string(s.state->in_flight.load()) + " requests");
  if (s.unix_listener) s.unix_listener->stop();
  if (s.tcp_listener) s.tcp_listener->stop();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::seconds(s.state->config()->limits.drain_timeout_s);
  while (s.state->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  int64_t left = s.state->in_flight.load();
  logger()->info("event=drained in_flight_left={}", left);
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.started = false;
  return left;
}

void Server::stop() { impl_->request_stop(); }

std::string Server::reload(const Config& config) { return impl_->reload(config); }

uint16_t Server::tcp_port() const {
  return impl_->tcp_listener ? impl_->tcp_listener->local_endpoint().port() : 0;
}

std::string Server::metrics_text() const { return impl_->state->metrics.render(); }

}  // namespace kaizen::daemon
