// The multi-threaded server end to end, in-process: two workers (each its own event loop thread),
// a real UDP/TCP upstream (tests/upstream Responder, its own thread), TCP clients whose pipelined
// queries are owned by both workers (so half of them are handed over between loops with
// EventLoop::post and answered back), a metrics scrape looping on another thread while the
// workers count, and reloads from a control thread while the queries run. Every query must be
// answered. Its main purpose is the ThreadSanitizer build (scripts/test.sh), which reports any
// unsynchronised access among these threads.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config/corefile.h"
#include "dns/message.h"
#include "net/fd.h"
#include "plan/plan.h"
#include "server/server.h"
#include "support/server_with_metrics.h"
#include "support/udp_peer.h"
#include "upstream/responder.h"

namespace nld::server {
namespace {

std::string corefile(uint16_t port, uint16_t upstream, int cache_seconds) {
  return ".:" + std::to_string(port) + " {\n  bind 127.0.0.1\n  cache " +
         std::to_string(cache_seconds) + "\n  forward . 127.0.0.1:" + std::to_string(upstream) +
         "\n}\n";
}

std::vector<uint8_t> query(uint16_t id, const std::string& name) {
  std::vector<uint8_t> q(512);
  auto n = dns::Name::fromString(name);
  size_t len = dns::buildQuery(id, *n, dns::type::A, dns::cls::IN, dns::flag::RD, false, 0, false,
                               dns::MutableBytes(q.data(), q.size()));
  q.resize(len);
  return q;
}

// Sends `count` pipelined queries on one TCP connection and returns the IDs of the answers.
std::set<uint16_t> tcpPipelined(uint16_t port, int conn, int count) {
  const net::Fd owned(::socket(AF_INET, SOCK_STREAM, 0));
  const int fd = owned.get();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  std::vector<uint8_t> out;
  for (int i = 0; i < count; ++i) {
    auto q = query(static_cast<uint16_t>(i),
                   "n" + std::to_string(i) + ".c" + std::to_string(conn) + ".example.");
    out.push_back(static_cast<uint8_t>(q.size() >> 8));
    out.push_back(static_cast<uint8_t>(q.size()));
    out.insert(out.end(), q.begin(), q.end());
  }
  EXPECT_EQ(::send(fd, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  std::set<uint16_t> ids;
  std::vector<uint8_t> in;
  while (ids.size() < static_cast<size_t>(count)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20000) != 1) break;  // bound only; a healthy run answers at once
    uint8_t buf[8192];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    in.insert(in.end(), buf, buf + n);
    size_t off = 0;
    while (in.size() - off >= 2 && in.size() - off >= 2u + dns::load16(in.data() + off)) {
      const size_t len = dns::load16(in.data() + off);
      if (len >= 12) ids.insert(dns::load16(in.data() + off + 2));
      off += 2 + len;
    }
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(off));
  }
  return ids;
}

TEST(ServerThreads, TwoWorkersHandOffsScrapeAndReloadUnderLoad) {
  upstream::testing::Responder up;
  // A clash with another process between freePort() and the load is possible but not likely,
  // and fails the test loudly, not silently.
  const uint16_t port = test::freePort();
  test::ServerWithMetrics s(2);
  Server& server = s.server;
  server.load(
      plan::buildPlan(config::parseCorefile(corefile(port, up.port(), 30), "test"), 2, &s.metrics));

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!done) {
      EXPECT_FALSE(s.registry.render().empty());
      ++scrapes;
    }
  });
  std::atomic<int> reloads{0};
  std::thread control([&] {
    for (int i = 0; i < 6 && !done; ++i) {
      server.load(plan::buildPlan(config::parseCorefile(corefile(port, up.port(), 30 + i), "test"),
                                  2, &s.metrics));
      ++reloads;
    }
  });

  constexpr int kConns = 4;
  constexpr int kQueries = 60;
  std::vector<std::thread> clients;
  std::vector<std::set<uint16_t>> answered(kConns);
  for (int c = 0; c < kConns; ++c) {
    clients.emplace_back([&, c] { answered[c] = tcpPipelined(port, c, kQueries); });
  }
  for (auto& t : clients) t.join();
  control.join();
  // Once more after the reloads: the cache of the last plan answers or forwards again.
  auto last = tcpPipelined(port, kConns, kQueries);
  done = true;
  scraper.join();

  for (int c = 0; c < kConns; ++c)
    EXPECT_EQ(answered[c].size(), size_t(kQueries)) << "connection " << c;
  EXPECT_EQ(last.size(), size_t(kQueries));
  EXPECT_EQ(reloads.load(), 6);
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_GT(up.count(), 0u);
  server.stop();
  EXPECT_EQ(server.inflight(), 0u);
}

}  // namespace
}  // namespace nld::server
