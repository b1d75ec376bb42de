// Two workers' pipelines on one test thread (each its own EventLoop on fake time, driven with
// runOnce), a real loopback upstream (tests/upstream Responder). A query that arrives on the
// worker that does not own its name (TCP lands on any worker) is answered there from the owner's
// cache partition when it is a hit (cache::Access::kPeer), and handed over to the owner only when
// it is not: a miss, a serve_stale-verify entry, or before the workers have each other's
// partitions of the current plan. Prefetch refreshes of such hits are carried out by the owner.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/corefile.h"
#include "dns/message.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "support/fake_time.h"
#include "upstream/responder.h"

namespace nld::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Capture final : ReplyFactory {
  std::optional<std::vector<uint8_t>>* slot = nullptr;
  Reply make() override {
    return [s = slot](dns::ByteView a) { *s = std::vector<uint8_t>(a.begin(), a.end()); };
  }
};

class PeerCacheTest : public ::testing::Test {
 protected:
  PeerCacheTest() : catalogue_(registry_), metrics_(catalogue_, 2) {
    for (size_t w = 0; w < 2; ++w) {
      pipes_.push_back(std::make_unique<Pipeline>(*loops_[w], metrics_, w));
    }
    pipes_[0]->setPeers({pipes_[0].get(), pipes_[1].get()});
    pipes_[1]->setPeers({pipes_[0].get(), pipes_[1].get()});
  }
  // As Server::stop: fail what still waits on the upstream (a refresh whose answer a test did
  // not wait for holds its plan generation), and let the loops run the callbacks.
  ~PeerCacheTest() override {
    for (auto& pipe : pipes_) pipe->shutdown();
    for (int i = 0; i < 3; ++i) {
      for (auto& l : loops_) l->runOnce(milliseconds(0));
    }
  }

  std::shared_ptr<const Plan> plan(const std::string& cache) {
    return plan::buildPlan(
        config::parseCorefile(".:53 {\n  cache " + cache + "\n  forward . 127.0.0.1:" +
                                  std::to_string(upstream_.port()) + "\n}\n",
                              "test"),
        2, &metrics_);
  }

  // What Server::load does: every worker installs the plan, then gets every worker's partitions.
  void install(const std::shared_ptr<const Plan>& p) {
    for (auto& pipe : pipes_) pipe->setPlan(p);
    auto pc = std::make_shared<PeerCaches>();
    pc->plan = p;
    pc->blocks.resize(p->blocks.size());
    for (size_t b = 0; b < p->blocks.size(); ++b) {
      for (auto& pipe : pipes_) pc->blocks[b].push_back(pipe->workerPlan()->blocks[b].cache);
    }
    for (auto& pipe : pipes_) pipe->setPeerCaches(pc);
  }

  // A name worker 1 owns (the query arrives on worker 0).
  std::vector<uint8_t> ownedByWorker1(uint16_t id, std::string* name_out = nullptr) {
    for (int i = 0;; ++i) {
      const std::string name = "n" + std::to_string(i) + ".example.";
      std::vector<uint8_t> q(512);
      q.resize(dns::buildQuery(id, *dns::Name::fromString(name), dns::type::A, dns::cls::IN,
                               dns::flag::RD, false, 0, false, dns::MutableBytes(q)));
      if (Pipeline::queryOwner(dns::ByteView(q), 2) == 1) {
        if (name_out != nullptr) *name_out = name;
        return q;
      }
    }
  }

  // Runs both loops at least once and then (bounded) until `done` holds: hand-offs, the
  // upstream exchange, the return.
  template <typename Pred>
  bool runUntil(Pred done) {
    int rounds = 0;
    do {
      loops_[0]->runOnce(milliseconds(0));
      loops_[1]->runOnce(milliseconds(5));
    } while (!done() && ++rounds < 400);
    return done();
  }

  // Sends `q` to worker 0 over TCP; returns the answer (synchronous or after the hand-off).
  std::vector<uint8_t> ask(const std::vector<uint8_t>& q, bool* synchronous = nullptr) {
    std::optional<std::vector<uint8_t>> answer;
    Capture replies;
    replies.slot = &answer;
    std::vector<uint8_t> out(dns::kMaxMessageSize);
    const size_t n = pipes_[0]->handle(dns::ByteView(q), net::makeSockAddr("127.0.0.1", 40000), 0,
                                       Proto::kTcp, dns::MutableBytes(out), replies);
    if (synchronous != nullptr) *synchronous = n != Pipeline::kPending;
    if (n != Pipeline::kPending) {
      out.resize(n);
      return out;
    }
    EXPECT_TRUE(runUntil([&] { return answer.has_value(); })) << "no answer came back";
    return answer.value_or(std::vector<uint8_t>{});
  }

  // Moves the fake clock; each loop takes the new time at its next round.
  void advance(std::chrono::nanoseconds d) {
    time_.advance(d);
    for (auto& l : loops_) l->runOnce(milliseconds(0));
  }

  static uint16_t rcodeOf(const std::vector<uint8_t>& a) { return a.size() >= 4 ? a[3] & 0xf : 99; }

  upstream::testing::Responder upstream_;
  test::FakeTime time_;
  std::vector<std::unique_ptr<net::EventLoop>> loops_ = [this] {
    std::vector<std::unique_ptr<net::EventLoop>> v;
    v.push_back(std::make_unique<net::EventLoop>(time_));
    v.push_back(std::make_unique<net::EventLoop>(time_));
    return v;
  }();
  observability::Registry registry_;
  observability::CorednsMetrics catalogue_;
  ServerMetrics metrics_;
  std::vector<std::unique_ptr<Pipeline>> pipes_;
};

TEST_F(PeerCacheTest, AHitInTheOwnersPartitionIsAnsweredWhereTheQueryArrived) {
  install(plan("30"));
  const auto q = ownedByWorker1(7);
  bool sync = true;
  const auto first = ask(q, &sync);
  EXPECT_FALSE(sync) << "a miss goes to the owner";
  EXPECT_EQ(rcodeOf(first), dns::rcode::NoError);
  EXPECT_EQ(pipes_[0]->handedOff(), 1u);
  EXPECT_EQ(upstream_.count(), 1u);

  const auto second = ask(q, &sync);
  EXPECT_TRUE(sync) << "a hit in worker 1's partition is answered by worker 0";
  EXPECT_EQ(rcodeOf(second), dns::rcode::NoError);
  ASSERT_GE(second.size(), 2u);
  EXPECT_EQ(second[0], 0);
  EXPECT_EQ(second[1], 7);  // the client's ID
  EXPECT_EQ(pipes_[0]->handedOff(), 1u);
  EXPECT_EQ(pipes_[0]->peerHits(), 1u);
  EXPECT_EQ(upstream_.count(), 1u);
  // The partition counts the owner's looks only (the miss); the hit is worker 0's, in its
  // metrics.
  const cache::Stats& st = pipes_[1]->workerPlan()->blocks[0].cache->stats();
  EXPECT_EQ(st.requests.load(), 1u);
  EXPECT_EQ(st.misses.load(), 1u);
  EXPECT_EQ(st.hits_success.load(), 0u);
  EXPECT_EQ(catalogue_.cache_hits.with({"dns://:53", ".", "", "success"}).value(), 1);
  EXPECT_EQ(catalogue_.cache_misses.with({"dns://:53", ".", ""}).value(), 1);
  // Worker 0's own partition never saw the name.
  EXPECT_EQ(pipes_[0]->workerPlan()->blocks[0].cache->stats().requests.load(), 0u);
}

TEST_F(PeerCacheTest, WithoutThePeersPartitionsOfTheCurrentPlanEveryQueryIsHandedOver) {
  install(plan("30"));
  const auto q = ownedByWorker1(9);
  ask(q);
  // A reload that worker 0 has installed but whose partitions it has not got yet.
  const auto next = plan("30");
  pipes_[0]->setPlan(next);
  pipes_[1]->setPlan(next);
  bool sync = true;
  EXPECT_EQ(rcodeOf(ask(q, &sync)), dns::rcode::NoError);
  EXPECT_FALSE(sync);
  EXPECT_EQ(pipes_[0]->handedOff(), 2u);
  EXPECT_EQ(upstream_.count(), 1u) << "the owner kept its cache over the reload and answered";
  install(next);
  EXPECT_EQ(rcodeOf(ask(q, &sync)), dns::rcode::NoError);
  EXPECT_TRUE(sync);
}

TEST_F(PeerCacheTest, ServeStaleVerifyGoesToTheOwnerWhichAsksUpstreamFirst) {
  install(plan("30 {\n    serve_stale 1h verify\n  }"));
  const auto q = ownedByWorker1(11);
  ask(q);
  advance(seconds(40));  // expired, within serve_stale
  bool sync = true;
  EXPECT_EQ(rcodeOf(ask(q, &sync)), dns::rcode::NoError);
  EXPECT_FALSE(sync);
  EXPECT_EQ(upstream_.count(), 2u);
  const cache::Stats& st = pipes_[1]->workerPlan()->blocks[0].cache->stats();
  EXPECT_EQ(st.requests.load(), 2u) << "the peer's look counted nothing";
}

TEST_F(PeerCacheTest, APrefetchDueOnAPeerHitIsCarriedOutByTheOwner) {
  install(plan("30 {\n    prefetch 1 1m 50%\n  }"));
  const auto q = ownedByWorker1(13);
  ask(q);
  ASSERT_EQ(upstream_.count(), 1u);
  advance(seconds(20));  // 10 s of 30 left: within 50 %
  bool sync = false;
  EXPECT_EQ(rcodeOf(ask(q, &sync)), dns::rcode::NoError);
  EXPECT_TRUE(sync) << "the hit is answered at once";
  EXPECT_TRUE(runUntil([&] { return upstream_.count() == 2; })) << "the owner refreshed it";
  EXPECT_EQ(pipes_[0]->handedOff(), 1u) << "the refresh is not a handed-over query";
  EXPECT_EQ(catalogue_.cache_prefetch.with({"dns://:53", ".", ""}).value(), 1);
}

// The entries gauge follows the partition's own count through every change, including a lookup
// that erases a dead entry and a prefetch refresh (each used to escape the gauge, which then
// stayed above the cache's real size until the next reload).
TEST_F(PeerCacheTest, TheEntriesGaugeFollowsTheCacheThroughErasesAndRefreshes) {
  install(plan("30 {\n    prefetch 1 1m 50%\n  }"));
  auto entries = [&] {
    return catalogue_.cache_entries.with({"dns://:53", ".", "", "success"}).value();
  };
  std::string name;
  const auto q = ownedByWorker1(15, &name);
  ask(q);
  EXPECT_EQ(entries(), 1);
  advance(seconds(20));
  ask(q);  // a peer hit with a prefetch: the owner refreshes
  ASSERT_TRUE(runUntil([&] { return upstream_.count() == 2; }));
  for (int i = 0; i < 20; ++i) runUntil([] { return true; });  // let the refresh's answer land
  EXPECT_EQ(entries(), 1) << "a refresh replaces the entry";
  advance(seconds(60));  // dead (no serve_stale)
  bool sync = true;
  ask(q, &sync);  // the owner erases it on lookup, misses, asks upstream and stores it again
  EXPECT_FALSE(sync);
  EXPECT_EQ(entries(), 1);
  EXPECT_EQ(pipes_[1]->workerPlan()->blocks[0].cache->stats().entries_success.load(), 1u);
}

}  // namespace
}  // namespace nld::server
