// One HTTP/1.1 connection (keep-alive, pipelining-safe, one outstanding write). Internal
// to the server: include only from listener.cc / server.cc. The Beast machinery lives in
// http_session.cc so that this header stays light.
#pragma once

#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "daemon/http/server_state.h"

namespace kaizen::daemon {

// Takes ownership of an accepted socket (already bound to a strand executor) and
// serves requests until the peer leaves, a timeout fires or the server drains.
void start_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerState> state);
void start_session(boost::asio::local::stream_protocol::socket socket,
                   std::shared_ptr<ServerState> state);

}  // namespace kaizen::daemon
