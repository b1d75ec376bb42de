// Grammar: keys, braces, comments, quotes, env substitution, snippets, CIDR keys, directives.
#include <gtest/gtest.h>

#include "test_support.h"

namespace nld::config {
namespace {

using testing::errorOf;
using testing::fakeOptions;
using testing::parse;

std::vector<std::string> zonesOf(const ServerBlock& b) {
  std::vector<std::string> out;
  for (const auto& k : b.keys) out.push_back(k.zone + ":" + std::to_string(k.port));
  return out;
}

TEST(Keys, SeveralKeysCommasAndContinuation) {
  const Corefile cf = parse("a.org b.org:54, c.org,\n  d.org,e.org {\n}\n");
  ASSERT_EQ(cf.blocks.size(), 1u);
  EXPECT_EQ(zonesOf(cf.blocks[0]), (std::vector<std::string>{"a.org.:53", "b.org.:54", "c.org.:53",
                                                             "d.org.:53", "e.org.:53"}));
}

TEST(Keys, NormalisationAndSchemes) {
  const Corefile cf = parse("dns://Example.ORG.:1053 :54 {\n}\n");
  EXPECT_EQ(zonesOf(cf.blocks[0]), (std::vector<std::string>{"example.org.:1053", ".:54"}));
  EXPECT_CONFIG_ERROR("tls://example.org {\n}\n", 1,
                      "scheme tls:// is not supported by node-cache");
  EXPECT_CONFIG_ERROR("\nhttps://. {\n}\n", 2, "scheme https:// is not supported");
  EXPECT_CONFIG_ERROR("grpc://. {\n}\n", 1, "scheme grpc:// is not supported");
  EXPECT_CONFIG_ERROR("quic://. {\n}\n", 1, "scheme quic:// is not supported");
  EXPECT_CONFIG_ERROR("foo://. {\n}\n", 1, "unknown scheme foo");
  EXPECT_CONFIG_ERROR("example.org:99999 {\n}\n", 1, "invalid port 99999");
  EXPECT_CONFIG_ERROR("example.org: {\n}\n", 1, "expecting data after last colon");
  EXPECT_CONFIG_ERROR("exa$mple.org {\n}\n", 1, "is not a valid domain name");
  EXPECT_CONFIG_ERROR("a..org {\n}\n", 1, "is not a valid domain name");
  EXPECT_CONFIG_ERROR(std::string(64, 'a') + ".org {\n}\n", 1, "is not a valid domain name");
}

TEST(Keys, CidrExpandsToReverseZones) {
  const Corefile cf = parse(
      "10.0.0.0/8 172.16.0.0/12:1053 192.168.1.0/24 fd00::/8 2001:db8::/32:53 0.0.0.0/0 {\n}\n");
  const auto z = zonesOf(cf.blocks[0]);
  ASSERT_EQ(z.size(), 1u + 16u + 1u + 1u + 1u + 1u);
  EXPECT_EQ(z[0], "10.in-addr.arpa.:53");
  EXPECT_EQ(z[1], "16.172.in-addr.arpa.:1053");
  EXPECT_EQ(z[16], "31.172.in-addr.arpa.:1053");
  EXPECT_EQ(z[17], "1.168.192.in-addr.arpa.:53");
  EXPECT_EQ(z[18], "d.f.ip6.arpa.:53");
  EXPECT_EQ(z[19], "8.b.d.0.1.0.0.2.ip6.arpa.:53");
  EXPECT_EQ(z[20], "in-addr.arpa.:53");
  // Host bits are masked like Go's net.ParseCIDR.
  EXPECT_EQ(zonesOf(parse("10.1.2.3/16 {\n}\n").blocks[0]),
            std::vector<std::string>{"1.10.in-addr.arpa.:53"});
  EXPECT_EQ(parse("fd00::/7 {\n}\n").blocks[0].keys.size(), 2u);
  EXPECT_CONFIG_ERROR("10.0.0.0/33 {\n}\n", 1, "is not a valid CIDR");
  EXPECT_CONFIG_ERROR("10.0.0/8 {\n}\n", 1, "is not a valid CIDR");
  EXPECT_CONFIG_ERROR("fd00::/129 {\n}\n", 1, "is not a valid CIDR");
}

TEST(Grammar, CommentsQuotesAndCarriageReturns) {
  const Corefile cf = parse(
      "# leading comment\r\n"
      ".:53 { # trailing\r\n"
      "  log Example.org \"a \\\"quoted\\\" \\d format\"#comment after quote\r\n"
      "  prometheus :9253#comment mid-token\r\n"
      "}\r\n");
  ASSERT_EQ(cf.blocks[0].logs.size(), 1u);
  EXPECT_EQ(cf.blocks[0].logs[0].format, "a \"quoted\" \\d format");
  EXPECT_EQ(cf.blocks[0].logs[0].names, std::vector<std::string>{"example.org."});
  EXPECT_EQ(*cf.blocks[0].prometheus, ":9253");
  EXPECT_CONFIG_ERROR(". {\n log \"unterminated\n}\n", 2, "unterminated quoted string");
  // Quoted braces are plain text.
  EXPECT_EQ(parse(". {\n log . \"}\"\n}\n").blocks[0].logs[0].format, "}");
}

TEST(Grammar, MultiLineQuotedTokenKeepsLineNumbers) {
  EXPECT_CONFIG_ERROR(". {\n log . \"a\nb\"\n bogus\n}\n", 4, "Unknown directive 'bogus'");
}

TEST(Grammar, BracesOnOtherLinesAndBracelessSingleBlock) {
  const Corefile a = parse("example.org\n{\n errors\n}\n");
  EXPECT_TRUE(a.blocks[0].errors);
  const Corefile b = parse(".:53\nerrors\ncache 30\nforward . 1.1.1.1\n");
  ASSERT_EQ(b.blocks.size(), 1u);
  EXPECT_TRUE(b.blocks[0].errors);
  EXPECT_EQ(b.blocks[0].cache->success_max_ttl, 30u);
  const Corefile c = parse("a.org { errors }\nb.org {\n cache { success 5 } \n}");
  EXPECT_TRUE(c.blocks[0].errors);
  EXPECT_EQ(c.blocks[1].cache->success_capacity, 5u);
  EXPECT_CONFIG_ERROR(". {\n errors\n", 2, "unexpected EOF, expected '}'");
  EXPECT_CONFIG_ERROR(". {\n errors\n}\n}\n", 4, "Unexpected '}'");
  EXPECT_CONFIG_ERROR(". {\n {\n}\n", 2, "Unexpected '{'");
  EXPECT_CONFIG_ERROR("a.org, {\n}\n", 1, "Expected another address but had '{'");
  EXPECT_CONFIG_ERROR("a.org,", 1, "unexpected EOF, expected another address");
  EXPECT_CONFIG_ERROR("{\n errors\n}\n", 1, "server block without any key");
  // Directive order is irrelevant: the same config in another order.
  EXPECT_EQ(dump(parse(". {\n forward . 1.1.1.1\n errors\n cache 5\n}\n")),
            dump(parse(". {\n cache 5\n errors\n forward . 1.1.1.1\n}\n")));
}

TEST(Grammar, NestingIsBounded) {
  std::string s = ". {\n cache";
  for (int i = 0; i < 40; ++i) s += " {\n a";
  EXPECT_NE(errorOf(s).find("nested too deeply"), std::string::npos) << errorOf(s);
}

TEST(Env, SubstitutionInKeysAndArguments) {
  const ParseOptions o = fakeOptions({{"ZONE", "Cluster.Local"},
                                      {"PORT", "1053"},
                                      {"UP", "10.96.0.10"},
                                      {"NESTED", "{$UP}"},
                                      {"TTL", "30"}});
  const Corefile cf = parseCorefile(
      "{$ZONE}:{%PORT%} {\n forward . {$NESTED}:5353\n cache {$TTL}{$UNSET}\n}\n", "Corefile", o);
  EXPECT_EQ(cf.blocks[0].keys[0].zone, "cluster.local.");
  EXPECT_EQ(cf.blocks[0].keys[0].port, 1053);
  ASSERT_EQ(cf.blocks[0].forwards[0].to.size(), 1u);
  EXPECT_EQ(cf.blocks[0].forwards[0].to[0].label(), "10.96.0.10:5353");
  EXPECT_EQ(cf.blocks[0].cache->success_max_ttl, 30u);
  const ParseOptions loop = fakeOptions({{"A", "x{$A}"}});
  EXPECT_NE(errorOf(". {\n log {$A}\n}\n", loop).find("Corefile:2: environment variable"),
            std::string::npos);
}

TEST(Snippets, DefineImportAndNest) {
  const Corefile cf = parse(
      "(common) {\n  errors\n  cache 30\n}\n"
      "(fwd) {\n  force_tcp\n  max_fails 5\n}\n"
      ". {\n  import common\n  forward . 1.1.1.1 {\n    import fwd\n  }\n}\n"
      "example.org {\n  import common\n}\n");
  ASSERT_EQ(cf.blocks.size(), 2u);
  EXPECT_TRUE(cf.blocks[0].errors);
  EXPECT_EQ(cf.blocks[0].cache->success_max_ttl, 30u);
  EXPECT_TRUE(cf.blocks[0].forwards[0].force_tcp);
  EXPECT_EQ(cf.blocks[0].forwards[0].max_fails, 5u);
  EXPECT_TRUE(cf.blocks[1].errors);
  // A whole server block from a snippet.
  const Corefile blk = parse("(blk) {\n a.org {\n errors\n }\n}\nimport blk\n");
  ASSERT_EQ(blk.blocks.size(), 1u);
  EXPECT_EQ(blk.blocks[0].keys[0].zone, "a.org.");
  EXPECT_CONFIG_ERROR("(s) {\n}\n(s) {\n}\n. {\n}\n", 3,
                      "redeclaration of previously declared snippet s");
  EXPECT_CONFIG_ERROR("(s)\n. {\n}\n", 1, "must be followed by '{'");
  EXPECT_CONFIG_ERROR("(s) {\n errors\n", 2, "unexpected EOF in snippet");
  // Errors inside a snippet point at the snippet's own line.
  EXPECT_CONFIG_ERROR("(s) {\n  frob\n}\n. {\n import s\n}\n", 2, "Unknown directive 'frob'");
}

TEST(Snippets, RecursionIsBounded) {
  const std::string err = errorOf("(s) {\n import s\n}\n. {\n import s\n}\n");
  EXPECT_NE(err.find("import cycle"), std::string::npos) << err;
  // Tail-recursive self import is bounded too, by the expansion count or the nesting limit.
  const std::string err2 = errorOf("(s) {\n errors\n import s\n}\n. {\n import s\n}\n");
  EXPECT_FALSE(err2.empty());
  // Exponential fan-out (100 x 100 x 100 log lines) hits the token bound, not memory.
  std::string fan = "(a) {\n";
  for (int i = 0; i < 100; ++i) fan += " log\n";
  fan += "}\n(b) {\n";
  for (int i = 0; i < 100; ++i) fan += " import a\n";
  fan += "}\n(c) {\n";
  for (int i = 0; i < 100; ++i) fan += " import b\n";
  fan += "}\n. {\n import c\n}\n";
  const std::string err3 = errorOf(fan);
  EXPECT_NE(err3.find("too large after imports"), std::string::npos) << err3;
}

TEST(Directives, UnknownAndUnsupported) {
  EXPECT_CONFIG_ERROR(". {\n errors\n frobnicate 1 2\n}\n", 3, "Unknown directive 'frobnicate'");
  EXPECT_CONFIG_ERROR(". {\n ready\n}\n", 2, "plugin 'ready' is not supported by node-cache");
  EXPECT_CONFIG_ERROR(". {\n kubernetes cluster.local\n}\n", 2,
                      "plugin 'kubernetes' is not supported by node-cache");
  EXPECT_CONFIG_ERROR(". {\n\n dns64 {\n translate_all\n }\n}\n", 3,
                      "plugin 'dns64' is not supported");
  EXPECT_CONFIG_ERROR(". {\n dns64\n}\n", 2, "plugin 'dns64' is not supported");
  EXPECT_CONFIG_ERROR(". {\n \"errors\" x\n}\n", 2, "plugin/errors: Wrong argument count");
}

TEST(Directives, OncePerBlock) {
  for (const char* d : {"errors", "loop", "reload", "prometheus", "cache"}) {
    SCOPED_TRACE(d);
    EXPECT_CONFIG_ERROR(std::string(". {\n ") + d + "\n\n " + d + "\n}\n", 4,
                        "this plugin can only be used once per Server Block");
  }
  // log, forward, bind and health may repeat.
  const Corefile cf = parse(
      ". {\n log\n log . {combined}\n forward example.org 1.1.1.1\n forward . 8.8.8.8\n"
      " bind 10.0.0.1\n bind 10.0.0.2 10.0.0.1\n health :8081\n health :8082\n}\n");
  EXPECT_EQ(cf.blocks[0].logs.size(), 2u);
  EXPECT_EQ(cf.blocks[0].forwards.size(), 2u);
  EXPECT_EQ(cf.blocks[0].forwards[0].from, "example.org.");
  EXPECT_EQ(cf.blocks[0].forwards[1].from, ".");
  EXPECT_EQ(cf.blocks[0].bind, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(cf.blocks[0].health->address, ":8082");
}

}  // namespace
}  // namespace nld::config
