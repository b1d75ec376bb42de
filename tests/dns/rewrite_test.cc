#include "dns/rewrite.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <stdexcept>

#include "support/packet_builder.h"

namespace nld::dns::rewrite {
namespace {

using test::PacketBuilder;
using test::wireName;

Rewriter rules(std::initializer_list<std::vector<std::string>> lines) {
  Rewriter r;
  for (const auto& l : lines) r.addRule(l);
  return r;
}

Question question(const char* name, uint16_t qtype = type::A, uint16_t qclass = cls::IN) {
  Question q;
  q.name = *Name::fromString(name);
  q.qtype = qtype;
  q.qclass = qclass;
  return q;
}

std::string applied(const Rewriter& r, const char* name) {
  const Outcome o = r.apply(question(name));
  return o.matched ? o.question.name.toString() : "-";
}

TEST(RewriteRules, NameMatchTypes) {
  EXPECT_EQ(applied(rules({{"name", "a.example", "b.example"}}), "A.Example."), "b.example.");
  EXPECT_EQ(applied(rules({{"name", "a.example", "b.example"}}), "x.a.example."), "-");
  EXPECT_EQ(applied(rules({{"name", "prefix", "api-", "web-"}}), "api-x.svc."), "web-x.svc.");
  EXPECT_EQ(applied(rules({{"name", "prefix", "api-", "web-"}}), "x.api-x.svc."), "-");
  EXPECT_EQ(applied(rules({{"name", "suffix", ".svc", ".svc.cluster.local"}}), "a.b.svc."),
            "a.b.svc.cluster.local.");
  EXPECT_EQ(applied(rules({{"name", "substring", "old", "new"}}), "old.x.old.org."),
            "new.x.new.org.");
  EXPECT_EQ(applied(rules({{"name", "regex", R"((.*)-(\d+)\.svc\.$)", "{2}.{1}.example"}}),
                    "web-12.svc."),
            "12.web.example.");
  EXPECT_EQ(applied(rules({{"name", "regex", R"(^x\.)", "y."}}), "a.x.org."), "-");
}

TEST(RewriteRules, TypeAndClass) {
  const Rewriter r = rules({{"continue", "type", "any", "HINFO"}, {"class", "CH", "IN"}});
  Outcome o = r.apply(question("a.", type::ANY, cls::CH));
  EXPECT_TRUE(o.matched);
  EXPECT_TRUE(o.revert);
  EXPECT_EQ(o.question.qtype, type::HINFO);
  EXPECT_EQ(o.question.qclass, cls::IN);
  o = r.apply(question("a.", type::A, cls::IN));
  EXPECT_FALSE(o.matched);
  EXPECT_FALSE(o.revert);
}

TEST(RewriteRules, StopEndsTheListContinueGoesOn) {
  const Rewriter stop = rules({{"name", "suffix", ".a.", ".b."}, {"name", "suffix", ".b.", ".c."}});
  EXPECT_EQ(applied(stop, "x.a."), "x.b.");
  const Rewriter cont =
      rules({{"continue", "name", "suffix", ".a.", ".b."}, {"name", "suffix", ".b.", ".c."}});
  EXPECT_EQ(applied(cont, "x.a."), "x.c.");
}

TEST(RewriteRules, RevertOnlyAfterStopOrResponseRules) {
  // CoreDNS writes through without its reverter when only `continue` rules without response
  // rules matched; an exact rule always has one (its automatic owner revert).
  EXPECT_FALSE(
      rules({{"continue", "name", "suffix", ".a.", ".b."}}).apply(question("x.a.")).revert);
  EXPECT_TRUE(
      rules({{"continue", "name", "exact", "x.a.", "y.b."}}).apply(question("x.a.")).revert);
  EXPECT_TRUE(rules({{"name", "suffix", ".a.", ".b."}}).apply(question("x.a.")).revert);
}

TEST(RewriteRules, InvalidResultIsFlagged) {
  const std::string label(60, 'x');
  const std::string four = label + "." + label + "." + label + "." + label;
  const Rewriter r = rules({{"name", "suffix", ".a.", "." + four + ".a."}});  // > 255 bytes
  const std::string name = label + "." + label + ".a.";
  const Outcome o = r.apply(question(name.c_str()));
  EXPECT_TRUE(o.matched);
  EXPECT_TRUE(o.invalid);
}

TEST(RewriteRules, Refused) {
  Rewriter r;
  for (const char* t : {"edns0", "ttl", "cname", "rcode"}) {
    try {
      r.addRule({t, "a", "b"});
      ADD_FAILURE() << t;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("not supported by node-cache"), std::string::npos);
    }
  }
  EXPECT_THROW(r.addRule({"name", "regex", "(", "b"}), std::invalid_argument);
  EXPECT_THROW(r.addRule({"type", "A", "NOPE"}), std::invalid_argument);
  EXPECT_TRUE(r.empty());
}

TEST(RewriteResponse, AnswerRules) {
  ResponseRule name;
  name.pattern = std::make_shared<re2::RE2>(R"((.*)\.b\.$)");
  name.replacement = "{1}.a.";
  EXPECT_EQ(Rewriter::applyResponseRule(name, "x.b."), "x.a.");
  EXPECT_EQ(Rewriter::applyResponseRule(name, "x.c."), "x.c.");
  ResponseRule remap;
  remap.remap_from = "x.b.";
  remap.remap_to = "x.a.";
  EXPECT_EQ(Rewriter::applyResponseRule(remap, "X.B."), "x.a.");
  EXPECT_EQ(Rewriter::applyResponseRule(remap, "y.b."), "y.b.");
}

// The client's query x.a. A (with an OPT), rewritten by `name suffix .a. .b. answer auto`: the
// query that goes upstream, then its answer (compressed: a CNAME x.b. → y.b., an A of y.b.,
// an SOA in the authority) reverted for the client.
TEST(RewriteResponse, QueryAndAnswerRoundTrip) {
  const Rewriter r = rules({{"name", "suffix", ".a.", ".b.", "answer", "auto"}});
  PacketBuilder cq;
  cq.header(0x4242, 0x0100, 1, 0, 0, 1).question("X.a", type::A).opt(1232);
  const auto client = cq.bytes();
  Query q;
  ASSERT_EQ(parseQuery(client, q), QueryStatus::kOk);
  const Outcome o = r.apply(q.question);
  ASSERT_TRUE(o.matched && o.revert);

  std::vector<uint8_t> up(kMaxMessageSize);
  const size_t n = Rewriter::buildRewrittenQuery(client, q, o, up);
  ASSERT_GT(n, 0u);
  Query uq;
  ASSERT_EQ(parseQuery(ByteView(up.data(), n), uq), QueryStatus::kOk);
  EXPECT_EQ(uq.question.name.toString(), "x.b.");
  EXPECT_EQ(uq.header.id, 0x4242);
  EXPECT_TRUE(uq.edns.present);

  PacketBuilder a;  // question x.b. at 12 (5 bytes of name), so its RDATA name sits at 12+5+4+12
  a.header(0x4242, 0x8180, 1, 2, 1, 0).question("x.b", type::A);
  a.pointer(12).rrBody(type::CNAME, 1, 60, {1, 'y', 0xC0, 14});  // y.b. (pointer to "b.")
  a.pointer(33).rrBody(type::A, 1, 60, {192, 0, 2, 1});
  std::vector<uint8_t> soa = wireName("ns.b");
  soa.insert(soa.end(), {0xC0, 14});
  for (int i = 0; i < 20; ++i) soa.push_back(static_cast<uint8_t>(i));
  a.pointer(14).rrBody(type::SOA, 1, 60, soa);
  const auto answer = a.bytes();

  std::vector<uint8_t> out(kMaxMessageSize);
  const size_t len = Rewriter::revertAnswer(answer, client, q, o, out);
  ASSERT_GT(len, 0u);
  Response resp;
  ASSERT_EQ(parseResponse(ByteView(out.data(), len), resp), Error::kNone);
  EXPECT_EQ(resp.question.name.toString(), "X.a.");  // the client's bytes, case and all
  ASSERT_EQ(resp.rrs.size(), 3u);
  // Owners: x.b. → x.a. (answer auto); y.b., the CNAME target and the A owner, stays.
  Name owner;
  size_t next = 0;
  size_t off = resp.question.end;
  ASSERT_EQ(readName(ByteView(out.data(), len), off, owner, next), Error::kNone);
  EXPECT_EQ(owner.toString(), "x.a.");
  Name target;
  size_t after = 0;
  ASSERT_EQ(readName(ByteView(out.data(), len), next + 10, target, after), Error::kNone);
  EXPECT_EQ(target.toString(), "y.b.");
  ASSERT_EQ(readName(ByteView(out.data(), len), after, owner, next), Error::kNone);
  EXPECT_EQ(owner.toString(), "y.b.");
  EXPECT_EQ(load32(out.data() + next + 10), 0xC0000201u);  // 192.0.2.1
  // The SOA's numbers survive the decompression of its names.
  EXPECT_TRUE(resp.has_soa);
  EXPECT_EQ(resp.soa_minimum, 0x10111213u);

  // Garbage in: no answer out (the caller answers SERVFAIL).
  const std::vector<uint8_t> junk(answer.begin(), answer.begin() + 20);
  EXPECT_EQ(Rewriter::revertAnswer(junk, client, q, o, out), 0u);
}

}  // namespace
}  // namespace nld::dns::rewrite
