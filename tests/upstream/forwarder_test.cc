// Forwarder transport behaviour against scripted responders on 127.0.0.1 (real sockets, real
// EventLoop): UDP/TCP exchange, reply validation, TC fallback, pipelining, timeouts, bounds.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "net/fd.h"
#include "upstream/harness.h"
#include "upstream/responder.h"

namespace nld::upstream::testing {
namespace {

using std::chrono::milliseconds;
using Status = Result::Status;

TEST(Forwarder, UdpAnswerWithOwnOptAndClientCase) {
  Responder r(7);
  Harness h(settingsFor({r.port()}));
  ClientQuery q;
  q.name = "WwW.ExAmple.ORG";
  q.dnssec_ok = true;
  q.cd = true;
  Outcome o = h.resolveOne(q);
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.upstream, 0);
  EXPECT_EQ(o.answer_tag, 7);
  EXPECT_FALSE(o.synchronous);
  auto seen = r.queries();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_FALSE(seen[0].tcp);
  EXPECT_EQ(seen[0].qname, "WwW.ExAmple.ORG");  // QNAME bytes as the client sent them
  EXPECT_NE(seen[0].id, 0x1000);                // never the client's ID
  EXPECT_TRUE(seen[0].flags & dns::flag::RD);
  EXPECT_TRUE(seen[0].flags & dns::flag::CD);
  EXPECT_EQ(seen[0].arcount, 1);  // our OPT
  dns::Query parsed;
  ASSERT_EQ(dns::parseQuery(seen[0].raw, parsed), dns::QueryStatus::kOk);
  EXPECT_TRUE(parsed.edns.present);
  EXPECT_EQ(parsed.edns.udp_size, dns::kOurUdpSize);  // ours, not the client's 4096
  EXPECT_TRUE(parsed.edns.dnssec_ok);
  EXPECT_EQ(h.obs.exchanges.load(), 1);
  EXPECT_EQ(h.inflight(), 0u);
}

TEST(Forwarder, ClientWithoutEdnsStillGetsOurOptUpstreamWithoutDo) {
  Responder r;
  Harness h(settingsFor({r.port()}));
  ClientQuery q;
  q.edns = false;
  ASSERT_EQ(h.resolveOne(q).status, Status::kOk);
  dns::Query parsed;
  ASSERT_EQ(dns::parseQuery(r.queries().at(0).raw, parsed), dns::QueryStatus::kOk);
  EXPECT_TRUE(parsed.edns.present);
  EXPECT_FALSE(parsed.edns.dnssec_ok);
}

TEST(Forwarder, StrayUdpPacketsAreIgnoredAndTheRealAnswerAccepted) {
  Responder r(3);
  r.setMode(Mode::kWrongIdFirst);
  Harness h(settingsFor({r.port()}));
  Outcome o = h.resolveOne({});
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.answer_tag, 3);
  EXPECT_EQ(o.reply_qname, "www.example.org.");
  EXPECT_GE(h.stats().stray_replies, 3u);
  EXPECT_EQ(h.stats().attempts, 1u);
  EXPECT_EQ(h.shared->failures(0), 0u);
}

TEST(Forwarder, UdpWrongQuestionIsNotAcceptedAndTimesOut) {
  Responder r;
  r.setMode(Mode::kWrongQuestion);
  Settings s = settingsFor({r.port()});
  s.attempt_timeout = milliseconds(150);
  s.overall_timeout = milliseconds(300);  // the last attempt waits for the rest of the budget
  s.max_fails = 0;
  Harness h(s);
  Outcome o = h.resolveOne({});
  EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_EQ(r.count(), 2u);  // default cap: 2 attempts per upstream
  EXPECT_GE(o.elapsed, milliseconds(250));
}

TEST(Forwarder, TcpWrongQuestionIsFormErr) {
  Responder r;
  r.setMode(Mode::kWrongQuestion);
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  Harness h(s);
  Outcome o = h.resolveOne({});
  EXPECT_EQ(o.status, Status::kFormErr);
  EXPECT_EQ(r.count(), 1u);
}

TEST(Forwarder, TruncatedUdpReplyIsRetriedOverTcp) {
  Responder r(9);
  r.setMode(Mode::kTruncate);
  Harness h(settingsFor({r.port()}));
  Outcome o = h.resolveOne({});
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_FALSE(o.tc);
  EXPECT_EQ(o.answer_tag, 9);
  auto seen = r.queries();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].tcp);
  EXPECT_TRUE(seen[1].tcp);
  EXPECT_NE(seen[0].id, seen[1].id);  // fresh ID per exchange
}

TEST(Forwarder, TransportFollowsClientUnlessForcedOrPreferred) {
  Responder r;
  {
    Harness h(settingsFor({r.port()}));
    ClientQuery q;
    q.tcp = true;
    ASSERT_EQ(h.resolveOne(q).status, Status::kOk);
    q.tcp = false;
    q.name = "udp.example.org";
    ASSERT_EQ(h.resolveOne(q).status, Status::kOk);
  }
  {
    Settings s = settingsFor({r.port()});
    s.prefer_udp = true;
    Harness h(s);
    ClientQuery q;
    q.tcp = true;
    q.name = "prefer.example.org";
    ASSERT_EQ(h.resolveOne(q).status, Status::kOk);
  }
  {
    Settings s = settingsFor({r.port()});
    s.force_tcp = true;
    s.prefer_udp = true;  // force_tcp wins
    Harness h(s);
    ClientQuery q;
    q.name = "force.example.org";
    ASSERT_EQ(h.resolveOne(q).status, Status::kOk);
  }
  auto seen = r.queries();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_TRUE(seen[0].tcp);
  EXPECT_FALSE(seen[1].tcp);
  EXPECT_FALSE(seen[2].tcp);
  EXPECT_TRUE(seen[3].tcp);
}

TEST(Forwarder, ForceTcpPipelinesOnOneConnectionAndMatchesOutOfOrderReplies) {
  Responder r;
  constexpr size_t kN = 12;
  r.setHoldTcp(kN);  // replies only once all 12 are queued, then in reverse order
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  Harness h(s);
  std::vector<ClientQuery> qs(kN);
  for (size_t i = 0; i < kN; ++i) qs[i].name = "q" + std::to_string(i) + ".example.org";
  auto out = h.resolveAll(qs);
  for (size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(out[i].status, Status::kOk) << i;
    EXPECT_EQ(out[i].reply_qname, qs[i].name + ".");
  }
  EXPECT_EQ(r.tcpAccepts(), 1u);
  for (const auto& q : r.queries()) EXPECT_EQ(q.conn, 0);
  // Second round reuses the same connection.
  r.setHoldTcp(0);
  ClientQuery again;
  again.name = "again.example.org";
  ASSERT_EQ(h.resolveOne(again).status, Status::kOk);
  EXPECT_EQ(r.tcpAccepts(), 1u);
  EXPECT_GE(h.obs.tcp_hits.load(), 1);
  EXPECT_EQ(h.obs.tcp_misses.load(), 1);
}

TEST(Forwarder, MoreThanOneConnectionsWorthOfPipelinedQueriesOpensASecondConnection) {
  Responder r;
  constexpr size_t kN = kMaxPipelined + 6;
  r.setHoldTcp(kN);
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  Harness h(s);
  std::vector<ClientQuery> qs(kN);
  for (size_t i = 0; i < kN; ++i) qs[i].name = "m" + std::to_string(i) + ".example.org";
  auto out = h.resolveAll(qs);
  for (size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(out[i].status, Status::kOk) << i;
    EXPECT_EQ(out[i].reply_qname, qs[i].name + ".");
  }
  EXPECT_EQ(r.tcpAccepts(), 2u);
  size_t on_first = 0;
  for (const auto& q : r.queries()) on_first += q.conn == 0;
  EXPECT_EQ(on_first, kMaxPipelined);
}

TEST(Forwarder, TcpTimeoutRetiresTheConnection) {
  Responder r;
  r.setMode(Mode::kDrop);
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  s.max_fails = 0;
  s.max_connect_attempts = 1;
  s.attempt_timeout = milliseconds(100);
  s.overall_timeout = milliseconds(100);  // a last attempt waits for the whole budget
  Harness h(s);
  EXPECT_EQ(h.resolveOne({}).status, Status::kServFail);
  EXPECT_TRUE(eventually([&] { return r.tcpPeerCloses() == 1; }, milliseconds(2000)));
  r.setMode(Mode::kAnswer);
  ClientQuery q;
  q.name = "fresh.example.org";
  EXPECT_EQ(h.resolveOne(q).status, Status::kOk);
  EXPECT_EQ(r.tcpAccepts(), 2u);
}

TEST(Forwarder, TcpRepliesArrivingByteByByteAreReassembled) {
  Responder r(4);
  r.setSplitTcp(true);
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  Harness h(s);
  auto out = h.resolveAll({ClientQuery{"a.example.org"}, ClientQuery{"b.example.org"}});
  ASSERT_EQ(out[0].status, Status::kOk);
  ASSERT_EQ(out[1].status, Status::kOk);
  EXPECT_EQ(out[0].reply_qname, "a.example.org.");
  EXPECT_EQ(out[1].reply_qname, "b.example.org.");
  EXPECT_EQ(out[0].answer_tag, 4);
}

TEST(Forwarder, IdleTcpConnectionIsClosedAfterExpire) {
  Responder r;
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  s.expire = std::chrono::seconds(1);
  Harness h(s);
  ASSERT_EQ(h.resolveOne({}).status, Status::kOk);
  EXPECT_EQ(r.tcpPeerCloses(), 0u);
  EXPECT_TRUE(eventually([&] { return r.tcpPeerCloses() == 1; }, milliseconds(3000)));
  ClientQuery q;
  q.name = "after-expire.example.org";
  ASSERT_EQ(h.resolveOne(q).status, Status::kOk);
  EXPECT_EQ(r.tcpAccepts(), 2u);
  EXPECT_EQ(h.shared->failures(0), 0u);
}

TEST(Forwarder, ReusedConnectionClosedByPeerIsRetriedOnceWithoutFailure) {
  Responder r;
  r.setMode(Mode::kCloseSecondOnConn);
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  Harness h(s);
  ClientQuery q1;
  q1.name = "one.example.org";
  ASSERT_EQ(h.resolveOne(q1).status, Status::kOk);
  ClientQuery q2;
  q2.name = "two.example.org";
  Outcome o = h.resolveOne(q2);
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.reply_qname, "two.example.org.");
  EXPECT_EQ(r.tcpAccepts(), 2u);
  EXPECT_EQ(h.shared->failures(0), 0u);
  EXPECT_EQ(h.stats().attempts, 3u);
}

TEST(Forwarder, ClosedUdpPortFailsFastWithBoundedAttempts) {
  Settings s = settingsFor({closedPort(), closedPort()});
  s.max_fails = 0;
  Harness h(s);
  Outcome o = h.resolveOne({});
  EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_LT(o.elapsed, milliseconds(1000));  // ICMP unreachable, no timeouts needed
  EXPECT_EQ(h.stats().attempts, 4u);         // cap = 2 × upstreams
}

TEST(Forwarder, ClosedTcpPortDoesNotSpin) {
  Settings s = settingsFor({closedPort()});
  s.force_tcp = true;
  s.max_fails = 0;
  Harness h(s);
  Outcome o = h.resolveOne({});
  EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_LT(o.elapsed, milliseconds(1000));
  EXPECT_EQ(h.stats().attempts, 2u);
}

TEST(Forwarder, TcpPeerClosingEveryConnectionIsBoundedAtTheResponder) {
  Responder r;
  r.setMode(Mode::kCloseTcp);
  Settings s = settingsFor({r.port()});
  s.force_tcp = true;
  s.max_fails = 0;  // no health probes hitting the responder
  Harness h(s);
  Outcome o = h.resolveOne({});
  EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_LT(o.elapsed, milliseconds(1000));
  EXPECT_EQ(r.count(), 2u);
  EXPECT_EQ(r.tcpAccepts(), 2u);
}

TEST(Forwarder, ConcurrentAttemptTimeoutsFireTogetherAndRetryElsewhere) {
  Responder silent, good(2);
  silent.setMode(Mode::kDrop);
  Settings s = settingsFor({silent.port(), good.port()});
  s.policy = Settings::Policy::kSequential;
  s.attempt_timeout = milliseconds(200);
  s.max_fails = 0;
  Harness h(s);
  std::vector<ClientQuery> qs(10);
  for (size_t i = 0; i < qs.size(); ++i) qs[i].name = "t" + std::to_string(i) + ".example.org";
  const auto start = std::chrono::steady_clock::now();
  for (const auto& o : h.resolveAll(qs)) {
    EXPECT_EQ(o.status, Status::kOk);
    EXPECT_EQ(o.upstream, 1);
    EXPECT_GE(o.elapsed, milliseconds(190));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1500));
  EXPECT_EQ(h.stats().attempts, 20u);
  EXPECT_EQ(silent.count(), 10u);
  EXPECT_EQ(good.count(), 10u);
  EXPECT_EQ(h.inflight(), 0u);
}

TEST(Forwarder, AttemptsUseFreshIdsAndSourcePorts) {
  Responder r;
  r.setMode(Mode::kDrop);
  Settings s = settingsFor({r.port()});
  s.max_connect_attempts = 6;
  s.attempt_timeout = milliseconds(30);
  s.overall_timeout = milliseconds(180);  // the sixth attempt waits for the rest of it
  s.max_fails = 0;
  Harness h(s);
  EXPECT_EQ(h.resolveOne({}).status, Status::kServFail);
  auto seen = r.queries();
  ASSERT_EQ(seen.size(), 6u);
  std::set<uint16_t> ids, ports;
  for (const auto& q : seen) {
    ids.insert(q.id);
    ports.insert(q.src_port);
  }
  // Random 16-bit values: allow one accidental collision.
  EXPECT_GE(ids.size(), 5u);
  EXPECT_GE(ports.size(), 5u);
}

TEST(Forwarder, UdpQueriesShareAPooledSocketWithDistinctIds) {
  Responder r;
  Harness h(settingsFor({r.port()}));
  std::vector<ClientQuery> qs(8);
  for (size_t i = 0; i < qs.size(); ++i) qs[i].name = "p" + std::to_string(i) + ".example.org";
  for (const auto& o : h.resolveAll(qs)) ASSERT_EQ(o.status, Status::kOk);
  std::set<uint16_t> ports, ids;
  for (const auto& q : r.queries()) {
    ports.insert(q.src_port);
    ids.insert(q.id);
  }
  EXPECT_EQ(ports.size(), 1u);  // one socket, well under udp_queries_per_socket
  EXPECT_EQ(ids.size(), 8u);    // IDs are unique among a socket's outstanding queries
  EXPECT_EQ(h.stats().udp_sockets_opened, 1u);
  EXPECT_EQ(h.obs.udp_misses.load(), 1);  // conn cache: one new socket, then reuse
  EXPECT_EQ(h.obs.udp_hits.load(), 7);
}

TEST(Forwarder, SourcePortRotatesAfterTheQueryBoundAndSpentSocketsClose) {
  Responder r;
  Settings s = settingsFor({r.port()});
  s.udp_queries_per_socket = 4;
  Harness h(s);
  std::vector<ClientQuery> qs(10);
  for (size_t i = 0; i < qs.size(); ++i) qs[i].name = "r" + std::to_string(i) + ".example.org";
  for (const auto& o : h.resolveAll(qs)) ASSERT_EQ(o.status, Status::kOk);
  std::set<uint16_t> ports;
  for (const auto& q : r.queries()) ports.insert(q.src_port);
  EXPECT_EQ(ports.size(), 3u);  // 4 + 4 + 2
  EXPECT_EQ(h.stats().udp_sockets_opened, 3u);
  size_t open = 0;
  h.onLoop([&] { open = h.fwd->udpSocketsOpen(); });
  EXPECT_EQ(open, 1u);  // the two full sockets closed with their last reply; one takes queries
}

TEST(Forwarder, IcmpErrorOnASharedSocketFailsEveryQueryOnItQuickly) {
  Settings s = settingsFor({closedPort()});
  s.max_fails = 0;
  Harness h(s);
  std::vector<ClientQuery> qs(6);
  for (size_t i = 0; i < qs.size(); ++i) qs[i].name = "c" + std::to_string(i) + ".example.org";
  const auto start = std::chrono::steady_clock::now();
  for (const auto& o : h.resolveAll(qs)) EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  size_t open = 1;
  h.onLoop([&] { open = h.fwd->udpSocketsOpen(); });
  EXPECT_EQ(open, 0u);  // every socket that saw the error was retired and closed
}

TEST(Forwarder, ShutdownFailsPendingQueriesAndLaterOnes) {
  Responder r;
  r.setMode(Mode::kDrop);
  Harness h(settingsFor({r.port()}));
  struct Got {
    std::atomic<int> n{0};
    std::atomic<int> servfail{0};
  } got;
  h.onLoop([&] {
    auto name = dns::Name::fromString("x.example.org");
    std::vector<uint8_t> pkt(512);
    pkt.resize(
        dns::buildQuery(1, *name, dns::type::A, dns::cls::IN, dns::flag::RD, false, 0, false, pkt));
    dns::Query q;
    ASSERT_EQ(dns::parseQuery(pkt, q), dns::QueryStatus::kOk);
    h.fwd->resolve(pkt, q, false, [&](const Result& res) {
      ++got.n;
      if (res.status == Status::kServFail) ++got.servfail;
    });
  });
  ASSERT_TRUE(r.waitForQueries(1, milliseconds(2000)));
  EXPECT_EQ(h.inflight(), 1u);
  h.onLoop([&] { h.fwd->shutdown(); });
  EXPECT_EQ(got.n.load(), 1);
  EXPECT_EQ(got.servfail.load(), 1);
  Outcome o = h.resolveOne({});
  EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_TRUE(o.synchronous);
}

TEST(Forwarder, BadSettingsThrowAtConfigTime) {
  Settings empty;
  EXPECT_THROW(makeSharedState(empty), std::invalid_argument);
  Settings bad = settingsFor({53});
  bad.to[0].ip = "not-an-ip";
  EXPECT_THROW(makeSharedState(bad), std::invalid_argument);
  Settings v6 = settingsFor({53});
  v6.to[0].ip = "::1";
  v6.max_fails = 0;
  auto st = makeSharedState(v6);
  EXPECT_EQ(st->addr(0).af(), AF_INET6);
  EXPECT_EQ(st->maxAttempts(), 2u);
}

TEST(Forwarder, ZonedIpv6UpstreamGetsItsScope) {
  // The Corefile parser keeps a %zone on a forward address (link-local upstreams); the upstream
  // address is parsed by net::parseSockAddr, which turns the interface name into the scope id.
  Settings zoned = settingsFor({53});
  zoned.to[0].ip = "fe80::1%lo";
  zoned.max_fails = 0;
  auto st = makeSharedState(zoned);
  ASSERT_EQ(st->addr(0).af(), AF_INET6);
  EXPECT_NE(reinterpret_cast<const sockaddr_in6*>(&st->addr(0).storage)->sin6_scope_id, 0u);
  EXPECT_EQ(st->addr(0).port(), 53);
}

TEST(Forwarder, Ipv6UpstreamOverLoopback) {
  // An IPv6 UDP responder on [::1] (skipped when the host has no IPv6 loopback).
  net::Fd owned(::socket(AF_INET6, SOCK_DGRAM, 0));
  const int fd = owned.get();
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (!owned || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    GTEST_SKIP() << "no IPv6 loopback";
  }
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::thread server([fd] {
    uint8_t buf[512];
    sockaddr_in6 from{};
    socklen_t flen = sizeof(from);
    ssize_t n = ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 12) return;
    // Echo the query back as a reply: QR=1, drop the OPT (ARCOUNT 0, cut after the question).
    size_t pos = 12;
    while (pos < static_cast<size_t>(n) && buf[pos] != 0) pos += 1 + buf[pos];
    pos += 5;
    buf[2] |= 0x80;
    buf[10] = buf[11] = 0;
    ::sendto(fd, buf, pos, 0, reinterpret_cast<sockaddr*>(&from), flen);
  });
  Settings s;
  s.to.push_back({"::1", ntohs(a.sin6_port), "[::1]"});
  s.max_fails = 0;
  {
    Harness h(s);
    Outcome o = h.resolveOne({});
    EXPECT_EQ(o.status, Status::kOk);
    EXPECT_EQ(o.reply_qname, "www.example.org.");
  }
  server.join();
}

}  // namespace
}  // namespace nld::upstream::testing
