// The template plugin's decisions (CoreDNS 1.10 plugin/template semantics) and its records
// (Go templates rendered, parsed by libzscanner). The answers themselves are compared with the
// reference binary in tests/integration/test_template.py.
#include "plugin/template.h"

#include <gtest/gtest.h>

#include <vector>

namespace nld::plugin {
namespace {

using Verdict = TemplatePlugin::Verdict;

struct Asked {
  TemplatePlugin::Decision d;
  dns::Response r;
};

Asked ask(const TemplatePlugin& p, const char* qname, uint16_t qtype, uint16_t qclass = 1) {
  std::vector<uint8_t> pkt(512);
  pkt.resize(dns::buildQuery(0x4242, *dns::Name::fromString(qname), qtype, qclass, dns::flag::RD,
                             false, 0, false, dns::MutableBytes(pkt)));
  dns::Query q;
  EXPECT_EQ(dns::parseQuery(dns::ByteView(pkt), q), dns::QueryStatus::kOk);
  static std::vector<uint8_t> out(65535);
  Asked a;
  a.d = p.decide(dns::ByteView(pkt), q, "192.0.2.7", dns::MutableBytes(out));
  if (a.d.verdict == Verdict::kAnswer) {
    EXPECT_EQ(dns::parseResponse(dns::ByteView(out.data(), a.d.len), a.r), dns::Error::kNone);
    EXPECT_TRUE(a.r.header.aa());
    EXPECT_EQ(a.r.header.id, 0x4242);
  }
  return a;
}

config::TemplateConfig tmpl(uint16_t qclass, uint16_t qtype, std::vector<std::string> zones) {
  config::TemplateConfig t;
  t.qclass = qclass;
  t.qtype = qtype;
  t.zones = std::move(zones);
  return t;
}

TEST(TemplatePlugin, RecipesAndOrder) {
  auto aaaa = tmpl(1, 28, {"example.org."});  // AAAA filter: NODATA
  auto junk = tmpl(255, 255, {"svc.cluster.local.svc.cluster.local."});
  junk.rcode = 3;
  auto mx = tmpl(1, 15, {"example.org."});
  mx.match = {"^ok\\."};
  auto caa = tmpl(255, 257, {"."});
  caa.rcode = 2;
  const TemplatePlugin p({aaaa, junk, mx, caa});
  auto a = ask(p, "www.example.org.", 28);
  EXPECT_EQ(a.d.verdict, Verdict::kAnswer);
  EXPECT_EQ(a.r.header.rcode(), 0);
  EXPECT_EQ(a.r.header.ancount, 0);
  EXPECT_EQ(ask(p, "www.example.org.", 255).d.verdict, Verdict::kAnswer);  // ANY fits any type
  EXPECT_EQ(ask(p, "www.example.org.", 28, 3).d.verdict, Verdict::kNext);  // class CH
  EXPECT_EQ(ask(p, "www.example.org.", 1).d.verdict, Verdict::kNext);
  EXPECT_EQ(ask(p, "other.net.", 28).d.verdict, Verdict::kNext);
  a = ask(p, "x.svc.cluster.local.svc.cluster.local.", 1);
  EXPECT_EQ(a.d.verdict, Verdict::kAnswer);
  EXPECT_EQ(a.r.header.rcode(), 3);
  EXPECT_EQ(ask(p, "OK.example.org.", 15).d.verdict, Verdict::kAnswer);  // matched lower-cased
  // A regex miss without fallthrough ends the search: a bare SERVFAIL, as the reference.
  a = ask(p, "junk.example.org.", 15);
  EXPECT_EQ(a.d.verdict, Verdict::kError);
  EXPECT_EQ(a.d.rcode, 2);
  a = ask(p, "x.other.net.", 257);
  EXPECT_EQ(a.d.verdict, Verdict::kError);
  EXPECT_EQ(a.d.rcode, 2);
}

TEST(TemplatePlugin, Fallthrough) {
  auto t = tmpl(255, 1, {"example.org."});
  t.match = {"^a\\."};
  t.fallthrough = true;
  t.fallthrough_zones = {"sub.example.org."};
  const TemplatePlugin p({t});
  EXPECT_EQ(ask(p, "b.sub.example.org.", 1).d.verdict, Verdict::kNext);
  EXPECT_EQ(ask(p, "b.example.org.", 1).d.verdict, Verdict::kError);
  EXPECT_EQ(ask(p, "a.example.org.", 1).d.verdict, Verdict::kAnswer);
}

TEST(TemplatePlugin, Records) {
  auto t = tmpl(1, 255, {"example.org.", "tpl.example.org."});
  t.match = {"^(?P<host>[a-z]+)-(?P<num>[0-9]+)\\."};
  t.answer = {"{{ .Name }} 60 IN A 10.0.0.{{ .Group.num }}", "{{ .Name }} TXT \"{{ .Zone }}\""};
  t.authority = {"{{ .Zone }} 60 NS ns.{{ .Zone }}"};
  t.additional = {"ns.{{ .Zone }} 60 AAAA ::{{ index .Match 2 }}"};
  const TemplatePlugin p({t});
  auto a = ask(p, "web-7.tpl.example.org.", 1);
  ASSERT_EQ(a.d.verdict, Verdict::kAnswer);
  EXPECT_EQ(a.r.header.ancount, 2);
  EXPECT_EQ(a.r.header.nscount, 1);
  EXPECT_EQ(a.r.header.arcount, 1);
  ASSERT_EQ(a.r.rrs.size(), 4u);
  EXPECT_EQ(a.r.rrs[0].type, dns::type::A);
  EXPECT_EQ(a.r.rrs[1].type, dns::type::TXT);
  EXPECT_EQ(a.r.rrs[2].type, dns::type::NS);
  EXPECT_EQ(a.r.rrs[2].section, 1);
  EXPECT_EQ(a.r.rrs[3].type, dns::type::AAAA);
  EXPECT_EQ(a.r.rrs[3].section, 2);
  EXPECT_EQ(a.r.min_ttl, 60u);  // 60 everywhere but the TXT's miekg/dns default of 3600
  // A record that does not parse: SERVFAIL (CoreDNS returns the error).
  auto bad = tmpl(1, 1, {"example.org."});
  bad.answer = {"{{ .Name }} 60 IN A not-an-address"};
  EXPECT_EQ(ask(TemplatePlugin({bad}), "x.example.org.", 1).d.verdict, Verdict::kError);
  // index out of range at execution: SERVFAIL too.
  auto oob = tmpl(1, 1, {"example.org."});
  oob.answer = {"{{ .Name }} 60 IN A 10.0.0.{{ index .Match 3 }}"};
  EXPECT_EQ(ask(TemplatePlugin({oob}), "x.example.org.", 1).d.verdict, Verdict::kError);
}

}  // namespace
}  // namespace nld::plugin
