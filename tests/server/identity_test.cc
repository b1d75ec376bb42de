// The RFC 4892 identity queries (id.server. / hostname.bind., class CH, type TXT) are answered by
// the pipeline itself with the process identity, before any server block: the readiness probe
// (node-cache -probe-ready) relies on it to tell which process answered on a shared address.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/corefile.h"
#include "dns/message.h"
#include "net/address.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"

namespace nld::server {
namespace {

struct NoReplies final : ReplyFactory {
  Reply make() override {
    ADD_FAILURE() << "an identity query must be answered synchronously";
    return [](dns::ByteView) {};
  }
};

struct Answer {
  std::vector<uint8_t> wire;
  dns::Response r;
  std::string txt;        // the first answer TXT's strings, joined
  uint16_t rr_class = 0;  // its class
  uint32_t ttl = 1;
};

class IdentityTest : public ::testing::Test {
 protected:
  IdentityTest() : catalogue_(registry_), metrics_(catalogue_, 1) {}

  // A pipeline with one block that covers neither id.server. nor hostname.bind.: without the
  // identity answer those queries are REFUSED.
  std::unique_ptr<Pipeline> make(const std::string& identity) {
    auto p = std::make_unique<Pipeline>(loop_, metrics_, 0, identity);
    p->setPlan(plan::buildPlan(
        config::parseCorefile("example.test:53 {\n  forward . 127.0.0.1:9\n}\n", "test"), 1,
        &metrics_));
    return p;
  }

  Answer ask(Pipeline& p, const std::string& name, uint16_t qtype, uint16_t qclass,
             bool edns = false, Proto proto = Proto::kUdp) {
    std::vector<uint8_t> q(512);
    q.resize(dns::buildQuery(0x4242, *dns::Name::fromString(name), qtype, qclass, dns::flag::RD,
                             edns, 4096, false, dns::MutableBytes(q)));
    Answer a;
    a.wire.resize(dns::kMaxMessageSize);
    NoReplies replies;
    const size_t n = p.handle(dns::ByteView(q), net::makeSockAddr("127.0.0.1", 40000), 0, proto,
                              dns::MutableBytes(a.wire), replies);
    EXPECT_NE(n, Pipeline::kPending);
    a.wire.resize(n == Pipeline::kPending ? 0 : n);
    EXPECT_EQ(dns::parseResponse(dns::ByteView(a.wire), a.r), dns::Error::kNone);
    for (const auto& rr : a.r.rrs) {
      if (rr.section != 0 || rr.type != dns::type::TXT) continue;
      const uint8_t* base = a.wire.data() + rr.ttl_offset;
      a.rr_class = dns::load16(base - 2);
      a.ttl = dns::load32(base);
      const size_t rdlen = dns::load16(base + 4);
      for (size_t i = 6; i < 6 + rdlen; i += 1 + base[i]) {
        a.txt.append(reinterpret_cast<const char*>(base + i + 1), base[i]);
      }
      break;
    }
    return a;
  }

  observability::Registry registry_;
  observability::CorednsMetrics catalogue_;
  ServerMetrics metrics_;
  net::EventLoop loop_;
};

TEST_F(IdentityTest, IdServerAndHostnameBindAnswerTheIdentityOverUdpAndTcp) {
  auto p = make("0c5e5b3a-uid");
  for (const char* name : {"id.server.", "ID.Server.", "hostname.bind."}) {
    for (Proto proto : {Proto::kUdp, Proto::kTcp}) {
      Answer a = ask(*p, name, dns::type::TXT, dns::cls::CH, false, proto);
      EXPECT_EQ(a.r.header.rcode(), dns::rcode::NoError) << name;
      EXPECT_TRUE(a.r.header.qr() && a.r.header.aa() && a.r.header.rd()) << name;
      EXPECT_EQ(a.r.header.id, 0x4242);
      EXPECT_EQ(a.r.header.ancount, 1);
      EXPECT_EQ(a.r.question.qclass, dns::cls::CH);
      EXPECT_EQ(a.r.question.name.toString(), name) << "question echoed, case kept";
      EXPECT_EQ(a.txt, "0c5e5b3a-uid") << name;
      EXPECT_EQ(a.rr_class, dns::cls::CH);
      EXPECT_EQ(a.ttl, 0u) << "an identity must not be cached";
      EXPECT_FALSE(a.r.edns.present);
    }
  }
  p->shutdown();
}

TEST_F(IdentityTest, EdnsQueryGetsOurOpt) {
  auto p = make("uid-a");
  Answer a = ask(*p, "id.server.", dns::type::TXT, dns::cls::CH, /*edns=*/true);
  EXPECT_EQ(a.txt, "uid-a");
  ASSERT_TRUE(a.r.edns.present);
  EXPECT_EQ(a.r.edns.udp_size, dns::kOurUdpSize);
  p->shutdown();
}

TEST_F(IdentityTest, OtherQueriesGoThroughTheBlocksAsBefore) {
  auto p = make("uid-a");
  // Not class CH, not TXT, another CH name: no block covers them here → REFUSED, no answer.
  for (auto [name, qtype, qclass] : {std::tuple{"id.server.", dns::type::TXT, dns::cls::IN},
                                     std::tuple{"id.server.", dns::type::A, dns::cls::CH},
                                     std::tuple{"version.bind.", dns::type::TXT, dns::cls::CH},
                                     std::tuple{"x.id.server.", dns::type::TXT, dns::cls::CH}}) {
    Answer a = ask(*p, name, qtype, qclass);
    EXPECT_EQ(a.r.header.rcode(), dns::rcode::Refused) << name << " " << qtype << " " << qclass;
    EXPECT_EQ(a.r.header.ancount, 0);
  }
  p->shutdown();
}

TEST_F(IdentityTest, WithoutAnIdentityTheQueryIsNotIntercepted) {
  auto p = make("");
  Answer a = ask(*p, "id.server.", dns::type::TXT, dns::cls::CH);
  EXPECT_EQ(a.r.header.rcode(), dns::rcode::Refused);
  p->shutdown();
}

TEST_F(IdentityTest, LongIdentityIsCutToOneTxtString) {
  auto p = make(std::string(300, 'u'));
  Answer a = ask(*p, "id.server.", dns::type::TXT, dns::cls::CH);
  EXPECT_EQ(a.txt, std::string(255, 'u'));
  p->shutdown();
}

}  // namespace
}  // namespace nld::server
