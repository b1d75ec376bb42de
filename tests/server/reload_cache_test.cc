// A reload keeps the cache of every block whose zones and cache settings did not change
// (Pipeline::setPlan takes the old cache object over), and starts the others cold.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "config/corefile.h"
#include "dns/key_hash.h"
#include "dns/message.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "support/packet_builder.h"

namespace nld::server {
namespace {

struct Packet {
  std::vector<uint8_t> query, response;
  dns::Query q;
  dns::Response r;
};

// A query for `name` A and an upstream answer with one A record (TTL 300).
Packet exchange(const std::string& name) {
  Packet p;
  p.query.resize(512);
  auto n = *dns::Name::fromString(name);
  p.query.resize(dns::buildQuery(0x1234, n, dns::type::A, dns::cls::IN, dns::flag::RD, false, 0,
                                 false, dns::MutableBytes(p.query)));
  EXPECT_EQ(dns::parseQuery(dns::ByteView(p.query), p.q), dns::QueryStatus::kOk);
  p.response = p.query;
  p.response[2] |= 0x80;  // QR
  dns::store16(p.response.data() + 6, 1);
  test::PacketBuilder rr;
  rr.pointer(12).rrBody(dns::type::A, dns::cls::IN, 300, {192, 0, 2, 1});
  p.response.insert(p.response.end(), rr.bytes().begin(), rr.bytes().end());
  EXPECT_EQ(dns::parseResponse(dns::ByteView(p.response), p.r), dns::Error::kNone);
  return p;
}

class ReloadCacheTest : public ::testing::Test {
 protected:
  ReloadCacheTest()
      : catalogue_(registry_), metrics_(catalogue_, 1), pipeline_(loop_, metrics_, 0) {}
  ~ReloadCacheTest() override { pipeline_.shutdown(); }

  void load(const std::string& corefile) {
    pipeline_.setPlan(plan::buildPlan(config::parseCorefile(corefile, "test"), 1, &metrics_));
  }
  cache::Cache* cacheOf(size_t block) {
    return pipeline_.workerPlan()->blocks.at(block).cache.get();
  }
  void fill(size_t block, const std::string& name) {
    Packet p = exchange(name);
    ASSERT_GT(
        cacheOf(block)->insert(p.q, dns::keyHash(p.q), dns::ByteView(p.response), p.r, loop_.now()),
        0u);
  }
  bool hit(size_t block, const std::string& name) {
    Packet p = exchange(name);
    std::vector<uint8_t> out(dns::kMaxMessageSize);
    return cacheOf(block)
               ->lookup(dns::ByteView(p.query), p.q, dns::keyHash(p.q), loop_.now(), 65535,
                        dns::MutableBytes(out))
               .kind == cache::Kind::kHit;
  }

  observability::Registry registry_;
  observability::CorednsMetrics catalogue_;
  ServerMetrics metrics_;
  net::EventLoop loop_;
  Pipeline pipeline_;
};

const char* const kTwoBlocks =
    "cluster.local:53 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n"
    ".:53 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n";

TEST_F(ReloadCacheTest, UnchangedBlockKeepsItsCacheChangedBlockStartsCold) {
  load(kTwoBlocks);
  cache::Cache* cluster = cacheOf(0);
  cache::Cache* root = cacheOf(1);
  fill(0, "kubernetes.default.svc.cluster.local");
  fill(1, "example.org");
  // Only the root block's cache settings change (cache 30 → 60); a log line is added to the
  // cluster block, which is not a cache setting.
  load(
      "cluster.local:53 {\n  log\n  cache 30\n  forward . 127.0.0.1:9\n}\n"
      ".:53 {\n  cache 60\n  forward . 127.0.0.1:9\n}\n");
  EXPECT_EQ(cacheOf(0), cluster);
  EXPECT_TRUE(hit(0, "kubernetes.default.svc.cluster.local"));
  EXPECT_NE(cacheOf(1), root);
  EXPECT_FALSE(hit(1, "example.org"));
}

TEST_F(ReloadCacheTest, BlocksAreMatchedByIdentityNotPosition) {
  load(kTwoBlocks);
  fill(0, "kubernetes.default.svc.cluster.local");
  fill(1, "example.org");
  load(
      ".:53 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n"
      "cluster.local:53 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n");
  EXPECT_TRUE(hit(0, "example.org"));
  EXPECT_TRUE(hit(1, "kubernetes.default.svc.cluster.local"));
}

TEST_F(ReloadCacheTest, ChangedZonesPortOrCacheZonesStartCold) {
  for (const char* next : {
           "cluster.local:53 example.test:53 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n",
           "cluster.local:5353 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n",
           "cluster.local:53 {\n  cache 30 svc.cluster.local\n  forward . 127.0.0.1:9\n}\n",
           "cluster.local:53 {\n  cache 30 {\n    denial 100\n  }\n  forward . 127.0.0.1:9\n}\n",
       }) {
    load("cluster.local:53 {\n  cache 30\n  forward . 127.0.0.1:9\n}\n");
    fill(0, "kubernetes.default.svc.cluster.local");
    load(next);
    EXPECT_FALSE(hit(0, "kubernetes.default.svc.cluster.local")) << next;
  }
}

}  // namespace
}  // namespace nld::server
