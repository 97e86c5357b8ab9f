// Accept loop for one listening socket (TCP or Unix). Internal to server.cc.
// Over limits.max_connections a new connection gets a 503 and is closed (shed) rather
// than left in the backlog; accept errors such as EMFILE pause the loop briefly instead
// of spinning.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/http/server_state.h"

namespace kaizen::daemon {

template <class Protocol>
class Listener : public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  using Acceptor = typename Protocol::acceptor;

  // `acceptor` is open and listening; its executor should be a strand.
  Listener(boost::asio::io_context& ioc, Acceptor acceptor, std::shared_ptr<ServerState> state);

  void run();
  // Stops accepting and closes the socket. Thread-safe.
  void stop();

  typename Protocol::endpoint local_endpoint() const;

 private:
  void do_accept();
  void on_accept(const boost::system::error_code& ec, typename Protocol::socket socket);

  boost::asio::io_context& ioc_;
  Acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  std::shared_ptr<ServerState> state_;
};

extern template class Listener<boost::asio::ip::tcp>;
extern template class Listener<boost::asio::local::stream_protocol>;

}  // namespace kaizen::daemon
