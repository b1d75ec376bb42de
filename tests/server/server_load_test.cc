// Server::load binds every new listener on the control thread before it changes anything. When
// a bind fails, the sockets that load already bound for the new plan are closed again (they are
// net::Fd owners until the workers' handlers adopt them) and the running configuration is left
// as it was.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "common/inherited_sockets.h"
#include "config/corefile.h"
#include "dns/message.h"
#include "dns/name.h"
#include "net/fd.h"
#include "plan/plan.h"
#include "server/server.h"
#include "support/open_fds.h"
#include "support/server_with_metrics.h"
#include "support/udp_peer.h"

namespace nld::server {
namespace {

std::string block(uint16_t port) {
  // Port 9 (discard) is never asked: no query is sent in this test.
  return ".:" + std::to_string(port) + " {\n  bind 127.0.0.1\n  forward . 127.0.0.1:9\n}\n";
}

// A plain TCP listener on 127.0.0.1:port, without SO_REUSEPORT: the server's listenTcp there
// fails with EADDRINUSE (its UDP binds on the port still succeed).
net::Fd holdTcpPort(uint16_t port) {
  net::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(fd.get(), 1) != 0) {
    throw std::runtime_error("cannot hold TCP port " + std::to_string(port));
  }
  return fd;
}

// ServerOptions::tcp_workers (the daemon's CPU budget): every worker gets a UDP socket of the
// listener, only the first tcp_workers a TCP one; TCP is served all the same.
TEST(ServerLoad, TcpSocketsOnlyOnTheTcpWorkers) {
  const uint16_t port = test::freePort();
  test::ServerWithMetrics s(3, 1);
  s.server.load(plan::buildPlan(config::parseCorefile(block(port), "test"), 3, &s.metrics));
  size_t udp = 0;
  size_t tcp = 0;
  for (const PassedSocket& p : s.server.listeningSockets()) {
    (p.kind == SocketKind::kDnsTcp ? tcp : udp) += 1;
  }
  EXPECT_EQ(udp, 3u);
  EXPECT_EQ(tcp, 1u);
  for (uint16_t id = 1; id <= 4; ++id) {  // a connection each: all on the one TCP socket
    const net::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    // Any query gets an answer: SERVFAIL, as nothing listens on the upstream port 9.
    uint8_t frame[514];
    const size_t len =
        dns::buildQuery(id, *dns::Name::fromString("a.example."), dns::type::A, dns::cls::IN, 0,
                        false, 0, false, dns::MutableBytes(frame + 2, sizeof(frame) - 2));
    ASSERT_GT(len, 0u);
    dns::store16(frame, static_cast<uint16_t>(len));
    ASSERT_EQ(::send(fd.get(), frame, len + 2, MSG_NOSIGNAL), static_cast<ssize_t>(len + 2));
    pollfd p{fd.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 20000), 1);  // bound only; answered at once
    uint8_t answer[512];
    const ssize_t n = ::read(fd.get(), answer, sizeof(answer));
    ASSERT_GE(n, 14);
    EXPECT_EQ(dns::load16(answer + 2), id);
    EXPECT_NE(answer[4] & 0x80, 0) << "QR";
  }
  s.server.stop();
}

TEST(ServerLoad, FailedBindClosesWhatTheLoadBoundAndChangesNothing) {
  const uint16_t good = test::freePort();
  uint16_t taken = test::freePort();
  while (taken == good) taken = test::freePort();
  net::Fd blocker = holdTcpPort(taken);

  test::ServerWithMetrics s(2);
  Server& server = s.server;
  // Listeners bind in order of first appearance: `good` (2 UDP + 2 TCP sockets) binds, then
  // `taken` binds its 2 UDP sockets and fails on TCP.
  const auto plan =
      plan::buildPlan(config::parseCorefile(block(good) + block(taken), "test"), 2, &s.metrics);

  const size_t before = test::openFdCount();
  EXPECT_THROW(server.load(plan), std::runtime_error);
  EXPECT_EQ(test::openFdCount(), before);
  EXPECT_EQ(server.plan(), nullptr);
  EXPECT_TRUE(server.listeningSockets().empty());

  // With the port free the same plan loads: every listener, both workers, UDP and TCP.
  blocker.reset();
  server.load(plan);
  EXPECT_EQ(server.plan(), plan);
  EXPECT_EQ(server.listeningSockets().size(), 8u);
  server.stop();
}

}  // namespace
}  // namespace nld::server
