// The TCP front end on real loopback sockets, a real pipeline and a real (scripted) upstream:
// drain() for handover, eviction of the idlest connection when the table is full, buffers held
// only while a frame is incomplete, the per-frame deadline against trickling clients, and the
// accept() back-off when the process runs out of descriptors.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/corefile.h"
#include "dns/message.h"
#include "net/fd.h"
#include "net/socket.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/tcp_handler.h"
#include "server/udp_handler.h"
#include "support/eventually.h"
#include "upstream/responder.h"

namespace nld::server {
namespace {

using namespace std::chrono_literals;

class TcpListenerTest : public ::testing::Test {
 protected:
  void start(TcpLimits limits) {
    const std::string text =
        "example.test:53 {\n  forward . 127.0.0.1:" + std::to_string(up_.port()) + "\n}\n";
    plan_ = plan::buildPlan(config::parseCorefile(text, "test"), 1, &metrics_);
    pipeline_.setPlan(plan_);
    net::Fd listening = net::listenTcp("127.0.0.1", 0);
    lfd_ = listening.get();  // borrowed: the listener owns it
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    ASSERT_EQ(::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    listener_ =
        std::make_unique<TcpListener>(loop_, pipeline_, std::move(listening), limits, &metrics_);
    listener_->start();
    thread_ = std::thread([this] { loop_.run(); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      onLoop([this] {
        udp_.reset();
        listener_->stop();
        pipeline_.shutdown();
      });
      loop_.stop();
      thread_.join();
    }
    listener_.reset();
    clients_.clear();
  }

  /// Runs fn on the loop thread and returns its result (bounded wait).
  template <typename F>
  auto onLoop(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto prom = std::make_shared<std::promise<R>>();
    auto fut = prom->get_future();
    loop_.post([prom, fn]() mutable {
      if constexpr (std::is_void_v<R>) {
        fn();
        prom->set_value();
      } else {
        prom->set_value(fn());
      }
    });
    EXPECT_EQ(fut.wait_for(5s), std::future_status::ready) << "loop thread did not answer";
    return fut.get();
  }

  /// Polls `pred` on the loop thread until it holds (at most 5 s).
  bool eventually(const std::function<bool()>& pred) {
    return test::eventually([&] { return onLoop(pred); });
  }

  uint64_t counter(const std::string& name) {
    return metrics_.registry().counter(name, "").with().value();
  }

  int newSocket() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    clients_.emplace_back(fd);
    return fd;
  }
  bool connectTo(int fd) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  int client() {
    int fd = newSocket();
    EXPECT_TRUE(connectTo(fd)) << std::strerror(errno);
    return fd;
  }

  static std::vector<uint8_t> queryFrame(uint16_t id, const std::string& name) {
    uint8_t buf[512];
    auto n = dns::Name::fromString(name);
    size_t len = dns::buildQuery(id, *n, dns::type::A, dns::cls::IN, dns::flag::RD, false, 0, false,
                                 dns::MutableBytes(buf, sizeof(buf)));
    std::vector<uint8_t> f(2 + len);
    dns::store16(f.data(), uint16_t(len));
    std::memcpy(f.data() + 2, buf, len);
    return f;
  }
  static void sendAll(int fd, const std::vector<uint8_t>& b, size_t from = 0,
                      size_t to = size_t(-1)) {
    to = std::min(to, b.size());
    ASSERT_EQ(::send(fd, b.data() + from, to - from, MSG_NOSIGNAL), ssize_t(to - from));
  }
  static bool recvExact(int fd, uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= size_t(r);
    }
    return true;
  }
  /// One answer (the DNS message), or empty on EOF / error / 5 s timeout.
  static std::vector<uint8_t> readAnswer(int fd) {
    uint8_t lb[2];
    if (!recvExact(fd, lb, 2)) return {};
    std::vector<uint8_t> m(dns::load16(lb));
    if (!recvExact(fd, m.data(), m.size())) return {};
    return m;
  }
  /// True if the server closed the connection (EOF or reset) within 5 s.
  static bool closedByServer(int fd) {
    uint8_t b;
    ssize_t r = ::recv(fd, &b, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }

  upstream::testing::Responder up_;
  observability::Registry registry_;
  observability::CorednsMetrics catalogue_{registry_};
  ServerMetrics metrics_{catalogue_, 1};
  std::shared_ptr<const Plan> plan_;
  net::EventLoop loop_;
  Pipeline pipeline_{loop_, metrics_, 0};
  int lfd_ = -1;
  uint16_t port_ = 0;
  std::unique_ptr<TcpListener> listener_;
  std::unique_ptr<UdpHandler> udp_;
  std::thread thread_;
  std::vector<net::Fd> clients_;  ///< the test's client sockets (borrowed as ints)
};

TEST_F(TcpListenerTest, DrainAnswersEveryPipelinedQueryThenClosesKeepingTheSocket) {
  up_.setDelay(300ms);  // the queries are still at the upstream when drain() is called
  start({});
  const int c1 = client();
  std::vector<uint8_t> wire;
  std::set<uint16_t> ids;
  for (uint16_t i = 0; i < 5; ++i) {
    auto f = queryFrame(uint16_t(100 + i), "q" + std::to_string(i) + ".example.test.");
    wire.insert(wire.end(), f.begin(), f.end());
    ids.insert(uint16_t(100 + i));
  }
  sendAll(c1, wire);  // five pipelined queries in one segment
  const int c2 = client();
  const auto partial = queryFrame(200, "partial.example.test.");
  sendAll(c2, partial, 0, 7);  // an incomplete frame is buffered when drain() comes
  ASSERT_TRUE(up_.waitForQueries(5, 5s));
  ASSERT_TRUE(eventually([this] { return listener_->connections() == 2; }));

  std::atomic<bool> cb{false};
  onLoop([&] { listener_->drain([&] { cb = true; }); });
  EXPECT_FALSE(onLoop([this] { return listener_->drained(); }));
  EXPECT_FALSE(onLoop([this] { return listener_->accepting(); }));

  for (int i = 0; i < 5; ++i) {
    auto a = readAnswer(c1);
    ASSERT_GE(a.size(), dns::kHeaderSize) << "answer " << i << " lost by the drain";
    const uint16_t id = dns::load16(a.data());
    EXPECT_EQ(ids.erase(id), 1u) << "unexpected or repeated ID " << id;
    EXPECT_EQ(a[3] & 0xf, 0) << "rcode";
  }
  EXPECT_TRUE(closedByServer(c1)) << "an idle drained connection is closed";

  // The incomplete frame is still served: the connection stays until it is idle.
  sendAll(c2, partial, 7);
  auto a = readAnswer(c2);
  ASSERT_GE(a.size(), dns::kHeaderSize);
  EXPECT_EQ(dns::load16(a.data()), 200);
  EXPECT_TRUE(closedByServer(c2));
  EXPECT_TRUE(eventually([this] { return listener_->drained(); }));
  EXPECT_TRUE(eventually([&] { return cb.load(); }));

  // The listening socket is open and still listening: another owner accepts from it.
  EXPECT_NE(::fcntl(lfd_, F_GETFD), -1);
  int acc = 0;
  socklen_t al = sizeof(acc);
  ASSERT_EQ(::getsockopt(lfd_, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
  EXPECT_EQ(acc, 1);
  const int c3 = client();
  (void)c3;
  pollfd p{lfd_, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  const net::Fd taken(::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  EXPECT_TRUE(taken) << "the drained listener must leave new connections to the new owner";
  EXPECT_EQ(onLoop([this] { return listener_->connections(); }), 0u);
}

TEST_F(TcpListenerTest, FullTableEvictsTheLongestQuiescentConnection) {
  TcpLimits limits;
  limits.max_connections = 2;
  start(limits);
  const int a = client();
  ASSERT_TRUE(eventually([this] { return listener_->connections() == 1; }));
  const int b = client();
  ASSERT_TRUE(eventually([this] { return listener_->connections() == 2; }));
  // a answers a query after b connected: b is now the one quiescent longest.
  sendAll(a, queryFrame(1, "x.other."));  // outside every zone: REFUSED at once
  ASSERT_FALSE(readAnswer(a).empty());

  const int c = client();
  sendAll(c, queryFrame(2, "y.other."));
  auto ans = readAnswer(c);
  ASSERT_FALSE(ans.empty()) << "a fresh client must get in while the table is full";
  EXPECT_EQ(dns::load16(ans.data()), 2);
  EXPECT_TRUE(closedByServer(b)) << "the idlest connection is evicted";
  sendAll(a, queryFrame(3, "z.other."));
  EXPECT_FALSE(readAnswer(a).empty()) << "a more recently active connection stays";
  EXPECT_EQ(counter("nodelocaldns_tcp_connections_evicted_total"), 1u);
  EXPECT_EQ(counter("nodelocaldns_tcp_connections_refused_total"), 0u);
}

TEST_F(TcpListenerTest, FullTableOfBusyConnectionsRefusesTheNewOne) {
  up_.setDelay(500ms);
  TcpLimits limits;
  limits.max_connections = 1;
  start(limits);
  const int a = client();
  sendAll(a, queryFrame(7, "slow.example.test."));
  ASSERT_TRUE(up_.waitForQueries(1, 5s));
  const int c = client();
  EXPECT_TRUE(closedByServer(c)) << "no quiescent connection to evict: the new one is refused";
  auto ans = readAnswer(a);
  ASSERT_FALSE(ans.empty()) << "the busy connection is not evicted";
  EXPECT_EQ(dns::load16(ans.data()), 7);
  EXPECT_EQ(counter("nodelocaldns_tcp_connections_refused_total"), 1u);
  EXPECT_EQ(counter("nodelocaldns_tcp_connections_evicted_total"), 0u);
}

TEST_F(TcpListenerTest, BuffersAreHeldOnlyForAnIncompleteFrame) {
  start({});
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i) idle.push_back(client());
  ASSERT_TRUE(eventually([this] { return listener_->connections() == 50; }));
  EXPECT_EQ(onLoop([this] { return listener_->bufferedBytes(); }), 0u)
      << "idle connections hold no buffer";

  const auto f = queryFrame(9, "w.other.");
  sendAll(idle[0], f, 0, 10);
  EXPECT_TRUE(eventually([&] { return listener_->bufferedBytes() == f.size(); }))
      << "a partial frame gets a buffer of exactly its size";
  sendAll(idle[0], f, 10);
  EXPECT_FALSE(readAnswer(idle[0]).empty());
  EXPECT_TRUE(eventually([this] { return listener_->bufferedBytes() == 0; }))
      << "buffers are released once the frame is handled and the answer written";
}

TEST_F(TcpListenerTest, TricklingClientIsClosedByTheFrameDeadline) {
  TcpLimits limits;
  limits.first_read = 60s;  // only the frame deadline can close it during the test
  limits.idle = 60s;
  limits.frame = 300ms;
  start(limits);
  const int c = client();
  const uint8_t header[2] = {0xff, 0xff};  // a 65535-byte frame: never complete here
  ASSERT_EQ(::send(c, header, 2, MSG_NOSIGNAL), 2);
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {  // one byte every 50 ms, 5 s at most
    const uint8_t b = 0;
    if (::send(c, &b, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    pollfd p{c, POLLIN, 0};
    if (::poll(&p, 1, 50) == 1) closed = closedByServer(c);
  }
  EXPECT_TRUE(closed) << "each byte must not extend the deadline of the frame";
  EXPECT_TRUE(eventually([this] { return listener_->connections() == 0; }));
}

// Lowers the soft RLIMIT_NOFILE to the descriptors in use and fills every free slot below it,
// so the next descriptor any thread of the process asks for fails with EMFILE.
class FdExhaustion {
 public:
  FdExhaustion() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int highest = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (dirent* e = ::readdir(d)) highest = std::max(highest, std::atoi(e->d_name));
      ::closedir(d);
    }
    rlimit low = saved_;
    low.rlim_cur = rlim_t(highest) + 1;
    ::setrlimit(RLIMIT_NOFILE, &low);
    for (;;) {
      int fd = ::dup(2);
      if (fd < 0) break;
      fillers_.emplace_back(fd);
    }
  }
  ~FdExhaustion() { release(); }
  void release() {
    fillers_.clear();  // closes them
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<net::Fd> fillers_;
};

TEST_F(TcpListenerTest, OutOfDescriptorsEvictsAnIdleConnectionToAccept) {
#if defined(__SANITIZE_ADDRESS__)
  // As below: UBSan's vptr check probes memory through a pipe(), which fails with every
  // descriptor taken, and then reports a false "invalid vptr". The regular build runs it.
  GTEST_SKIP() << "needs free descriptors under the sanitizers";
#endif
  start({});
  const int idle = client();
  ASSERT_TRUE(eventually([this] { return listener_->connections() == 1; }));
  const int fresh = newSocket();  // created now: connect() needs no new descriptor
  FdExhaustion full;
  ASSERT_TRUE(connectTo(fresh));
  sendAll(fresh, queryFrame(11, "v.other."));
  auto ans = readAnswer(fresh);
  ASSERT_FALSE(ans.empty()) << "the idle connection's descriptor should have been reused; evicted "
                            << counter("nodelocaldns_tcp_connections_evicted_total") << " paused "
                            << counter("nodelocaldns_tcp_accept_paused_total") << " errno "
                            << errno;
  EXPECT_EQ(dns::load16(ans.data()), 11);
  EXPECT_TRUE(closedByServer(idle));
  EXPECT_EQ(counter("nodelocaldns_tcp_connections_evicted_total"), 1u);
  EXPECT_EQ(counter("nodelocaldns_tcp_accept_paused_total"), 0u);
}

TEST_F(TcpListenerTest, OutOfDescriptorsBacksOffInsteadOfSpinningAndRecovers) {
#if defined(__SANITIZE_ADDRESS__)
  // The back-off logs a warning; UBSan's vptr check inside fmt probes memory through a pipe(),
  // which fails with every descriptor taken, and then reports a false "invalid vptr".
  GTEST_SKIP() << "needs free descriptors under the sanitizers";
#endif
  TcpLimits limits;
  limits.accept_backoff = 1000ms;
  start(limits);
  const int c = newSocket();
  auto full = std::make_unique<FdExhaustion>();
  ASSERT_TRUE(connectTo(c));  // completed by the kernel; accept() fails with EMFILE
  ASSERT_TRUE(eventually([this] {
    return metrics_.registry().counter("nodelocaldns_tcp_accept_paused_total", "").with().value() >
           0;
  }));
  // Level-triggered epoll would report the pending connection again at once: the listener must
  // have left epoll instead of retrying in a loop.
  EXPECT_FALSE(onLoop([this] { return listener_->accepting(); }));
  EXPECT_EQ(onLoop([this] { return listener_->connections(); }), 0u);
  full.reset();  // descriptors are back
  ASSERT_TRUE(eventually([this] { return listener_->connections() == 1; }))
      << "the listener must come back after the back-off";
  EXPECT_TRUE(onLoop([this] { return listener_->accepting(); }));
  sendAll(c, queryFrame(12, "u.other."));
  EXPECT_FALSE(readAnswer(c).empty());
}

TEST_F(TcpListenerTest, UdpPauseReadingStillAnswersQueriesInFlight) {
  up_.setDelay(300ms);
  start({});
  net::Fd udp_fd = net::bindUdp("127.0.0.1", 0, 1 << 20, 1 << 20);
  const int ufd = udp_fd.get();  // borrowed: the handler owns it
  sockaddr_in ua{};
  socklen_t ul = sizeof(ua);
  ASSERT_EQ(::getsockname(ufd, reinterpret_cast<sockaddr*>(&ua), &ul), 0);
  onLoop([&] {
    udp_ = std::make_unique<UdpHandler>(loop_, pipeline_, std::move(udp_fd), false);
    udp_->start();
  });
  const int c = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  clients_.emplace_back(c);
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&ua), sizeof(ua)), 0);
  const auto q1 = queryFrame(31, "inflight.example.test.");
  ASSERT_GT(::send(c, q1.data() + 2, q1.size() - 2, 0), 0);
  ASSERT_TRUE(up_.waitForQueries(1, 5s));

  onLoop([&] {
    udp_->pauseReading();
    udp_->start();  // a reload re-applying the plan must not undo the pause
  });
  EXPECT_TRUE(onLoop([&] { return udp_->readingPaused(); }));
  uint8_t buf[4096];
  ssize_t n = ::recv(c, buf, sizeof(buf), 0);
  ASSERT_GE(n, ssize_t(dns::kHeaderSize)) << "the answer to the query in flight was lost";
  EXPECT_EQ(dns::load16(buf), 31);

  // A query sent now stays in the socket for its next owner (read here, as the new process).
  const auto q2 = queryFrame(32, "later.example.test.");
  ASSERT_GT(::send(c, q2.data() + 2, q2.size() - 2, 0), 0);
  pollfd p{ufd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  n = ::recv(ufd, buf, sizeof(buf), MSG_DONTWAIT);
  ASSERT_EQ(n, ssize_t(q2.size() - 2)) << "the paused handler must not read the socket";
  EXPECT_EQ(dns::load16(buf), 32);
}

}  // namespace
}  // namespace nld::server
