// The Kubernetes nodelocaldns.yaml Corefile, listeners, duplicates, dump/fingerprint, files.
#include <gtest/gtest.h>

#include "test_support.h"

namespace nld::config {
namespace {

using nld::test::TempDir;
using testing::errorOf;
using testing::fakeOptions;
using testing::parse;

// kubernetes/kubernetes cluster/addons/dns/nodelocaldns/nodelocaldns.yaml (ConfigMap
// node-local-dns, key Corefile), verbatim, with the YAML block indentation removed.
constexpr const char* kManifestCorefile = R"(__PILLAR__DNS__DOMAIN__:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health __PILLAR__LOCAL__DNS__:8080
    }
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
)";

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

std::string manifestCorefile(const std::string& resolv_conf) {
  std::string s = kManifestCorefile;
  replaceAll(s, "__PILLAR__LOCAL__DNS__", "169.254.20.10");
  replaceAll(s, "__PILLAR__DNS__DOMAIN__", "cluster.local");
  replaceAll(s, ",__PILLAR__DNS__SERVER__", "");
  replaceAll(s, " __PILLAR__DNS__SERVER__", "");
  replaceAll(s, "__PILLAR__CLUSTER__DNS__", "10.96.0.10");
  replaceAll(s, "__PILLAR__UPSTREAM__SERVERS__", resolv_conf);
  return s;
}

TEST(Manifest, ParsesIntoFourBlocksWithExactValues) {
  TempDir dir("nld-config-");
  const std::string resolv =
      dir.write("resolv.conf",
                "# generated\nsearch example.internal\nnameserver 192.168.1.1\n"
                "nameserver fe80::53%eth0\noptions ndots:5\nnameserver 2001:db8::35\n");
  const Corefile cf = parse(manifestCorefile(resolv));
  ASSERT_EQ(cf.blocks.size(), 4u);
  const char* zones[] = {"cluster.local.", "in-addr.arpa.", "ip6.arpa.", "."};
  for (size_t i = 0; i < 4; ++i) {
    const ServerBlock& b = cf.blocks[i];
    SCOPED_TRACE(zones[i]);
    ASSERT_EQ(b.keys.size(), 1u);
    EXPECT_EQ(b.keys[0].zone, zones[i]);
    EXPECT_EQ(b.keys[0].port, 53);
    EXPECT_EQ(b.file, "Corefile");
    EXPECT_TRUE(b.errors);
    EXPECT_FALSE(b.log);
    EXPECT_TRUE(b.loop);
    ASSERT_TRUE(b.reload.has_value());
    EXPECT_EQ(b.reload->interval, std::chrono::seconds(30));
    EXPECT_EQ(b.reload->jitter, std::chrono::seconds(15));
    EXPECT_EQ(b.bind, std::vector<std::string>{"169.254.20.10"});
    ASSERT_TRUE(b.prometheus.has_value());
    EXPECT_EQ(*b.prometheus, ":9253");
    ASSERT_TRUE(b.cache.has_value());
    EXPECT_EQ(b.cache->zones, std::vector<std::string>{zones[i]});
    ASSERT_EQ(b.forwards.size(), 1u);
    EXPECT_EQ(b.forwards[0].from, ".");
    EXPECT_EQ(b.forwards[0].policy, Policy::kRandom);
    EXPECT_EQ(b.forwards[0].max_fails, 2u);
    EXPECT_EQ(b.forwards[0].expire, std::chrono::seconds(10));
    EXPECT_EQ(b.forwards[0].health_check, std::chrono::milliseconds(500));
  }
  EXPECT_EQ(cf.blocks[0].line, 1);
  EXPECT_EQ(cf.blocks[1].line, 16);
  EXPECT_EQ(cf.blocks[2].line, 27);
  EXPECT_EQ(cf.blocks[3].line, 38);

  const CacheConfig& c0 = *cf.blocks[0].cache;
  EXPECT_EQ(c0.success_capacity, 9984u);
  EXPECT_EQ(c0.success_max_ttl, 30u);
  EXPECT_EQ(c0.success_min_ttl, 5u);
  EXPECT_EQ(c0.denial_capacity, 9984u);
  EXPECT_EQ(c0.denial_max_ttl, 5u);
  EXPECT_EQ(c0.denial_min_ttl, 5u);
  EXPECT_EQ(c0.prefetch_amount, 0u);
  EXPECT_FALSE(c0.serve_stale.has_value());
  EXPECT_EQ(c0.servfail_ttl, std::chrono::seconds(5));
  for (size_t i = 1; i < 4; ++i) {
    const CacheConfig& c = *cf.blocks[i].cache;
    EXPECT_EQ(c.success_capacity, 10000u);
    EXPECT_EQ(c.denial_capacity, 10000u);
    EXPECT_EQ(c.success_max_ttl, 30u);
    EXPECT_EQ(c.denial_max_ttl, 30u);
    EXPECT_EQ(c.success_min_ttl, 5u);
    EXPECT_EQ(c.denial_min_ttl, 5u);
  }

  ASSERT_TRUE(cf.blocks[0].health.has_value());
  EXPECT_EQ(cf.blocks[0].health->address, "169.254.20.10:8080");
  EXPECT_EQ(cf.blocks[0].health->lameduck, std::chrono::milliseconds(0));
  for (size_t i = 1; i < 4; ++i) EXPECT_FALSE(cf.blocks[i].health.has_value());

  for (size_t i = 0; i < 3; ++i) {
    const ForwardConfig& f = cf.blocks[i].forwards[0];
    EXPECT_TRUE(f.force_tcp);
    EXPECT_FALSE(f.prefer_udp);
    ASSERT_EQ(f.to.size(), 1u);
    EXPECT_EQ(f.to[0].ip, "10.96.0.10");
    EXPECT_EQ(f.to[0].port, 53);
    EXPECT_EQ(f.to[0].label(), "10.96.0.10:53");
  }
  const ForwardConfig& up = cf.blocks[3].forwards[0];
  EXPECT_FALSE(up.force_tcp);
  ASSERT_EQ(up.to.size(), 3u);
  EXPECT_EQ(up.to[0].label(), "192.168.1.1:53");
  EXPECT_EQ(up.to[1].label(), "[fe80::53]:53");  // zone id stripped
  EXPECT_EQ(up.to[2].label(), "[2001:db8::35]:53");

  ASSERT_EQ(cf.listeners.size(), 1u);
  EXPECT_EQ(cf.listeners[0].address, "169.254.20.10");
  EXPECT_EQ(cf.listeners[0].port, 53);
  const std::vector<std::pair<std::string, size_t>> expected = {
      {"cluster.local.", 0}, {"in-addr.arpa.", 1}, {"ip6.arpa.", 2}, {".", 3}};
  EXPECT_EQ(cf.listeners[0].zones, expected);
  EXPECT_EQ(cf.fingerprint.size(), 16u);
}

TEST(Manifest, IptablesModeBindsBothAddresses) {
  TempDir dir("nld-config-");
  const std::string resolv = dir.write("resolv.conf", "nameserver 8.8.8.8\n");
  std::string s = kManifestCorefile;
  replaceAll(s, "__PILLAR__LOCAL__DNS__", "169.254.20.10");
  replaceAll(s, "__PILLAR__DNS__DOMAIN__", "cluster.local");
  replaceAll(s, "__PILLAR__DNS__SERVER__", "10.96.0.10");
  replaceAll(s, "__PILLAR__CLUSTER__DNS__", "10.96.0.11");
  replaceAll(s, "__PILLAR__UPSTREAM__SERVERS__", resolv);
  const Corefile cf = parse(s);
  ASSERT_EQ(cf.listeners.size(), 2u);
  EXPECT_EQ(cf.listeners[0].address, "169.254.20.10");
  EXPECT_EQ(cf.listeners[1].address, "10.96.0.10");
  EXPECT_EQ(cf.listeners[1].zones.size(), 4u);
  EXPECT_EQ(cf.blocks[0].bind, (std::vector<std::string>{"169.254.20.10", "10.96.0.10"}));
}

TEST(Manifest, UnsubstitutedPlaceholderIsRefused) {
  // node-cache substitutes __PILLAR__UPSTREAM__SERVERS__ itself; if it did not, the forward
  // target is neither an IP nor a readable file.
  std::string s = manifestCorefile("__PILLAR__UPSTREAM__SERVERS__");
  EXPECT_CONFIG_ERROR(s, 44, "not an IP address or file: \"__PILLAR__UPSTREAM__SERVERS__\"");
}

TEST(Listeners, WildcardAndPortsAndDuplicates) {
  const Corefile cf = parse(
      "example.org:1053 a.example:1053 {\n forward . 1.1.1.1\n}\n"
      ". {\n forward . 1.1.1.1\n}\n"
      ".:1053 {\n forward . 1.1.1.1\n}\n");
  ASSERT_EQ(cf.listeners.size(), 2u);
  EXPECT_EQ(cf.listeners[0].address, "");
  EXPECT_EQ(cf.listeners[0].port, 1053);
  EXPECT_EQ(cf.listeners[0].zones.size(), 3u);
  EXPECT_EQ(cf.listeners[0].zones[2], (std::pair<std::string, size_t>{".", 2}));
  EXPECT_EQ(cf.listeners[1].port, 53);

  EXPECT_CONFIG_ERROR("example.org {\n}\nexample.org.:53 {\n}\n", 3,
                      "cannot serve dns://example.org.:53 - it is already defined");
  EXPECT_CONFIG_ERROR("Example.ORG example.org {\n}\n", 1,
                      "cannot serve dns://example.org.:53 - it is already defined");
  EXPECT_CONFIG_ERROR("a.org {\n bind 10.0.0.1\n}\na.org {\n bind 10.0.0.1\n}\n", 4,
                      "cannot serve dns://a.org.:53 on 10.0.0.1 - it is already defined");
  // Same zone on different addresses, or on different ports, is fine.
  EXPECT_EQ(parse("a.org {\n bind 10.0.0.1\n}\na.org {\n bind 10.0.0.2\n}\n").listeners.size(), 2u);
  EXPECT_EQ(parse("a.org {\n}\na.org:54 {\n}\n").listeners.size(), 2u);
  // Wildcard and specific address serving the same zone+port overlap.
  EXPECT_CONFIG_ERROR("a.org {\n}\na.org {\n bind 10.0.0.1\n}\n", 3,
                      "zone overlap listener capacity");
}

TEST(Listeners, DefaultPortOption) {
  ParseOptions o = fakeOptions();
  o.default_port = 5353;
  const Corefile cf = parse(". {\n}\nexample.org:53 {\n}\n", o);
  EXPECT_EQ(cf.blocks[0].keys[0].port, 5353);
  EXPECT_EQ(cf.blocks[1].keys[0].port, 53);
}

TEST(Fingerprint, IgnoresLayoutButNotValues) {
  const Corefile a = parse(". {\n cache 30\n forward . 1.1.1.1\n}\n");
  const Corefile b = parse("# comment\n.:53 {   # x\n\n  forward   .   1.1.1.1\n  cache 30\n}\n");
  const Corefile c = parse(". {\n cache 31\n forward . 1.1.1.1\n}\n");
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_NE(a.fingerprint, c.fingerprint);
  EXPECT_EQ(dump(a), dump(b));
  EXPECT_NE(dump(a).find("cache zones=[.]"), std::string::npos) << dump(a);
}

TEST(Files, LoadCorefileAndImportsRelativeToIt) {
  TempDir dir("nld-config-");
  dir.write("conf.d/zones/a.conf", "a.example {\n forward . 10.0.0.1\n}\n");
  dir.write("conf.d/zones/b.conf", "b.example {\n forward . 10.0.0.2\n}\n");
  dir.write("conf.d/common", "errors\ncache 10\n");
  const std::string main = dir.write(
      "conf.d/Corefile", ". {\n import common\n forward . 10.0.0.3\n}\nimport zones/*.conf\n");
  const Corefile cf = loadCorefile(main, fakeOptions());
  ASSERT_EQ(cf.blocks.size(), 3u);
  EXPECT_TRUE(cf.blocks[0].errors);
  EXPECT_EQ(cf.blocks[0].cache->success_max_ttl, 10u);
  EXPECT_EQ(cf.blocks[1].keys[0].zone, "a.example.");
  EXPECT_EQ(cf.blocks[1].file, dir.path() + "/conf.d/zones/a.conf");
  EXPECT_EQ(cf.blocks[2].keys[0].zone, "b.example.");
  EXPECT_EQ(cf.blocks[2].forwards[0].to[0].ip, "10.0.0.2");
}

TEST(Files, ErrorsNameTheImportedFile) {
  TempDir dir("nld-config-");
  dir.write("bad.conf", "\n\nfrobnicate\n");
  const std::string main = dir.write("Corefile", ". {\n import bad.conf\n}\n");
  try {
    loadCorefile(main, fakeOptions());
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), dir.path() + "/bad.conf:3: Unknown directive 'frobnicate'");
  }
}

TEST(Files, MissingFiles) {
  TempDir dir("nld-config-");
  try {
    loadCorefile(dir.path() + "/nope", fakeOptions());
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read Corefile"), std::string::npos);
  }
  const std::string main = dir.write("Corefile", ". {\n import missing.conf\n}\n");
  try {
    loadCorefile(main, fakeOptions());
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Corefile:2: Could not import"), std::string::npos)
        << e.what();
  }
  // An empty glob only warns.
  const std::string globbed = dir.write("Corefile2", ". {\n import none/*.conf\n}\n");
  EXPECT_EQ(loadCorefile(globbed, fakeOptions()).blocks.size(), 1u);
}

TEST(Files, ImportCycleIsBounded) {
  TempDir dir("nld-config-");
  const std::string main = dir.write("Corefile", ". {\n import loop.conf\n}\n");
  dir.write("loop.conf", "import loop.conf\n");
  try {
    loadCorefile(main, fakeOptions());
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("import cycle"), std::string::npos) << e.what();
  }
}

TEST(Files, GlobRules) {
  EXPECT_CONFIG_ERROR(". {\n import a*/*.conf\n}\n", 2, "may only contain one wildcard");
  EXPECT_CONFIG_ERROR(". {\n import [ab].conf\n}\n", 2, "may not contain '[...]'");
  EXPECT_CONFIG_ERROR(". {\n import a b\n}\n", 2, "Import takes only one argument");
  EXPECT_CONFIG_ERROR(". {\n import\n}\n", 2, "Import takes only one argument");
  ParseOptions o = fakeOptions();
  o.allow_file_imports = false;
  EXPECT_NE(errorOf(". {\n import x.conf\n}\n", o).find("import of files is disabled"),
            std::string::npos);
}

TEST(Empty, EmptyAndCommentOnlyFilesAreRefused) {
  EXPECT_EQ(errorOf(""), "Corefile: no server blocks found (empty Corefile)");
  EXPECT_EQ(errorOf("# nothing\n\n   \n"), "Corefile: no server blocks found (empty Corefile)");
  // Only a snippet definition: still nothing to serve.
  EXPECT_EQ(errorOf("(s) {\n errors\n}\n"), "Corefile: no server blocks found (empty Corefile)");
}

}  // namespace
}  // namespace nld::config
