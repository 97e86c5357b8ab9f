// Who is on the other end of an accepted socket (service.h PeerInfo): the TCP address,
// or for a Unix socket the path and the peer's uid/gid/pid from SO_PEERCRED.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "daemon/service.h"

namespace kaizen::daemon {

PeerInfo peer_of(boost::asio::ip::tcp::socket& socket);
PeerInfo peer_of(boost::asio::local::stream_protocol::socket& socket);

}  // namespace kaizen::daemon
