// The cache-hit path of the server pipeline (parse → zone → cache → answer → metrics) must not
// allocate: it runs once per query at full rate. A real upstream (a UDP responder thread on
// loopback) fills the cache first; then 1000 hits run with the counting global operator new
// (support/counting_allocator.h). Its counters are per thread, so only the test thread's
// allocations count: the forwarder's health-check thread may allocate at any time and is not part
// of the hit path.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>

#include "config/corefile.h"
#include "dns/message.h"
#include "net/address.h"
#include "net/fd.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "support/counting_allocator.h"
#include "support/packet_builder.h"

namespace nld::server {
namespace {

// Answers every A query with one record, TTL 300.
class Responder {
 public:
  Responder() {
    fd_.reset(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      throw std::runtime_error("responder: bind");
    }
    socklen_t len = sizeof(a);
    EXPECT_EQ(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Responder() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  void run() {
    uint8_t buf[4096];
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      sockaddr_storage from{};
      socklen_t fl = sizeof(from);
      ssize_t n =
          ::recvfrom(fd_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 12) continue;
      dns::Query q;
      if (dns::parseQuery(dns::ByteView(buf, size_t(n)), q) != dns::QueryStatus::kOk) continue;
      // Reply: header + question as sent + one A record pointing at the question name.
      size_t len = q.question.end;
      buf[2] = static_cast<uint8_t>(buf[2] | 0x84);  // QR, AA
      dns::store16(buf + 6, 1);                      // ANCOUNT
      dns::store16(buf + 8, 0);
      dns::store16(buf + 10, 0);
      test::PacketBuilder rr;  // (this thread's allocations are not counted)
      rr.pointer(12).rrBody(dns::type::A, dns::cls::IN, 300, {192, 0, 2, 1});
      std::memcpy(buf + len, rr.bytes().data(), rr.size());
      len += rr.size();
      ::sendto(fd_.get(), buf, len, 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }
  net::Fd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class CollectReply final : public ReplyFactory {
 public:
  explicit CollectReply(net::EventLoop& loop) : loop_(loop) {}
  Reply make() override {
    return [this](dns::ByteView a) {
      answer.assign(a.begin(), a.end());
      loop_.stop();
    };
  }
  std::vector<uint8_t> answer;

 private:
  net::EventLoop& loop_;
};

TEST(HitPath, CacheHitAllocatesNothing) {
  Responder up;
  const std::string text = ".:53 {\n  cache 30\n  prometheus 127.0.0.1:0\n  forward . 127.0.0.1:" +
                           std::to_string(up.port()) + "\n}\n";
  observability::Registry registry;
  observability::CorednsMetrics catalogue(registry);
  ServerMetrics metrics(catalogue, 1);
  auto plan = plan::buildPlan(config::parseCorefile(text, "test"), 1, &metrics);
  net::EventLoop loop;
  Pipeline pipeline(loop, metrics, 0);
  pipeline.setPlan(plan);

  uint8_t query[512];
  auto name = *dns::Name::fromString("Www.Example.ORG.");
  size_t qlen = dns::buildQuery(0x1234, name, dns::type::A, dns::cls::IN, dns::flag::RD, true, 1232,
                                false, dns::MutableBytes(query, sizeof(query)));
  ASSERT_GT(qlen, 0u);
  net::SockAddr peer = net::makeSockAddr("127.0.0.1", 40000);
  std::vector<uint8_t> out(dns::kMaxMessageSize);
  CollectReply replies(loop);

  // Miss: goes to the real upstream; the loop runs until the answer arrives.
  size_t n = pipeline.handle(dns::ByteView(query, qlen), peer, 0, Proto::kUdp,
                             dns::MutableBytes(out), replies);
  ASSERT_EQ(n, Pipeline::kPending);
  loop.addTimer(std::chrono::seconds(5), [&] { loop.stop(); });
  loop.run();
  ASSERT_GE(replies.answer.size(), 12u) << "no answer from the upstream";

  // Warm-up hit (creates metric handles and this thread's shards), then count.
  n = pipeline.handle(dns::ByteView(query, qlen), peer, 0, Proto::kUdp, dns::MutableBytes(out),
                      replies);
  ASSERT_GT(n, 12u);
  ASSERT_NE(n, Pipeline::kPending);
  const uint64_t before = test::threadAllocations();
  size_t answered = 0;
  for (int i = 0; i < 1000; ++i) {
    query[0] = static_cast<uint8_t>(i);  // new ID each time
    n = pipeline.handle(dns::ByteView(query, qlen), peer, 0, Proto::kUdp, dns::MutableBytes(out),
                        replies);
    if (n != 0 && n != Pipeline::kPending && out[0] == query[0]) ++answered;
  }
  const uint64_t allocations = test::threadAllocations() - before;
  EXPECT_EQ(answered, 1000u);
  EXPECT_EQ(allocations, 0u) << "heap allocations on the cache-hit path";
  // The answer is a real hit: AA set by the cache, the client's case restored.
  dns::Header h = dns::Header::read(dns::ByteView(out.data(), n));
  EXPECT_TRUE(h.aa());
  EXPECT_EQ(std::memcmp(out.data() + 12, query + 12, name.len), 0);
  pipeline.shutdown();
}

}  // namespace
}  // namespace nld::server
