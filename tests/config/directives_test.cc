// Directive syntax: good forms and bad forms (each bad one with its line number and message).
#include <gtest/gtest.h>

#include <chrono>

#include "test_support.h"

namespace nld::config {
namespace {

using nld::test::TempDir;
using testing::errorOf;
using testing::fakeOptions;
using testing::parse;

const ServerBlock& only(const Corefile& cf) { return cf.blocks.at(0); }

TEST(Errors, GoodForms) {
  const ServerBlock b =
      only(parse(". {\n errors {\n  stacktrace\n  consolidate 5m \".* i/o timeout$\" warning\n"
                 "  consolidate 30s ^Failed\n }\n}\n"));
  EXPECT_TRUE(b.errors);
  EXPECT_TRUE(b.errors_config.stacktrace);
  ASSERT_EQ(b.errors_config.consolidate.size(), 2u);
  EXPECT_EQ(b.errors_config.consolidate[0].period, std::chrono::minutes(5));
  EXPECT_EQ(b.errors_config.consolidate[0].pattern, ".* i/o timeout$");
  EXPECT_EQ(b.errors_config.consolidate[0].level, "warning");
  EXPECT_EQ(b.errors_config.consolidate[1].level, "error");
  // As Go's Duration.String() prints it in the consolidated line.
  EXPECT_EQ(b.errors_config.consolidate[0].period_text, "5m0s");
  EXPECT_EQ(b.errors_config.consolidate[1].period_text, "30s");
}

TEST(Errors, BadForms) {
  EXPECT_CONFIG_ERROR(". {\n errors stacktrace\n}\n", 2, "plugin/errors: Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n errors {\n  consolidate 5m\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n errors {\n  consolidate 5 x\n }\n}\n", 3, "invalid duration '5'");
  EXPECT_CONFIG_ERROR(". {\n errors {\n  consolidate 5s x loud\n }\n}\n", 3,
                      "unknown log level argument in consolidate: loud");
  EXPECT_CONFIG_ERROR(". {\n errors {\n  stacktrace 1\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n errors {\n  verbose\n }\n}\n", 3, "unknown property 'verbose'");
  // Go RE2 syntax, checked at parse time with the line of the pattern.
  EXPECT_CONFIG_ERROR(". {\n errors {\n  consolidate 5s \"(unclosed\"\n }\n}\n", 3,
                      "plugin/errors: consolidate: invalid regexp '(unclosed': missing ): "
                      "(unclosed");
  EXPECT_CONFIG_ERROR(". {\n errors {\n  consolidate 5s a(?=b)\n }\n}\n", 3,
                      "invalid regexp 'a(?=b)'");  // lookahead: not RE2
}

TEST(Bufsize, FormsAndRange) {
  EXPECT_FALSE(only(parse(". {\n forward . 1.1.1.1\n}\n")).bufsize.has_value());
  EXPECT_EQ(only(parse(". {\n bufsize\n}\n")).bufsize, 1232);  // CoreDNS's default
  EXPECT_EQ(only(parse(". {\n bufsize 512\n}\n")).bufsize, 512);
  EXPECT_EQ(only(parse(". {\n bufsize 4096\n bufsize 1400\n}\n")).bufsize, 1400);
  EXPECT_CONFIG_ERROR(". {\n bufsize 511\n}\n", 2, "buffer size must be a number from 512 to 4096");
  EXPECT_CONFIG_ERROR(". {\n bufsize 4097\n}\n", 2, "from 512 to 4096: '4097'");
  EXPECT_CONFIG_ERROR(". {\n bufsize big\n}\n", 2, "from 512 to 4096: 'big'");
  EXPECT_CONFIG_ERROR(". {\n bufsize 512 1024\n}\n", 2, "Wrong argument count");
}

TEST(Loadbalance, RoundRobinOnly) {
  EXPECT_FALSE(only(parse(". {\n forward . 1.1.1.1\n}\n")).loadbalance);
  EXPECT_TRUE(only(parse(". {\n loadbalance\n}\n")).loadbalance);
  EXPECT_TRUE(only(parse(". {\n loadbalance round_robin\n}\n")).loadbalance);
  EXPECT_CONFIG_ERROR(". {\n loadbalance weighted /w\n}\n", 2, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n loadbalance random\n}\n", 2, "unknown policy: random");
  EXPECT_CONFIG_ERROR(". {\n loadbalance {\n }\n}\n", 2, "does not take a block");
}

TEST(Hosts, Defaults) {
  EXPECT_FALSE(only(parse(". {\n forward . 1.1.1.1\n}\n")).hosts.has_value());
  const HostsConfig h = *only(parse("example.org cluster.local {\n hosts\n}\n")).hosts;
  EXPECT_EQ(h.file, "/etc/hosts");
  EXPECT_EQ(h.zones, (std::vector<std::string>{"example.org.", "cluster.local."}));
  EXPECT_EQ(h.ttl, 3600u);
  EXPECT_TRUE(h.reverse);
  EXPECT_EQ(h.reload, std::chrono::seconds(5));
  EXPECT_FALSE(h.fallthrough);
  EXPECT_TRUE(h.inline_lines.empty());
  EXPECT_EQ(h.line, 2);
}

TEST(Hosts, GoodForms) {
  const HostsConfig h =
      *only(parse(". {\n hosts /tmp/h example.org 10.0.0.0/24 {\n  10.0.0.1   a.example.org b\n"
                  "  fd00::1 a.example.org\n  ttl 60\n  no_reverse\n  reload 0\n"
                  "  fallthrough example.org\n }\n}\n"))
           .hosts;
  EXPECT_EQ(h.file, "/tmp/h");
  EXPECT_EQ(h.zones, (std::vector<std::string>{"example.org.", "0.0.10.in-addr.arpa."}));
  EXPECT_EQ(h.inline_lines,
            (std::vector<std::string>{"10.0.0.1 a.example.org b", "fd00::1 a.example.org"}));
  EXPECT_EQ(h.ttl, 60u);
  EXPECT_FALSE(h.reverse);
  EXPECT_EQ(h.reload, std::chrono::seconds(0));
  EXPECT_TRUE(h.fallthrough);
  EXPECT_EQ(h.fallthrough_zones, (std::vector<std::string>{"example.org."}));
  const HostsConfig all = *only(parse(". {\n hosts {\n  fallthrough\n }\n}\n")).hosts;
  EXPECT_TRUE(all.fallthrough);
  EXPECT_TRUE(all.fallthrough_zones.empty());
}

TEST(Hosts, BadForms) {
  EXPECT_CONFIG_ERROR(". {\n hosts\n hosts\n}\n", 3,
                      "plugin/hosts: this plugin can only be used once per Server Block");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  ttl\n }\n}\n", 3, "ttl needs a time in second");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  ttl x\n }\n}\n", 3, "ttl needs a number of second");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  ttl 0\n }\n}\n", 3, "ttl provided is invalid");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  ttl 65536\n }\n}\n", 3, "ttl provided is invalid");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  reload\n }\n}\n", 3,
                      "reload needs a duration (zero seconds to disable)");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  reload soon\n }\n}\n", 3,
                      "invalid duration for reload 'soon'");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  reload -1s\n }\n}\n", 3,
                      "invalid negative duration for reload '-1s'");
  // Inline entries only before `fallthrough` (CoreDNS), else an unknown property.
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  fallthrough\n  10.0.0.1 a\n }\n}\n", 4,
                      "plugin/hosts: unknown property '10.0.0.1'");
  EXPECT_CONFIG_ERROR(". {\n hosts {\n  ttl 5 {\n  }\n }\n}\n", 3, "does not take a block");
  EXPECT_CONFIG_ERROR(". {\n hosts /h bad..zone\n}\n", 2, "plugin/hosts:");
}

TEST(Template, Forms) {
  const ServerBlock b = only(parse(
      "example.org cluster.local {\n template IN AAAA {\n  rcode NOERROR\n }\n"
      " template any any svc.cluster.local.svc.cluster.local {\n  rcode nxdomain\n }\n"
      " template ANY A example.org {\n  match ^a\\. ^b\\.\n  rcode NXDOMAIN\n  fallthrough\n }\n"
      "}\n"));
  ASSERT_EQ(b.templates.size(), 3u);
  EXPECT_EQ(b.templates[0].qclass, 1);
  EXPECT_EQ(b.templates[0].qtype, 28);
  EXPECT_EQ(b.templates[0].zones, (std::vector<std::string>{"example.org.", "cluster.local."}));
  EXPECT_EQ(b.templates[0].rcode, 0);
  EXPECT_EQ(b.templates[1].qclass, 255);
  EXPECT_EQ(b.templates[1].zones,
            (std::vector<std::string>{"svc.cluster.local.svc.cluster.local."}));
  EXPECT_EQ(b.templates[1].rcode, 3);
  EXPECT_EQ(b.templates[2].match, (std::vector<std::string>{"^a\\.", "^b\\."}));
  EXPECT_TRUE(b.templates[2].fallthrough);
}

TEST(Template, BadFormsAndTheRefusedSubset) {
  EXPECT_CONFIG_ERROR(". {\n template IN\n}\n", 2, "plugin/template: Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n template XX A\n}\n", 2, "invalid query class XX");
  EXPECT_CONFIG_ERROR(". {\n template IN BOGUS\n}\n", 2, "invalid RR class BOGUS");
  EXPECT_CONFIG_ERROR(". {\n template IN A {\n  rcode MAYBE\n }\n}\n", 3, "unknown rcode MAYBE");
  EXPECT_CONFIG_ERROR(". {\n template IN A {\n  match \"(x\"\n }\n}\n", 3,
                      "could not parse regex: (x");
  EXPECT_CONFIG_ERROR(". {\n template IN A {\n  match\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n template IN A {\n  frob\n }\n}\n", 3, "Wrong argument count");
  // Record templates: compiled at parse time; actions outside the implemented subset are
  // refused with the line, never ignored.
  for (const char* section : {"answer", "additional", "authority"}) {
    const ServerBlock b =
        only(parse(std::string(". {\n template IN A {\n  ") + section +
                   " \"{{ .Name }} 60 IN A 10.0.0.{{ index .Match 1 }}\"\n }\n}\n"));
    EXPECT_EQ(b.templates.at(0).answer.size() + b.templates.at(0).additional.size() +
                  b.templates.at(0).authority.size(),
              1u);
    EXPECT_CONFIG_ERROR(std::string(". {\n template IN A {\n\n  ") + section +
                            " \"{{ .Message.Id }} 60 IN A 10.0.0.1\"\n }\n}\n",
                        4, "could not compile template");
    EXPECT_CONFIG_ERROR(std::string(". {\n template IN A {\n  ") + section + "\n }\n}\n", 3,
                        "Wrong argument count");
  }
  EXPECT_CONFIG_ERROR(". {\n template IN A {\n  answer \"{{ if .Name }}x{{ end }}\"\n }\n}\n", 3,
                      "is not supported by node-cache");
  EXPECT_CONFIG_ERROR(". {\n template IN A {\n  answer \"{{ .Name\"\n }\n}\n", 3,
                      "unclosed action");
}

TEST(Rewrite, RulesKeptInOrderAndBlocksFlattened) {
  const ServerBlock b =
      only(parse(". {\n rewrite name suffix .svc. .example.\n rewrite continue type ANY HINFO\n"
                 " rewrite stop {\n  name regex (.*)\\.a\\.$ {1}.b.\n  answer name (.*)\\.b\\.$ "
                 "{1}.a.\n }\n}\n"));
  ASSERT_EQ(b.rewrites.size(), 3u);
  EXPECT_EQ(b.rewrites[0], (std::vector<std::string>{"name", "suffix", ".svc.", ".example."}));
  EXPECT_EQ(b.rewrites[1], (std::vector<std::string>{"continue", "type", "ANY", "HINFO"}));
  EXPECT_EQ(b.rewrites[2],
            (std::vector<std::string>{"stop", "name", "regex", "(.*)\\.a\\.$", "{1}.b.", "answer",
                                      "name", "(.*)\\.b\\.$", "{1}.a."}));
}

TEST(Rewrite, RefusedRulesNameTheirLine) {
  const std::string head = ". {\n forward . 1.1.1.1\n";
  EXPECT_CONFIG_ERROR(head + " rewrite edns0 local set 0xffee abcd\n}\n", 3,
                      "plugin/rewrite: 'edns0' rules are not supported by node-cache");
  EXPECT_CONFIG_ERROR(head + " rewrite ttl example.org. 10\n}\n", 3,
                      "'ttl' rules are not supported by node-cache");
  EXPECT_CONFIG_ERROR(head + " rewrite continue cname exact a. b.\n}\n", 3,
                      "'cname' rules are not supported by node-cache");
  EXPECT_CONFIG_ERROR(head + " rewrite rcode a. SERVFAIL NXDOMAIN\n}\n", 3,
                      "'rcode' rules are not supported by node-cache");
  EXPECT_CONFIG_ERROR(head + " rewrite name a.\n}\n", 3, "at least two arguments");
  EXPECT_CONFIG_ERROR(head + " rewrite type A\n}\n", 3, "exactly two arguments");
  EXPECT_CONFIG_ERROR(head + " rewrite type A BOGUS\n}\n", 3, "invalid type \"BOGUS\"");
  EXPECT_CONFIG_ERROR(head + " rewrite class IN XX\n}\n", 3, "invalid class \"XX\"");
  EXPECT_CONFIG_ERROR(head + " rewrite name fuzzy a. b.\n}\n", 3, "received: fuzzy");
  EXPECT_CONFIG_ERROR(head + " rewrite name regex ( b.\n}\n", 3, "invalid regex pattern");
  EXPECT_CONFIG_ERROR(head + " rewrite name regex (a) {2}.b.\n}\n", 3, "capture groups");
  EXPECT_CONFIG_ERROR(head + " rewrite answer name a b\n}\n", 3, "must begin with a name rule");
  EXPECT_CONFIG_ERROR(head + " rewrite name exact a. b. answer bogus x y\n}\n", 3,
                      "invalid type \"bogus\" for answer rule");
  EXPECT_CONFIG_ERROR(head + " rewrite name exact a. b. extra\n}\n", 3,
                      "invalid arguments for a name rule's answer rule");
  EXPECT_CONFIG_ERROR(head + " rewrite name suffix a. b. answer auto answer name x y\n}\n", 3,
                      "cannot be combined");
  EXPECT_CONFIG_ERROR(head + " rewrite name suffix a. b. {\n }\n}\n", 3, "a block follows only");
  EXPECT_CONFIG_ERROR(head + " rewrite\n}\n", 3, "no rule type specified");
  EXPECT_CONFIG_ERROR(head + " rewrite stop\n}\n", 3, "must begin with a rule type");
  EXPECT_CONFIG_ERROR(head + " rewrite foo a b\n}\n", 3, "invalid rule type \"foo\"");
}

TEST(Timeouts, Forms) {
  const ServerBlock b = only(parse(". {\n timeouts {\n  read 2s\n  write 30\n  idle 1m\n }\n}\n"));
  ASSERT_TRUE(b.timeouts.has_value());
  EXPECT_EQ(b.timeouts->read, std::chrono::milliseconds(2000));
  EXPECT_EQ(b.timeouts->write, std::chrono::milliseconds(30000));
  EXPECT_EQ(b.timeouts->idle, std::chrono::milliseconds(60000));
  EXPECT_FALSE(only(parse(". {\n forward . 1.1.1.1\n}\n")).timeouts.has_value());
  EXPECT_CONFIG_ERROR(". {\n timeouts\n}\n", 2, "timeouts block with no timeouts specified");
  EXPECT_CONFIG_ERROR(". {\n timeouts 5s\n}\n", 2, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n timeouts {\n  read 500ms\n }\n}\n", 3,
                      "timeout provided '500ms' needs to be between 1 second and 24 hours");
  EXPECT_CONFIG_ERROR(". {\n timeouts {\n  idle 25h\n }\n}\n", 3, "between 1 second and 24 hours");
  EXPECT_CONFIG_ERROR(". {\n timeouts {\n  read soon\n }\n}\n", 3, "invalid duration 'soon'");
  EXPECT_CONFIG_ERROR(". {\n timeouts {\n  dial 5s\n }\n}\n", 3, "unknown option: 'dial'");
  EXPECT_CONFIG_ERROR(". {\n timeouts {\n  read\n }\n}\n", 3, "Wrong argument count");
}

TEST(Log, Forms) {
  const ServerBlock b =
      only(parse(". {\n log\n log example.org\n log a.org B.org \"{remote} {name}\" {\n  class "
                 "denial ERROR\n }\n"
                 " log . {common}\n}\n"));
  ASSERT_EQ(b.logs.size(), 4u);
  EXPECT_EQ(b.logs[0].names, std::vector<std::string>{"."});
  EXPECT_EQ(b.logs[0].format, kCommonLogFormat);
  EXPECT_EQ(b.logs[0].classes, std::vector<std::string>{"all"});
  EXPECT_EQ(b.logs[1].names, std::vector<std::string>{"example.org."});
  EXPECT_EQ(b.logs[2].names, (std::vector<std::string>{"a.org.", "b.org."}));
  EXPECT_EQ(b.logs[2].format, "{remote} {name}");
  EXPECT_EQ(b.logs[2].classes, (std::vector<std::string>{"denial", "error"}));
  EXPECT_EQ(b.logs[3].format, kCommonLogFormat);
  EXPECT_CONFIG_ERROR(". {\n log {\n  class sometimes\n }\n}\n", 3, "invalid class 'sometimes'");
  EXPECT_CONFIG_ERROR(". {\n log {\n  class\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n log {\n  format x\n }\n}\n", 3, "unknown property 'format'");
}

TEST(Cache, DefaultsAndFullBlock) {
  const CacheConfig d = *only(parse(". {\n cache\n}\n")).cache;
  EXPECT_EQ(d.zones, std::vector<std::string>{"."});
  EXPECT_EQ(d.success_capacity, 10000u);
  EXPECT_EQ(d.success_max_ttl, 3600u);
  EXPECT_EQ(d.denial_max_ttl, 1800u);
  EXPECT_EQ(d.success_min_ttl, 5u);
  EXPECT_EQ(d.prefetch_amount, 0u);
  EXPECT_EQ(d.prefetch_duration, std::chrono::minutes(1));
  EXPECT_EQ(d.prefetch_percentage, 10u);
  EXPECT_FALSE(d.serve_stale);
  EXPECT_EQ(d.servfail_ttl, std::chrono::seconds(5));
  EXPECT_FALSE(d.keepttl);

  const CacheConfig c =
      *only(parse("example.org 10.0.0.0/8 {\n cache 60 Example.org sub.example.org {\n"
                  "  success 5000 120 10\n  denial 2000 60 0\n  prefetch 3 2m 20%\n"
                  "  serve_stale 30m VERIFY\n  servfail 0\n  disable success internal.example.org\n"
                  "  disable denial\n  keepttl\n }\n}\n"))
           .cache;
  EXPECT_EQ(c.zones, (std::vector<std::string>{"example.org.", "sub.example.org."}));
  EXPECT_EQ(c.success_capacity, 5000u);
  EXPECT_EQ(c.success_max_ttl, 120u);
  EXPECT_EQ(c.success_min_ttl, 10u);
  EXPECT_EQ(c.denial_capacity, 2000u);
  EXPECT_EQ(c.denial_max_ttl, 60u);
  EXPECT_EQ(c.denial_min_ttl, 0u);
  EXPECT_EQ(c.prefetch_amount, 3u);
  EXPECT_EQ(c.prefetch_duration, std::chrono::minutes(2));
  EXPECT_EQ(c.prefetch_percentage, 20u);
  ASSERT_TRUE(c.serve_stale);
  EXPECT_EQ(*c.serve_stale, std::chrono::minutes(30));
  EXPECT_TRUE(c.serve_stale_verify);
  EXPECT_EQ(c.servfail_ttl, std::chrono::seconds(0));
  EXPECT_EQ(c.disable_success, std::vector<std::string>{"internal.example.org."});
  EXPECT_EQ(c.disable_denial, std::vector<std::string>{"."});
  EXPECT_TRUE(c.keepttl);

  const CacheConfig z = *only(parse("a.org 10.0.0.0/8 {\n cache\n}\n")).cache;
  EXPECT_EQ(z.zones, (std::vector<std::string>{"a.org.", "10.in-addr.arpa."}));
  const CacheConfig s = *only(parse(". {\n cache {\n  serve_stale\n }\n}\n")).cache;
  EXPECT_EQ(*s.serve_stale, std::chrono::hours(1));
  EXPECT_FALSE(s.serve_stale_verify);
}

TEST(Cache, BadForms) {
  EXPECT_CONFIG_ERROR(". {\n cache 0\n}\n", 2, "cache TTL can not be zero or negative: 0");
  EXPECT_CONFIG_ERROR(". {\n cache -5\n}\n", 2, "cache TTL can not be zero or negative");
  EXPECT_CONFIG_ERROR(". {\n cache 30 bad$zone\n}\n", 2, "is not a valid domain name");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  success\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  success many\n }\n}\n", 3, "invalid integer 'many'");
  EXPECT_CONFIG_ERROR(". {\n cache {\n\n  success 10 0\n }\n}\n", 4,
                      "cache TTL can not be zero or negative: 0");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  denial 10 5 -1\n }\n}\n", 3,
                      "cache min TTL can not be negative: -1");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  denial 10 5 1 9\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  success -1\n }\n}\n", 3, "capacity can not be negative");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  prefetch\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  prefetch -1\n }\n}\n", 3,
                      "prefetch amount should be positive");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  prefetch 1 10\n }\n}\n", 3, "invalid duration '10'");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  prefetch 1 1m 20\n }\n}\n", 3,
                      "last character of percentage should be `%`");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  prefetch 1 1m 95%\n }\n}\n", 3,
                      "percentage should fall in range [10, 90]: 95");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  prefetch 1 1m 5%\n }\n}\n", 3, "[10, 90]: 5");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  serve_stale -1s\n }\n}\n", 3,
                      "invalid negative duration for serve_stale");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  serve_stale 1h later\n }\n}\n", 3,
                      "invalid value for serve_stale refresh mode: later");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  serve_stale 1h verify x\n }\n}\n", 3,
                      "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  servfail\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  servfail 6m\n }\n}\n", 3,
                      "caching SERVFAIL responses over 5 minutes is not permitted");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  servfail -1s\n }\n}\n", 3,
                      "invalid negative ttl for servfail");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  disable all\n }\n}\n", 3,
                      "cache type for disable must be \"success\" or \"denial\"");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  disable\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  keepttl 1\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  size 1\n }\n}\n", 3,
                      "plugin/cache: unknown property 'size'");
  EXPECT_CONFIG_ERROR(". {\n cache {\n  success 1 {\n  }\n }\n}\n", 3, "does not take a block");
}

TEST(Forward, UpstreamForms) {
  const ForwardConfig f =
      only(parse(". {\n forward . 1.1.1.1 8.8.8.8:5353 [2001:db8::1]:53 2001:db8::2 dns://9.9.9.9 "
                 "dns://9.9.9.10:54 fe80::1%eth0\n}\n"))
          .forwards[0];
  ASSERT_EQ(f.to.size(), 7u);
  EXPECT_EQ(f.to[0].label(), "1.1.1.1:53");
  EXPECT_EQ(f.to[1].label(), "8.8.8.8:5353");
  EXPECT_EQ(f.to[2].label(), "[2001:db8::1]:53");
  EXPECT_EQ(f.to[3].label(), "[2001:db8::2]:53");
  EXPECT_EQ(f.to[4].label(), "9.9.9.9:53");
  EXPECT_EQ(f.to[5].label(), "9.9.9.10:54");
  EXPECT_EQ(f.to[6].ip, "fe80::1%eth0");
  EXPECT_EQ(f.to[6].port, 53);
}

TEST(Forward, FullBlock) {
  const ForwardConfig f =
      only(parse(". {\n forward Example.ORG 1.1.1.1 {\n  except a.example.org B.example.org\n  "
                 "force_tcp\n"
                 "  prefer_udp\n  expire 30s\n  max_fails 0\n  max_connect_attempts 4\n"
                 "  policy sequential\n  health_check 2s no_rec domain Probe.Example.\n"
                 "  max_concurrent 1000\n  failfast_all_unhealthy_upstreams\n  next nxdomain "
                 "SERVFAIL\n"
                 "  failover REFUSED\n }\n}\n"))
          .forwards[0];
  EXPECT_EQ(f.from, "example.org.");
  EXPECT_EQ(f.except, (std::vector<std::string>{"a.example.org.", "b.example.org."}));
  EXPECT_TRUE(f.force_tcp);
  EXPECT_TRUE(f.prefer_udp);
  EXPECT_EQ(f.expire, std::chrono::seconds(30));
  EXPECT_EQ(f.max_fails, 0u);
  EXPECT_EQ(f.max_connect_attempts, 4u);
  EXPECT_EQ(f.policy, Policy::kSequential);
  EXPECT_EQ(f.health_check, std::chrono::seconds(2));
  EXPECT_FALSE(f.health_check_recursion_desired);
  EXPECT_EQ(f.health_check_domain, "probe.example.");
  EXPECT_EQ(f.max_concurrent, 1000u);
  EXPECT_TRUE(f.failfast_all_unhealthy);
  EXPECT_EQ(f.next_rcodes, (std::vector<uint8_t>{3, 2}));
  EXPECT_EQ(f.failover_rcodes, std::vector<uint8_t>{5});
  const Corefile rr = parse(". {\n forward . 1.1.1.1 {\n  policy round_robin\n }\n}\n");
  EXPECT_EQ(only(rr).forwards[0].policy, Policy::kRoundRobin);
  // A CIDR FROM keeps its first reverse zone.
  EXPECT_EQ(only(parse(". {\n forward 10.0.0.0/8 1.1.1.1\n}\n")).forwards[0].from,
            "10.in-addr.arpa.");
}

TEST(Forward, ResolvConf) {
  TempDir dir("nld-config-");
  const std::string good = dir.write("resolv.conf",
                                     "; comment\n#comment\ndomain x\nnameserver 10.0.0.1\n"
                                     "nameserver   fe80::1%eth1  \nnameserver\n");
  const ForwardConfig f = only(parse(". {\n forward . " + good + " 10.0.0.9\n}\n")).forwards[0];
  ASSERT_EQ(f.to.size(), 3u);
  EXPECT_EQ(f.to[0].label(), "10.0.0.1:53");
  EXPECT_EQ(f.to[1].label(), "[fe80::1]:53");
  EXPECT_EQ(f.to[2].label(), "10.0.0.9:53");
  const std::string none = dir.write("empty.conf", "search example.org\n");
  EXPECT_CONFIG_ERROR(". {\n forward . " + none + "\n}\n", 2, "no nameservers found in");
  const std::string bad = dir.write("bad.conf", "nameserver dns.example.org\n");
  EXPECT_CONFIG_ERROR(". {\n forward . " + bad + "\n}\n", 2, "invalid nameserver address");
  EXPECT_CONFIG_ERROR(". {\n forward . /nonexistent/resolv.conf\n}\n", 2,
                      "not an IP address or file: \"/nonexistent/resolv.conf\"");
  EXPECT_CONFIG_ERROR(". {\n forward . " + dir.path() + "\n}\n", 2, "not a regular file");
}

TEST(Forward, BadForms) {
  EXPECT_CONFIG_ERROR(". {\n forward .\n}\n", 2, "plugin/forward: Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n forward\n}\n", 2, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n forward . tls://1.1.1.1\n}\n", 2, "(tls://) are not supported");
  EXPECT_CONFIG_ERROR(". {\n forward . grpc://1.1.1.1\n}\n", 2, "'grpc://' is not supported");
  EXPECT_CONFIG_ERROR(". {\n forward . 1.1.1.1:0\n}\n", 2, "invalid port '0'");
  EXPECT_CONFIG_ERROR(". {\n forward . 1.1.1.1:http\n}\n", 2, "invalid port 'http'");
  std::string many = ". {\n forward .";
  for (int i = 1; i <= 16; ++i) many += " 10.0.0." + std::to_string(i);
  EXPECT_CONFIG_ERROR(many + "\n}\n", 2, "more than 15 TOs configured: 16");
  const std::string block = ". {\n forward . 1.1.1.1 {\n  ";
  const std::string end = "\n }\n}\n";
  EXPECT_CONFIG_ERROR(block + "tls\n" + end, 3, "'tls' is not supported by node-cache");
  EXPECT_CONFIG_ERROR(block + "tls_servername dns.google" + end, 3,
                      "'tls_servername' is not supported by node-cache");
  EXPECT_CONFIG_ERROR(block + "except" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "force_tcp yes" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "expire" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "expire 10" + end, 3, "invalid duration '10'");
  EXPECT_CONFIG_ERROR(block + "expire -1s" + end, 3, "expire can't be negative");
  EXPECT_CONFIG_ERROR(block + "max_fails -1" + end, 3, "max_fails can't be negative");
  EXPECT_CONFIG_ERROR(block + "max_fails two" + end, 3, "max_fails: invalid integer 'two'");
  EXPECT_CONFIG_ERROR(block + "max_fails 1 2" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "max_concurrent -5" + end, 3, "max_concurrent can't be negative");
  EXPECT_CONFIG_ERROR(block + "policy fastest" + end, 3, "unknown policy 'fastest'");
  EXPECT_CONFIG_ERROR(block + "health_check" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "health_check -1s" + end, 3, "health_check can't be negative");
  EXPECT_CONFIG_ERROR(block + "health_check 1s fast" + end, 3, "health_check: unknown option fast");
  EXPECT_CONFIG_ERROR(block + "health_check 1s domain" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "health_check 1s domain a..b" + end, 3,
                      "health_check: invalid domain name a..b");
  EXPECT_CONFIG_ERROR(block + "next" + end, 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "next NOPE" + end, 3, "NOPE is not a valid rcode");
  EXPECT_CONFIG_ERROR(block + "failover SERVFAIL bogus" + end, 3, "bogus is not a valid rcode");
  EXPECT_CONFIG_ERROR(block + "failfast_all_unhealthy_upstreams 1" + end, 3,
                      "Wrong argument count");
  EXPECT_CONFIG_ERROR(block + "spray" + end, 3, "plugin/forward: unknown property 'spray'");
}

TEST(Bind, AddressesInterfacesAndExcept) {
  const ServerBlock b =
      only(parse(". {\n bind 127.0.0.1 0:0::1 eth0\n bind lo {\n  except ::1\n }\n}\n"));
  EXPECT_EQ(b.bind, (std::vector<std::string>{"127.0.0.1", "::1", "10.0.0.5", "fe80::1%eth0"}));
  const ServerBlock e = only(parse(". {\n bind eth0 {\n  except fe80::1%eth0\n }\n}\n"));
  EXPECT_EQ(e.bind, std::vector<std::string>{"10.0.0.5"});
  EXPECT_CONFIG_ERROR(". {\n bind\n}\n", 2, "at least one address or interface name is expected");
  EXPECT_CONFIG_ERROR(". {\n bind 10.0.0.1 wlan7\n}\n", 2,
                      "not a valid IP address or interface name: \"wlan7\"");
  EXPECT_CONFIG_ERROR(". {\n bind 10.0.0.1 {\n  except\n }\n}\n", 3,
                      "at least one address or interface must be given to except subdirective");
  EXPECT_CONFIG_ERROR(". {\n bind 10.0.0.1 {\n  only 10.0.0.1\n }\n}\n", 3,
                      "invalid option \"only\"");
  EXPECT_CONFIG_ERROR(". {\n bind 10.0.0.1 {\n  except 10.0.0.1\n }\n}\n", 2, "no address left");
  EXPECT_CONFIG_ERROR(". {\n bind empty0\n}\n", 2, "no address left");
}

TEST(Bind, RealInterfacesByDefault) {
  // Without an injected lookup, interface names come from getifaddrs: "lo" exists everywhere.
  const ServerBlock b = only(parseCorefile(". {\n bind lo\n}\n", "Corefile", ParseOptions{}));
  EXPECT_NE(std::find(b.bind.begin(), b.bind.end(), "127.0.0.1"), b.bind.end());
  EXPECT_NE(errorOf(". {\n bind no-such-iface0\n}\n", ParseOptions{}).find("not a valid IP"),
            std::string::npos);
}

TEST(Reload, Forms) {
  EXPECT_EQ(only(parse(". {\n reload\n}\n")).reload->interval, std::chrono::seconds(30));
  const ReloadConfig r = *only(parse(". {\n reload 10s 2s\n}\n")).reload;
  EXPECT_EQ(r.interval, std::chrono::seconds(10));
  EXPECT_EQ(r.jitter, std::chrono::seconds(2));
  EXPECT_EQ(only(parse(". {\n reload 4s\n}\n")).reload->jitter, std::chrono::seconds(2));
  EXPECT_EQ(only(parse(". {\n reload 1m30s 1m\n}\n")).reload->jitter, std::chrono::seconds(45));
  EXPECT_CONFIG_ERROR(". {\n reload 1s\n}\n", 2, "interval value must be greater or equal to 2s");
  EXPECT_CONFIG_ERROR(". {\n reload 10s 500ms\n}\n", 2,
                      "jitter value must be greater or equal to 1s");
  EXPECT_CONFIG_ERROR(". {\n reload 10\n}\n", 2, "invalid duration '10'");
  EXPECT_CONFIG_ERROR(". {\n reload 10s 2s 1s\n}\n", 2, "Wrong argument count");
}

TEST(Loop, Forms) {
  EXPECT_TRUE(only(parse(". {\n loop\n}\n")).loop);
  EXPECT_CONFIG_ERROR(". {\n loop 1\n}\n", 2, "plugin/loop: Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n loop {\n }\n}\n", 2, "does not take a block");
}

TEST(Health, Forms) {
  EXPECT_EQ(only(parse(". {\n health\n}\n")).health->address, ":8080");
  const HealthConfig h =
      *only(parse(". {\n health [fd00::a]:8080 {\n  lameduck 5s\n }\n}\n")).health;
  EXPECT_EQ(h.address, "[fd00::a]:8080");
  EXPECT_EQ(h.lameduck, std::chrono::seconds(5));
  EXPECT_EQ(only(parse(". {\n health localhost:8080\n}\n")).health->address, "localhost:8080");
  EXPECT_CONFIG_ERROR(". {\n health 8080\n}\n", 2, "missing port in address");
  EXPECT_CONFIG_ERROR(". {\n health fd00::a:8080\n}\n", 2, "too many colons");
  EXPECT_CONFIG_ERROR(". {\n health :80a\n}\n", 2, "invalid port '80a'");
  EXPECT_CONFIG_ERROR(". {\n health :1 :2\n}\n", 2, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n health {\n  lameduck\n }\n}\n", 3, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n health {\n  lameduck soon\n }\n}\n", 3,
                      "unable to parse lameduck duration value: 'soon'");
  EXPECT_CONFIG_ERROR(". {\n health {\n  readiness\n }\n}\n", 3, "unknown property 'readiness'");
}

TEST(Prometheus, Forms) {
  EXPECT_EQ(*only(parse(". {\n prometheus\n}\n")).prometheus, "localhost:9153");
  EXPECT_EQ(*only(parse(". {\n prometheus 0.0.0.0:9253\n}\n")).prometheus, "0.0.0.0:9253");
  EXPECT_CONFIG_ERROR(". {\n prometheus 9253\n}\n", 2, "missing port in address");
  EXPECT_CONFIG_ERROR(". {\n prometheus :1 :2\n}\n", 2, "Wrong argument count");
  EXPECT_CONFIG_ERROR(". {\n prometheus :9253 {\n }\n}\n", 2, "does not take a block");
  EXPECT_CONFIG_ERROR(". {\n prometheus bad_host!:9253\n}\n", 2, "invalid host");
}

TEST(Durations, GoSyntax) {
  const ForwardConfig f =
      only(parse(". {\n forward . 1.1.1.1 {\n  health_check 1h30m\n  expire 1.5m\n }\n}\n"))
          .forwards[0];
  EXPECT_EQ(f.health_check, std::chrono::minutes(90));
  EXPECT_EQ(f.expire, std::chrono::seconds(90));
  EXPECT_EQ(only(parse(". {\n forward . 1.1.1.1 {\n  health_check 250ms\n }\n}\n"))
                .forwards[0]
                .health_check,
            std::chrono::milliseconds(250));
  EXPECT_EQ(
      only(parse(". {\n forward . 1.1.1.1 {\n  health_check 0\n }\n}\n")).forwards[0].health_check,
      std::chrono::milliseconds(0));
  for (const char* bad : {"1", "1x", "m", ".s", "1h-1m", "99999999999h"}) {
    SCOPED_TRACE(bad);
    EXPECT_CONFIG_ERROR(std::string(". {\n forward . 1.1.1.1 {\n  expire ") + bad + "\n }\n}\n", 3,
                        "invalid duration");
  }
}

}  // namespace
}  // namespace nld::config
