#include "daemon/http/peer.h"

#include <sys/socket.h>

namespace kaizen::daemon {

namespace net = boost::asio;
using error_code = boost::system::error_code;

PeerInfo peer_of(net::ip::tcp::socket& s) {
  PeerInfo p;
  p.transport = PeerInfo::Transport::kTcp;
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (!ec) {
    p.address = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    p.address += ":" + std::to_string(ep.port());
  }
  return p;
}

PeerInfo peer_of(net::local::stream_protocol::socket& s) {
  PeerInfo p;
  p.transport = PeerInfo::Transport::kUnix;
  error_code ec;
  auto ep = s.local_endpoint(ec);
  if (!ec) p.address = ep.path();
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    p.uid = cred.uid;
    p.gid = cred.gid;
    p.pid = cred.pid;
  }
  return p;
}

}  // namespace kaizen::daemon
