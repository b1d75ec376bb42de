// Forwarder upstream selection, health checking, coalescing and max_concurrent against scripted
// responders on 127.0.0.1.
#include <gtest/gtest.h>

#include "upstream/harness.h"
#include "upstream/responder.h"

namespace nld::upstream::testing {
namespace {

using std::chrono::milliseconds;
using Status = Result::Status;

std::vector<ClientQuery> distinctNames(size_t n, const std::string& prefix) {
  std::vector<ClientQuery> qs(n);
  for (size_t i = 0; i < n; ++i) qs[i].name = prefix + std::to_string(i) + ".example.org";
  return qs;
}

TEST(ForwarderPolicy, FailoverToSecondUpstreamAfterTimeout) {
  Responder a(1), b(2);
  a.setMode(Mode::kDrop);
  Settings s = settingsFor({a.port(), b.port()});
  s.policy = Settings::Policy::kSequential;
  s.attempt_timeout = milliseconds(200);
  s.max_fails = 0;
  Harness h(s);
  Outcome o = h.resolveOne({});
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.upstream, 1);
  EXPECT_EQ(o.answer_tag, 2);
  EXPECT_GE(o.elapsed, milliseconds(190));
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(b.count(), 1u);
}

TEST(ForwarderPolicy, FailoverFromClosedPortIsImmediate) {
  Responder b(2);
  Settings s = settingsFor({closedPort(), b.port()});
  s.policy = Settings::Policy::kSequential;
  s.max_fails = 0;
  Harness h(s);
  Outcome o = h.resolveOne({});
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.upstream, 1);
  EXPECT_LT(o.elapsed, milliseconds(500));
}

TEST(ForwarderPolicy, SequentialAlwaysUsesTheFirstHealthyUpstream) {
  Responder a(1), b(2);
  Settings s = settingsFor({a.port(), b.port()});
  s.policy = Settings::Policy::kSequential;
  Harness h(s);
  for (const auto& q : distinctNames(6, "seq")) EXPECT_EQ(h.resolveOne(q).upstream, 0);
  EXPECT_EQ(a.count(), 6u);
  EXPECT_EQ(b.count(), 0u);
}

TEST(ForwarderPolicy, RoundRobinAlternates) {
  Responder a(1), b(2), c(3);
  Settings s = settingsFor({a.port(), b.port(), c.port()});
  s.policy = Settings::Policy::kRoundRobin;
  Harness h(s);
  std::vector<int> used;
  for (const auto& q : distinctNames(6, "rr")) used.push_back(h.resolveOne(q).upstream);
  for (size_t i = 1; i < used.size(); ++i) EXPECT_EQ(used[i], (used[i - 1] + 1) % 3) << i;
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(b.count(), 2u);
  EXPECT_EQ(c.count(), 2u);
}

TEST(ForwarderPolicy, RandomSpreadsOverUpstreams) {
  Responder a(1), b(2);
  Settings s = settingsFor({a.port(), b.port()});
  Harness h(s);  // policy random is the default
  for (const auto& o : h.resolveAll(distinctNames(60, "rnd"))) ASSERT_EQ(o.status, Status::kOk);
  // P(all 60 on one side) = 2^-59.
  EXPECT_GT(a.count(), 5u);
  EXPECT_GT(b.count(), 5u);
  EXPECT_EQ(a.count() + b.count(), 60u);
}

TEST(ForwarderHealth, FailuresMarkDownAndASuccessfulProbeBringsBackUp) {
  Responder a(1), b(2);
  a.setMode(Mode::kDrop);
  Settings s = settingsFor({a.port(), b.port()});
  s.policy = Settings::Policy::kSequential;
  s.max_fails = 1;
  s.attempt_timeout = milliseconds(100);
  s.health_check = milliseconds(50);
  s.health_check_timeout = milliseconds(100);
  Harness h(s);
  Outcome o = h.resolveOne({});
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.upstream, 1);
  // The exchange failure started probing; failed probes push it over max_fails.
  ASSERT_TRUE(eventually([&] { return h.shared->isDown(0); }, milliseconds(3000)));
  EXPECT_TRUE(h.shared->probing(0));
  EXPECT_GE(h.obs.healthcheck_failures.load(), 1);
  EXPECT_FALSE(h.shared->isDown(1));

  // While down, the sequential order skips it: straight to upstream 1, no timeout.
  ClientQuery q;
  q.name = "while-down.example.org";
  const uint64_t attempts_before = h.stats().attempts;
  Outcome o2 = h.resolveOne(q);
  ASSERT_EQ(o2.status, Status::kOk);
  EXPECT_EQ(o2.upstream, 1);
  EXPECT_EQ(h.stats().attempts, attempts_before + 1);
  for (const auto& seen : a.queries()) {
    if (seen.qname == "while-down.example.org") ADD_FAILURE() << "down upstream was queried";
  }

  // Probes are the health query: NS for the root, RD set.
  auto seen = a.queries();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back().qname, "");
  EXPECT_TRUE(seen.back().flags & dns::flag::RD);

  a.setMode(Mode::kAnswer);
  ASSERT_TRUE(eventually([&] { return !h.shared->isDown(0) && !h.shared->probing(0); },
                         milliseconds(3000)));
  EXPECT_EQ(h.shared->failures(0), 0u);
  ClientQuery q3;
  q3.name = "back-up.example.org";
  EXPECT_EQ(h.resolveOne(q3).upstream, 0);
}

TEST(ForwarderHealth, MaxFailsZeroNeverProbes) {
  Responder a;
  a.setMode(Mode::kDrop);
  Settings s = settingsFor({a.port()});
  s.max_fails = 0;
  s.attempt_timeout = milliseconds(50);
  s.overall_timeout = milliseconds(100);  // the last attempt waits for the rest of the budget
  Harness h(s);
  EXPECT_EQ(h.resolveOne({}).status, Status::kServFail);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(h.shared->probesSent(), 0u);
  EXPECT_FALSE(h.shared->isDown(0));
  EXPECT_EQ(a.count(), 2u);
}

TEST(ForwarderHealth, AllDownPicksOneAnywayOrFailsFast) {
  for (bool failfast : {false, true}) {
    Responder a(1);
    a.setMode(Mode::kDrop);  // stays down: every probe fails
    Settings s = settingsFor({a.port()});
    s.max_fails = 1;
    s.attempt_timeout = milliseconds(50);
    s.overall_timeout = milliseconds(100);  // the last attempt waits for the rest of it
    s.health_check = milliseconds(20);
    s.health_check_timeout = milliseconds(50);
    s.failfast_all_unhealthy = failfast;
    Harness h(s);
    EXPECT_EQ(h.resolveOne({}).status, Status::kServFail);
    ASSERT_TRUE(eventually([&] { return h.shared->isDown(0); }, milliseconds(3000)));
    EXPECT_EQ(h.obs.all_down.load(), 0);
    ClientQuery q;
    q.name = "all-down.example.org";
    Outcome o = h.resolveOne(q);
    EXPECT_EQ(o.status, Status::kServFail);
    EXPECT_GE(h.obs.all_down.load(), 1) << failfast;
    size_t asked = 0;
    for (const auto& seen : a.queries()) asked += seen.qname == "all-down.example.org";
    if (failfast) {
      EXPECT_TRUE(o.synchronous);
      EXPECT_EQ(asked, 0u);
      EXPECT_EQ(h.obs.all_down.load(), 1);
    } else {
      EXPECT_EQ(asked, 2u);  // picked anyway, within the attempt cap
    }
  }
}

TEST(ForwarderCoalescing, IdenticalConcurrentQueriesShareOneUpstreamQuery) {
  Responder r(5);
  r.setDelay(milliseconds(200));
  Harness h(settingsFor({r.port()}));
  std::vector<ClientQuery> qs(20);
  for (size_t i = 0; i < qs.size(); ++i) {
    qs[i].name = (i % 2) ? "Same.Example.org" : "same.example.ORG";  // case-insensitive key
    qs[i].tcp = i % 3 == 0;
  }
  auto out = h.resolveAll(qs);
  for (const auto& o : out) {
    EXPECT_EQ(o.status, Status::kOk);
    EXPECT_EQ(o.answer_tag, 5);
  }
  EXPECT_EQ(r.count(), 1u);
  EXPECT_EQ(h.stats().coalesced, 19u);
  EXPECT_EQ(h.inflight(), 0u);
}

TEST(ForwarderCoalescing, DifferentTypeOrDoBitAreNotCoalesced) {
  Responder r;
  r.setDelay(milliseconds(100));
  Harness h(settingsFor({r.port()}));
  std::vector<ClientQuery> qs(3);
  qs[1].qtype = dns::type::AAAA;
  qs[2].dnssec_ok = true;
  for (const auto& o : h.resolveAll(qs)) EXPECT_EQ(o.status, Status::kOk);
  EXPECT_EQ(r.count(), 3u);
  EXPECT_EQ(h.stats().coalesced, 0u);
}

TEST(ForwarderLimits, MaxConcurrentRefusesImmediately) {
  Responder r;
  r.setDelay(milliseconds(300));
  Settings s = settingsFor({r.port()});
  s.max_concurrent = 2;
  Harness h(s);
  auto out = h.resolveAll(distinctNames(3, "mc"));
  EXPECT_EQ(out[0].status, Status::kOk);
  EXPECT_EQ(out[1].status, Status::kOk);
  EXPECT_EQ(out[2].status, Status::kRefused);
  EXPECT_TRUE(out[2].synchronous);
  EXPECT_EQ(out[2].error, kErrLimitExceeded);
  EXPECT_EQ(h.obs.max_concurrent_rejects.load(), 1);
  EXPECT_EQ(h.shared->concurrent(), 0);
  EXPECT_EQ(r.count(), 2u);
  // Slots are released: the next ones go through.
  for (const auto& o : h.resolveAll(distinctNames(2, "mc2"))) EXPECT_EQ(o.status, Status::kOk);
}

TEST(ForwarderLimits, CoalescedWaitersPerFlightAreCapped) {
  Responder r;
  r.setDelay(milliseconds(300));
  Settings s = settingsFor({r.port()});
  s.max_concurrent = 5000;  // the refused ones must give their slot back
  Harness h(s);
  // One flight, kMaxWaitersPerFlight waiters; the next two identical queries are refused at once.
  std::vector<ClientQuery> qs(kMaxWaitersPerFlight + 2);
  auto out = h.resolveAll(qs);
  size_t ok = 0;
  for (size_t i = 0; i < kMaxWaitersPerFlight; ++i) ok += out[i].status == Status::kOk;
  EXPECT_EQ(ok, kMaxWaitersPerFlight);
  for (size_t i = kMaxWaitersPerFlight; i < qs.size(); ++i) {
    EXPECT_EQ(out[i].status, Status::kRefused) << i;
    EXPECT_TRUE(out[i].synchronous) << i;
    EXPECT_EQ(out[i].error, kErrTooManyWaiters) << i;
  }
  EXPECT_EQ(r.count(), 1u);
  EXPECT_EQ(h.obs.coalesce_rejects.load(), 2);
  EXPECT_EQ(h.obs.max_concurrent_rejects.load(), 0);
  EXPECT_EQ(h.stats().coalesce_rejects, 2u);
  EXPECT_EQ(h.shared->concurrent(), 0);
  EXPECT_EQ(h.inflight(), 0u);
  // The cap is per flight: the next burst coalesces again.
  EXPECT_EQ(h.resolveAll(std::vector<ClientQuery>(3))[2].status, Status::kOk);
}

TEST(ForwarderLimits, FailureCarriesItsErrorText) {
  Responder r;
  r.setMode(Mode::kDrop);
  Settings s = settingsFor({r.port()});
  s.attempt_timeout = milliseconds(50);
  s.overall_timeout = milliseconds(200);
  Harness h(s);
  auto o = h.resolveOne(ClientQuery{});
  EXPECT_EQ(o.status, Status::kServFail);
  EXPECT_EQ(o.error, kErrUpstreamsFailed);
}

TEST(ForwarderPool, FlightRecordsShrinkBackAfterABurst) {
  Responder r;
  r.setMode(Mode::kDrop);  // a blackhole: the whole burst waits for its timeouts
  Settings s = settingsFor({r.port()});
  s.max_fails = 0;
  s.attempt_timeout = milliseconds(100);
  s.overall_timeout = milliseconds(300);
  Harness h(s);
  const size_t burst = kFlightPoolMax + 300;
  for (const auto& o : h.resolveAll(distinctNames(burst, "burst"))) {
    EXPECT_EQ(o.status, Status::kServFail);
  }
  // The records of the burst beyond the pool's cap went back to the allocator.
  EXPECT_EQ(h.flightRecords(), kFlightPoolMax);
  EXPECT_EQ(h.inflight(), 0u);
  // Freed slots (reused first) and pooled ones work again.
  r.setMode(Mode::kAnswer);
  for (const auto& o : h.resolveAll(distinctNames(200, "again"))) {
    EXPECT_EQ(o.status, Status::kOk);
  }
  EXPECT_EQ(h.flightRecords(), kFlightPoolMax);
}

TEST(ForwarderShared, WorkersShareRoundRobinAndConcurrency) {
  Responder a(1), b(2);
  a.setDelay(milliseconds(600));  // long enough for both workers' queries to overlap
  b.setDelay(milliseconds(600));
  Settings s = settingsFor({a.port(), b.port()});
  s.policy = Settings::Policy::kRoundRobin;
  s.max_concurrent = 3;
  Harness w1(s);
  Harness w2(w1.shared);
  // 2 + 2 concurrent queries on two workers against a stanza-wide limit of 3.
  std::vector<Outcome> o1, o2;
  std::thread t([&] { o2 = w2.resolveAll(distinctNames(2, "w2-")); });
  o1 = w1.resolveAll(distinctNames(2, "w1-"));
  t.join();
  int ok = 0, refused = 0;
  for (const auto* v : {&o1, &o2}) {
    for (const auto& o : *v) {
      ok += o.status == Status::kOk;
      refused += o.status == Status::kRefused;
    }
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(w1.shared->concurrent(), 0);
  // The shared round-robin counter spreads the 3 admitted queries over both upstreams.
  EXPECT_GE(a.count(), 1u);
  EXPECT_GE(b.count(), 1u);
  EXPECT_EQ(a.count() + b.count(), 3u);
}

}  // namespace
}  // namespace nld::upstream::testing
