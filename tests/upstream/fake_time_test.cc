// The forwarder on fake time (net::TimeSource seam): the loop runs on the test thread with
// runOnce(), the upstream is a real socket on loopback, and every timeout, budget and expiry is
// reached by advancing the fake clock, so the assertions are exact (the real-time versions of
// these tests in forwarder_test.cc need tolerance windows and sleeps).
#include "support/fake_time.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "dns/message.h"
#include "net/event_loop.h"
#include "support/eventually.h"
#include "upstream/forwarder.h"
#include "upstream/harness.h"
#include "upstream/responder.h"

namespace nld::upstream::testing {
namespace {

using std::chrono::milliseconds;
using Status = Result::Status;

/// A Forwarder on a loop the test drives, on fake time.
class Driven {
 public:
  explicit Driven(Settings s) {
    shared = makeSharedState(std::move(s), &obs);
    fwd = std::make_unique<Forwarder>(loop, shared, &obs);
  }
  ~Driven() {
    fwd.reset();
    loop.runOnce(milliseconds(0));  // deferred deletions
  }

  struct Done {
    Status status = Status::kServFail;
    net::Clock::duration elapsed{};
  };

  /// Starts one query; its outcome lands in the returned slot.
  std::shared_ptr<std::optional<Done>> resolve(const std::string& qname) {
    auto name = dns::Name::fromString(qname);
    EXPECT_TRUE(name.has_value());
    std::vector<uint8_t> pkt(512);
    pkt.resize(dns::buildQuery(0x4242, *name, dns::type::A, dns::cls::IN, dns::flag::RD, true, 1232,
                               false, pkt));
    dns::Query q;
    EXPECT_EQ(dns::parseQuery(pkt, q), dns::QueryStatus::kOk);
    auto slot = std::make_shared<std::optional<Done>>();
    const auto start = time.now();
    fwd->resolve(pkt, q, false, [this, slot, start](const Result& r) {
      *slot = Done{r.status, time.now() - start};
    });
    loop.runOnce(milliseconds(0));  // the round end sends it
    return slot;
  }

  /// Moves fake time forward and runs what became due.
  void advance(milliseconds d) {
    time.advance(d);
    loop.runOnce(milliseconds(0));
  }

  /// Runs loop rounds until `pred` (real I/O on loopback takes real, if short, time).
  bool until(const std::function<bool()>& pred) {
    for (int i = 0; i < 400 && !pred(); ++i) loop.runOnce(milliseconds(5));
    return pred();
  }

  test::FakeTime time;
  net::EventLoop loop{time};
  CountingObserver obs;
  std::shared_ptr<SharedForwardState> shared;
  std::unique_ptr<Forwarder> fwd;
};

TEST(ForwarderFakeTime, SilentUpstreamIsRetriedEveryAttemptTimeoutAndFailsAtTheBudget) {
  Responder r;
  r.setMode(Mode::kDrop);
  Settings s = settingsFor({r.port()});
  s.max_connect_attempts = 50;  // the budget, not the attempt cap, ends it
  s.attempt_timeout = milliseconds(300);
  s.overall_timeout = milliseconds(1000);
  s.max_fails = 0;
  Driven d(s);
  auto done = d.resolve("silent.example.org");
  // Attempts at 0, 300, 600 and 900 ms; the fourth may only wait for the 100 ms left.
  for (size_t attempt = 1; attempt <= 4; ++attempt) {
    ASSERT_TRUE(r.waitForQueries(attempt, milliseconds(2000))) << attempt;
    EXPECT_FALSE(done->has_value()) << attempt;
    d.advance(milliseconds(attempt < 4 ? 300 : 99));
  }
  EXPECT_FALSE(done->has_value());  // 999 ms: still inside the budget
  d.advance(milliseconds(1));
  ASSERT_TRUE(done->has_value());
  EXPECT_EQ((*done)->status, Status::kServFail);
  EXPECT_EQ((*done)->elapsed, milliseconds(1000));
  EXPECT_EQ(r.count(), 4u);
  EXPECT_EQ(d.fwd->stats().attempts, 4u);
}

TEST(ForwarderFakeTime, TheLastAttemptTheCapAllowsWaitsForTheWholeRestOfTheBudget) {
  Responder r;
  r.setMode(Mode::kDrop);
  Settings s = settingsFor({r.port()});  // default cap: 2 attempts for one upstream
  s.attempt_timeout = milliseconds(200);
  s.overall_timeout = milliseconds(5000);
  s.max_fails = 0;
  Driven d(s);
  auto done = d.resolve("slow.example.org");
  ASSERT_TRUE(r.waitForQueries(1, milliseconds(2000)));
  d.advance(milliseconds(200));
  ASSERT_TRUE(r.waitForQueries(2, milliseconds(2000)));
  d.advance(milliseconds(4999 - 200));
  EXPECT_FALSE(done->has_value());  // the second attempt is still waiting at 4.999 s
  d.advance(milliseconds(1));
  ASSERT_TRUE(done->has_value());
  EXPECT_EQ((*done)->status, Status::kServFail);
  EXPECT_EQ((*done)->elapsed, milliseconds(5000));
  EXPECT_EQ(r.count(), 2u);
}

TEST(ForwarderFakeTime, UdpSocketTakesNoNewQueriesAfterExpire) {
  Responder r;
  Settings s = settingsFor({r.port()});
  s.expire = std::chrono::seconds(1);
  Driven d(s);
  for (const char* n : {"a.example.org", "b.example.org"}) {
    auto done = d.resolve(n);
    ASSERT_TRUE(d.until([&] { return done->has_value(); })) << n;
    ASSERT_EQ((*done)->status, Status::kOk);
  }
  d.advance(milliseconds(999));  // 1 s after the socket opened, less the test's own real time
  auto c = d.resolve("c.example.org");
  ASSERT_TRUE(d.until([&] { return c->has_value(); }));
  EXPECT_EQ(d.fwd->stats().udp_sockets_opened, 1u);  // not yet expired
  d.advance(milliseconds(1));
  auto e = d.resolve("e.example.org");
  ASSERT_TRUE(d.until([&] { return e->has_value(); }));
  EXPECT_EQ(d.fwd->stats().udp_sockets_opened, 2u);
  auto seen = r.queries();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].src_port, seen[2].src_port);
  EXPECT_NE(seen[2].src_port, seen[3].src_port);
}

}  // namespace
}  // namespace nld::upstream::testing
