#include "daemon/http/http_session.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "daemon/http/chat_exchange.h"
#include "daemon/http/openai_json.h"
#include "daemon/http/peer.h"
#include "daemon/log.h"
#include "daemon/http/router.h"

namespace kaizen::daemon {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using error_code = beast::error_code;
using Clock = std::chrono::steady_clock;

constexpr const char* kServerName = "kaizend";
// After an error with the body unread, keep reading and dropping for at most this long.
// Bounded by time only (like nginx's lingering_time): closing while the client is still
// sending makes the kernel answer with a reset, and a reset discards our error response
// from the client's receive queue if the client has not read it yet (seen in CI with a
// 100 MB body). Dropping bytes costs next to nothing.
constexpr auto kLingerTime = std::chrono::seconds(2);

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

template <class Protocol>
class Session : public std::enable_shared_from_this<Session<Protocol>>, public ChatConnection {
 public:
  using Socket = typename Protocol::socket;
  using Stream = beast::basic_stream<Protocol>;

  Session(Socket socket, std::shared_ptr<ServerState> state)
      : peer_(peer_of(socket)),
        stream_(std::move(socket)),
        state_(std::move(state)),
        idle_timer_(stream_.get_executor()),
        chat_(*this, *state_, peer_) {
    state_->metrics.connection_opened();
  }

  ~Session() {
    end_request(499);  // client closed request (nginx's code), if one was open
    state_->metrics.connection_closed();
  }

  void run() {
    net::dispatch(stream_.get_executor(),
                  [self = this->shared_from_this()] { self->wait_for_request(); });
  }

 private:
  bool is_tcp() const { return peer_.transport == PeerInfo::Transport::kTcp; }

  // ---- reading a request -----------------------------------------------------------

  // Keep-alive wait: an idle connection may sit for idle_timeout_s; once bytes arrive the
  // header must be complete within header_timeout_s (slowloris).
  void wait_for_request() {
    if (closed_) return;
    if (state_->draining) return close();
    cfg_ = state_->config();
    if (buffer_.size() > 0) return read_header();
    auto self = this->shared_from_this();
    uint64_t gen = ++idle_gen_;
    idle_timer_.expires_after(std::chrono::seconds(cfg_->limits.idle_timeout_s));
    idle_timer_.async_wait([self, gen](error_code ec) {
      if (ec || gen != self->idle_gen_) return;
      self->close();
    });
    stream_.socket().async_wait(Socket::wait_read, [self, gen](error_code ec) {
      if (gen != self->idle_gen_) return;
      ++self->idle_gen_;
      self->idle_timer_.cancel();
      if (ec || self->closed_) return self->close();
      self->read_header();
    });
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(cfg_->limits.max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(cfg_->limits.max_body_bytes));
    stream_.expires_after(std::chrono::seconds(cfg_->limits.header_timeout_s));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted)
      return close();
    if (ec == beast::error::timeout) {
      // basic_stream closed the socket; nothing can be written any more.
      begin_request();
      logger()->info("event=timeout phase=header peer={}", peer_.address);
      end_request(408);
      return close();
    }
    begin_request();
    if (ec == http::error::header_limit) {
      must_close_ = true;
      return send_error(Error{431, "invalid_request_error",
                              "the request header is larger than " +
                                  std::to_string(cfg_->limits.max_header_bytes) + " bytes",
                              {}, "header_too_large", 0});
    }
    if (ec == http::error::body_limit) return send_body_too_large();
    if (ec) {
      must_close_ = true;
      return send_error(Error::InvalidRequest("malformed HTTP request: " + ec.message()));
    }

    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    must_close_ = !parser_->is_done();  // until the body is read
    match_ = match_route(sv(req.method_string()), sv(req.target()), peer_.transport);

    if (is_tcp() && !host_allowed(sv(req[http::field::host]), cfg_->allowed_hosts)) {
      logger()->warn("event=host_refused host=\"{}\" peer={}", std::string(req[http::field::host]),
                     peer_.address);
      return send_error(Error::Forbidden(
          "Host '" + std::string(req[http::field::host]) +
          "' is not allowed (allowed_hosts in kaizend.conf); this stops DNS rebinding"));
    }
    if (match_.route == Route::kNotFound)
      return send_error(Error::NotFound("no route for " + std::string(req.method_string()) +
                                            " " + std::string(req.target()),
                                        "not_found"));
    if (!match_.method_ok) {
      Error e{405, "invalid_request_error",
              "method " + std::string(req.method_string()) + " is not allowed here; use " +
                  match_.allow,
              {}, "method_not_allowed", 0};
      return send_reply(error_reply(e), match_.allow);
    }
    if (is_tcp() && match_.needs_token) {
      if (auto e = check_bearer(sv(req[http::field::authorization]), cfg_->bearer_token))
        return send_error(*e);
    }
    if (state_->draining) {
      must_close_ = true;
      return send_error(Error::Unavailable("kaizend is shutting down", 1));
    }
    if (parser_->is_done()) return dispatch();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                      req.version());
      stream_.expires_after(std::chrono::seconds(cfg_->limits.write_timeout_s));
      return http::async_write(stream_, *cont,
                               [self = this->shared_from_this(), cont](error_code ec, size_t) {
                                 if (ec) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(std::chrono::seconds(cfg_->limits.body_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, size_t) {
                       self->on_body(ec);
                     });
  }

  void on_body(error_code ec) {
    if (ec == beast::error::timeout) {
      logger()->info("event=timeout phase=body peer={}", peer_.address);
      end_request(408);
      return close();
    }
    if (ec == http::error::body_limit) return send_body_too_large();
    if (ec) {
      end_request(400);
      return close();
    }
    must_close_ = false;
    dispatch();
  }

  void dispatch() {
    auto& req = parser_->get();
    if (match_.route == Route::kChat) return chat_.start(req.body(), cfg_, /*text_completion=*/false);
    if (match_.route == Route::kCompletions) return chat_.start(req.body(), cfg_, /*text_completion=*/true);
    send_reply(handle_simple(match_, sv(req.method_string()), req.body(), peer_, state_->service,
                             state_->metrics));
  }

  // ---- plain replies -----------------------------------------------------------------

  void send_error(const Error& e) { send_reply(error_reply(e)); }

  void send_body_too_large() {
    must_close_ = true;  // the body stays unread: this connection cannot be reused
    send_error(Error{413, "invalid_request_error",
                     "the request body is larger than " +
                         std::to_string(cfg_->limits.max_body_bytes) + " bytes",
                     {}, "request_too_large", 0});
  }

  void send_reply(Reply r) override { send_reply(std::move(r), nullptr); }

  void send_reply(Reply r, const char* allow) {
    if (closed_) return end_request(r.status);
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    res_.emplace(static_cast<http::status>(r.status), version);
    res_->set(http::field::server, kServerName);
    res_->set(http::field::content_type, r.content_type);
    if (r.retry_after_s > 0) res_->set(http::field::retry_after, std::to_string(r.retry_after_s));
    if (allow) res_->set(http::field::allow, allow);
    res_->body() = std::move(r.body);
    res_->keep_alive(keep_alive_ && !must_close_ && !state_->draining);
    res_->prepare_payload();
    stream_.expires_after(std::chrono::seconds(cfg_->limits.write_timeout_s));
    http::async_write(stream_, *res_,
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        self->on_reply_written(ec);
                      });
  }

  void on_reply_written(error_code ec) {
    const int status = res_->result_int();
    const bool keep = res_->keep_alive();
    res_.reset();
    end_request(ec ? 499 : status);  // a reply that could not be written was not delivered
    stop_watch();
    if (ec) return close();
    if (!keep) return must_close_ ? linger_close() : close();
    wait_for_request();
  }

  // ---- chat --------------------------------------------------------------------------

  // ---- chat (http/chat_exchange.h does the logic; these are its I/O) -----------------

  std::shared_ptr<ChatConnection> shared() override { return this->shared_from_this(); }

  void post(std::function<void()> fn) override {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), fn = std::move(fn)] { fn(); });
  }

  void write_stream_header(Done done) override {
    sse_res_.emplace(http::status::ok, parser_->get().version());
    sse_res_->set(http::field::server, kServerName);
    sse_res_->set(http::field::content_type, "text/event-stream; charset=utf-8");
    sse_res_->set(http::field::cache_control, "no-cache");
    sse_res_->set("X-Accel-Buffering", "no");
    sse_res_->keep_alive(keep_alive_ && !state_->draining);
    sse_res_->chunked(true);
    sse_sr_.emplace(*sse_res_);
    stream_.expires_after(std::chrono::seconds(cfg_->limits.write_timeout_s));
    http::async_write_header(stream_, *sse_sr_, [self = this->shared_from_this(), done](error_code ec, size_t) {
      done(!ec);
    });
  }

  void write_chunk(const std::string& bytes, Done done) override {
    stream_.expires_after(std::chrono::seconds(cfg_->limits.write_timeout_s));
    net::async_write(stream_, http::make_chunk(net::buffer(bytes)),
                     [self = this->shared_from_this(), done](error_code ec, size_t) { done(!ec); });
  }

  void write_last_chunk(Done done) override {
    stream_.expires_after(std::chrono::seconds(cfg_->limits.write_timeout_s));
    net::async_write(stream_, http::make_chunk_last(),
                     [self = this->shared_from_this(), done](error_code ec, size_t) { done(!ec); });
  }

  void stream_finished(int status) override {
    end_request(status);
    if (!sse_res_->keep_alive()) return close();
    sse_sr_.reset();
    sse_res_.reset();
    wait_for_request();
  }

  // While a chat runs no request is read, so a vanished client is seen by waiting for
  // readability: EOF or an error means it left (a pipelined request means it did not).
  void watch_disconnect(std::function<void()> gone) override {
    uint64_t gen = ++watch_gen_;
    stream_.socket().async_wait(Socket::wait_read, [self = this->shared_from_this(), gen, gone](error_code ec) {
      if (gen != self->watch_gen_) return;
      if (ec) return gone();
      char c;
      ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) gone();
    });
  }

  // Retires the pending readability wait: its handler, when it runs, sees a stale
  // generation and does nothing. Not socket().cancel(): that would also abort a write in
  // flight (a streaming chat's last chunks). The stale wait ends with the next request
  // on this connection or when the socket closes.
  void stop_watch() override { ++watch_gen_; }

  void close_gone() override {
    end_request(499);
    close();
  }

  // ---- bookkeeping -------------------------------------------------------------------

  void begin_request() {
    if (in_request_) return;
    in_request_ = true;
    started_ = Clock::now();
    state_->in_flight.fetch_add(1);
    match_ = RouteMatch{};
    chat_.reset();
  }

  void end_request(int status) {
    if (!in_request_) return;
    in_request_ = false;
    double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    state_->metrics.observe_request(match_.name, status, secs);
    state_->in_flight.fetch_sub(1);
    if (status >= 500 || status == 408 || status == 413 || status == 429 || status == 431)
      logger()->info("request route={} status={} seconds={:.3f} peer={}", match_.name, status,
                     secs, peer_.address);
    else
      logger()->debug("request route={} status={} seconds={:.3f} peer={}", match_.name, status,
                      secs, peer_.address);
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    ++idle_gen_;
    idle_timer_.cancel();
    error_code ec;
    stream_.socket().shutdown(Socket::shutdown_both, ec);
    stream_.close();
  }

  // After an error with the body unread: send FIN, then read and drop what the client
  // still sends for a little while, so it sees our answer instead of a reset.
  void linger_close() {
    error_code ec;
    stream_.socket().shutdown(Socket::shutdown_send, ec);
    buffer_.consume(buffer_.size());
    linger_until_ = Clock::now() + kLingerTime;
    linger_read();
  }

  void linger_read() {
    if (closed_ || Clock::now() >= linger_until_) return close();
    stream_.expires_at(linger_until_);
    auto buf = std::make_shared<std::array<char, 65536>>();
    stream_.async_read_some(net::buffer(*buf),
                            [self = this->shared_from_this(), buf](error_code ec, size_t) {
                              if (ec) return self->close();
                              self->linger_read();
                            });
  }

  const PeerInfo peer_;
  Stream stream_;
  std::shared_ptr<ServerState> state_;
  net::steady_timer idle_timer_;
  beast::flat_buffer buffer_;
  std::shared_ptr<const Config> cfg_;  // snapshot for the current request
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  RouteMatch match_;
  bool keep_alive_ = true;
  bool must_close_ = false;  // the request body was not consumed
  bool closed_ = false;
  bool in_request_ = false;
  Clock::time_point started_;
  uint64_t idle_gen_ = 0;
  uint64_t watch_gen_ = 0;
  Clock::time_point linger_until_;

  // One chat per connection at a time (after the members it refers to).
  ChatExchange chat_;
  std::optional<http::response<http::empty_body>> sse_res_;
  std::optional<http::response_serializer<http::empty_body>> sse_sr_;
};

}  // namespace

void start_session(net::ip::tcp::socket socket, std::shared_ptr<ServerState> state) {
  // SSE writes one small chunk per token: without TCP_NODELAY, Nagle + delayed ACK hold
  // each one back ~40 ms.
  error_code ec;
  socket.set_option(net::ip::tcp::no_delay(true), ec);
  std::make_shared<Session<net::ip::tcp>>(std::move(socket), std::move(state))->run();
}

void start_session(net::local::stream_protocol::socket socket,
                   std::shared_ptr<ServerState> state) {
  std::make_shared<Session<net::local::stream_protocol>>(std::move(socket), std::move(state))
      ->run();
}

}  // namespace kaizen::daemon
