#include "daemon/http/listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "daemon/http/http_session.h"
#include "daemon/http/openai_json.h"
#include "daemon/log.h"

namespace kaizen::daemon {

namespace net = boost::asio;

namespace {

using error_code = boost::system::error_code;

// Writes a fixed 503 JSON answer and closes: over limits.max_connections, or draining.
template <class Socket>
void shed_connection(Socket socket, const std::shared_ptr<ServerState>& state) {
  state->metrics.connection_shed();
  static const std::string kBody = error_body(Error::Unavailable(
      "kaizend has too many open connections (limits.max_connections); retry later", 1));
  static const std::string kResponse =
      "HTTP/1.1 503 Service Unavailable\r\nServer: kaizend\r\nContent-Type: application/json\r\n"
      "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  auto s = std::make_shared<Socket>(std::move(socket));
  net::async_write(*s, net::buffer(kResponse), [s](error_code, size_t) {
    error_code ec;
    s->shutdown(Socket::shutdown_both, ec);
    s->close(ec);
  });
}

}  // namespace

template <class Protocol>
Listener<Protocol>::Listener(net::io_context& ioc, Acceptor acceptor,
                             std::shared_ptr<ServerState> state)
    : ioc_(ioc),
      acceptor_(std::move(acceptor)),
      backoff_(acceptor_.get_executor()),
      state_(std::move(state)) {}

template <class Protocol>
void Listener<Protocol>::run() {
  net::post(acceptor_.get_executor(), [self = this->shared_from_this()] { self->do_accept(); });
}

template <class Protocol>
void Listener<Protocol>::stop() {
  net::post(acceptor_.get_executor(), [self = this->shared_from_this()] {
    boost::system::error_code ec;
    self->backoff_.cancel();
    self->acceptor_.close(ec);
  });
}

template <class Protocol>
typename Protocol::endpoint Listener<Protocol>::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

template <class Protocol>
void Listener<Protocol>::do_accept() {
  if (!acceptor_.is_open()) return;
  // Each connection gets its own strand: handlers of one session never run concurrently.
  acceptor_.async_accept(net::make_strand(ioc_),
                         [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                           typename Protocol::socket socket) {
                           self->on_accept(ec, std::move(socket));
                         });
}

template <class Protocol>
void Listener<Protocol>::on_accept(const boost::system::error_code& ec,
                                   typename Protocol::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // EMFILE/ENFILE/ENOBUFS: out of descriptors or memory. Back off instead of spinning;
    // the pending connections wait in the kernel backlog.
    logger()->warn("event=accept_failed error=\"{}\"", ec.message());
    backoff_.expires_after(std::chrono::milliseconds(100));
    backoff_.async_wait([self = this->shared_from_this()](const boost::system::error_code& e) {
      if (!e) self->do_accept();
    });
    return;
  }
  if (state_->draining) {
    shed_connection(std::move(socket), state_);
  } else if (state_->metrics.open_connections() >= state_->config()->limits.max_connections) {
    shed_connection(std::move(socket), state_);
  } else {
    start_session(std::move(socket), state_);
  }
  do_accept();
}

template class Listener<net::ip::tcp>;
template class Listener<net::local::stream_protocol>;

}  // namespace kaizen::daemon
