#include "node/options.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace nld::node {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Options parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"node-cache"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parseOptions(static_cast<int>(argv.size()), argv.data());
}

std::string errorOf(std::initializer_list<const char*> args) {
  try {
    parse(args);
  } catch (const flags::FlagError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Options, Defaults) {
  Options o = parse({"-localip", "169.254.20.10"});
  EXPECT_EQ(o.localip, "169.254.20.10");
  ASSERT_EQ(o.local_ips.size(), 1u);
  EXPECT_EQ(o.family(), AF_INET);
  EXPECT_TRUE(o.setup_interface);
  EXPECT_EQ(o.interface_name, "nodelocaldns");
  EXPECT_EQ(o.sync_interval, seconds(60));
  EXPECT_EQ(o.metrics_listen_address, "0.0.0.0:9353");
  EXPECT_TRUE(o.setup_iptables);
  EXPECT_EQ(o.base_corefile, "/etc/coredns/Corefile.base");
  EXPECT_EQ(o.corefile, "/etc/Corefile");
  EXPECT_EQ(o.conf, "");
  EXPECT_EQ(o.output_corefile, "/etc/Corefile");  // fixed: -corefile used when -conf is absent
  EXPECT_EQ(o.kubednscm, "");
  EXPECT_EQ(o.upstream_svc, "kube-dns");
  EXPECT_EQ(o.health_port, 8080);
  EXPECT_FALSE(o.skip_teardown);
  EXPECT_FALSE(o.reload_with_signal);
  EXPECT_EQ(o.pidfile, "");
  EXPECT_EQ(o.dns_port, 53);
  EXPECT_FALSE(o.version);
  EXPECT_FALSE(o.quiet);
  EXPECT_FALSE(o.plugins);
  EXPECT_FALSE(o.default_config);
  EXPECT_EQ(o.workers, 0);
  EXPECT_EQ(o.firewall, Firewall::kIptables);
}

TEST(Options, Firewall) {
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "-firewall", "nftables"}).firewall, Firewall::kNftables);
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "-firewall=auto"}).firewall, Firewall::kAuto);
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "--firewall", "iptables"}).firewall, Firewall::kIptables);
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-firewall", "nft"}),
            "invalid firewall specified - \"nft\": must be iptables, nftables or auto");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-firewall", ""}),
            "invalid firewall specified - \"\": must be iptables, nftables or auto");
  EXPECT_EQ(firewallName(Firewall::kAuto), "auto");
}

TEST(Options, ManifestInvocation) {
  Options o = parse({"-localip", "169.254.20.10,10.96.0.10", "-conf", "/etc/Corefile",
                     "-upstreamsvc", "kube-dns-upstream", "-pidfile", "/tmp/node-cache.pid"});
  ASSERT_EQ(o.local_ips.size(), 2u);
  EXPECT_EQ(o.local_ips[1].text, "10.96.0.10");
  EXPECT_EQ(o.localIpsSpaceSeparated(), "169.254.20.10 10.96.0.10");
  EXPECT_EQ(o.output_corefile, "/etc/Corefile");
  EXPECT_EQ(o.upstream_svc, "kube-dns-upstream");
  EXPECT_EQ(o.pidfile, "/tmp/node-cache.pid");
}

TEST(Options, DualStackLocalIps) {
  // Issue 12: one node-cache serves both families; the order is kept and the first IP is the
  // primary one (its family is family(), it is the health address of the rendered Corefile).
  Options o = parse({"-localip", "169.254.20.10,10.96.0.10,fd00::10,fd00:96::a"});
  ASSERT_EQ(o.local_ips.size(), 4u);
  EXPECT_EQ(o.family(), AF_INET);
  EXPECT_EQ(o.local_ips[0].text, "169.254.20.10");
  EXPECT_EQ(o.local_ips[1].family, AF_INET);
  EXPECT_EQ(o.local_ips[2].family, AF_INET6);
  EXPECT_EQ(o.local_ips[2].hostPrefix(), 128);
  EXPECT_EQ(o.local_ips[3].canonical(), "fd00:96::a");
  EXPECT_EQ(o.localIpsSpaceSeparated(), "169.254.20.10 10.96.0.10 fd00::10 fd00:96::a");

  Options v6first = parse({"-localip", "fd00::10,169.254.20.10", "-health-port", "8081"});
  ASSERT_EQ(v6first.local_ips.size(), 2u);
  EXPECT_EQ(v6first.family(), AF_INET6);  // the first IP decides
  EXPECT_EQ(v6first.local_ips[1].family, AF_INET);
  EXPECT_EQ(v6first.health_port, 8081);
}

TEST(Options, EveryFlag) {
  Options o = parse({"-localip=fd00::a,fd00::b",
                     "-setupinterface=false",
                     "-interfacename",
                     "nld0",
                     "-syncinterval",
                     "30",
                     "-metrics-listen-address",
                     "127.0.0.1:9999",
                     "-setupiptables=false",
                     "-basecorefile",
                     "/b/Corefile.base",
                     "-corefile",
                     "/c/Corefile",
                     "-conf",
                     "/d/Corefile",
                     "-kubednscm",
                     "/etc/kd",
                     "-upstreamsvc",
                     "up",
                     "-health-port",
                     "8081",
                     "-skipteardown",
                     "-reloadwithsignal",
                     "-pidfile",
                     "/p.pid",
                     "-dns.port",
                     "5353",
                     "-quiet",
                     "-workers",
                     "3"});
  EXPECT_EQ(o.family(), AF_INET6);
  EXPECT_EQ(o.local_ips[0].hostPrefix(), 128);
  EXPECT_EQ(o.local_ips[1].canonical(), "fd00::b");
  EXPECT_FALSE(o.setup_interface);
  EXPECT_EQ(o.interface_name, "nld0");
  EXPECT_EQ(o.sync_interval, seconds(30));
  EXPECT_EQ(o.metrics_listen_address, "127.0.0.1:9999");
  EXPECT_FALSE(o.setup_iptables);
  EXPECT_EQ(o.base_corefile, "/b/Corefile.base");
  EXPECT_EQ(o.corefile, "/c/Corefile");
  EXPECT_EQ(o.conf, "/d/Corefile");
  EXPECT_EQ(o.output_corefile, "/d/Corefile");  // -conf wins
  EXPECT_EQ(o.kubednscm, "/etc/kd");
  EXPECT_EQ(o.upstream_svc, "up");
  EXPECT_EQ(o.health_port, 8081);
  EXPECT_TRUE(o.skip_teardown);
  EXPECT_TRUE(o.reload_with_signal);
  EXPECT_EQ(o.pidfile, "/p.pid");
  EXPECT_EQ(o.dns_port, 5353);
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(o.workers, 3);
}

TEST(Options, PortAliasAndSyncIntervalForms) {
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "-p", "1053"}).dns_port, 1053);
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "-syncinterval=1m30s"}).sync_interval, seconds(90));
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "-syncinterval=500ms"}).sync_interval, milliseconds(500));
  EXPECT_EQ(parse({"-localip", "1.2.3.4", "-syncinterval=30s"}).sync_interval, seconds(30));
}

TEST(Options, VersionAndPluginsSkipValidation) {
  EXPECT_TRUE(parse({"-version"}).version);
  EXPECT_TRUE(parse({"-plugins"}).plugins);
}

TEST(Options, DefaultConfig) {
  Options o = parse({"-default-config"});
  EXPECT_TRUE(o.default_config);
  EXPECT_FALSE(o.setup_interface);
  EXPECT_FALSE(o.setup_iptables);
  EXPECT_EQ(o.localip, "127.0.0.1");
  EXPECT_EQ(o.dns_port, 5353);
  Options o2 = parse({"-default-config", "-p", "1053", "-localip", "127.0.0.2", "-setupiptables"});
  EXPECT_EQ(o2.dns_port, 1053);
  EXPECT_EQ(o2.localip, "127.0.0.2");
  EXPECT_FALSE(o2.setup_iptables);
}

TEST(Options, ValidationErrors) {
  EXPECT_EQ(errorOf({}), "invalid localip specified - \"\"");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4,"}), "invalid localip specified - \"\"");
  EXPECT_EQ(errorOf({"-localip", "nope"}), "invalid localip specified - \"nope\"");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4/32"}), "invalid localip specified - \"1.2.3.4/32\"");
  // A bad element of a mixed-family list is still named on its own.
  EXPECT_EQ(errorOf({"-localip", "169.254.20.10,fd00::10,fd00::zz"}),
            "invalid localip specified - \"fd00::zz\"");
  EXPECT_EQ(errorOf({"-localip", "fd00::10,,169.254.20.10"}), "invalid localip specified - \"\"");
  EXPECT_EQ(errorOf({"-localip", "169.254.20.10,[fd00::10]"}),
            "invalid localip specified - \"[fd00::10]\"");
  EXPECT_EQ(errorOf({"-localip", "169.254.20.10,fd00::10%eth0"}),
            "invalid localip specified - \"fd00::10%eth0\"");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-health-port", "http"}),
            "invalid health-port specified - \"http\": not an integer");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-health-port", "70000"}),
            "invalid health-port specified - \"70000\": port must be in 1-65535");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-dns.port", "x53"}),
            "invalid dns.port specified - \"x53\": not an integer");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-p", "0"}),
            "invalid dns.port specified - \"0\": port must be in 1-65535");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "extra", "args"}),
            "extra command line arguments: [extra args]");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-syncinterval", "0"}),
            "invalid syncinterval specified - 0s: must be positive");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-syncinterval", "5x"}),
            "invalid value \"5x\" for flag -syncinterval: parse error");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-workers", "-1"}),
            "invalid workers specified - -1: must be in 0-1024");
  EXPECT_EQ(errorOf({"-localip", "1.2.3.4", "-interfacename", "a-very-long-interface"}),
            "invalid interfacename specified - \"a-very-long-interface\": must be 1-15 characters "
            "without '/', ':' or whitespace");
  EXPECT_EQ(errorOf({"-bogus"}), "flag provided but not defined: -bogus");
  EXPECT_EQ(errorOf({"-localip"}), "flag needs an argument: -localip");
}

TEST(Options, HelpAndUsage) {
  EXPECT_THROW(parse({"-h"}), flags::HelpRequested);
  const std::string usage = optionsUsage();
  for (const char* name : {"-localip",
                           "-setupinterface",
                           "-interfacename",
                           "-syncinterval",
                           "-metrics-listen-address",
                           "-setupiptables",
                           "-basecorefile",
                           "-corefile",
                           "-conf",
                           "-kubednscm",
                           "-upstreamsvc",
                           "-health-port",
                           "-skipteardown",
                           "-reloadwithsignal",
                           "-pidfile",
                           "-dns.port",
                           "-p",
                           "-version",
                           "-quiet",
                           "-plugins",
                           "-default-config",
                           "-workers",
                           "-statedir",
                           "-snapshotinterval",
                           "-probe-ready"}) {
    const std::string n = std::string("  ") + name;
    EXPECT_TRUE(usage.find(n + " ") != std::string::npos ||
                usage.find(n + "\n") != std::string::npos ||
                usage.find(n + "\t") != std::string::npos)
        << name;
  }
}

TEST(Options, StateDirAndSnapshotInterval) {
  Options d = parse({"-localip", "169.254.20.10"});
  EXPECT_EQ(d.statedir, "/var/run/node-local-dns");
  EXPECT_EQ(d.snapshot_interval, std::chrono::seconds(60));
  Options o =
      parse({"-localip", "169.254.20.10", "-statedir", "/tmp/x", "-snapshotinterval", "500ms"});
  EXPECT_EQ(o.statedir, "/tmp/x");
  EXPECT_EQ(o.snapshot_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(parse({"-localip", "169.254.20.10", "-statedir="}).statedir, "");
  EXPECT_THROW(parse({"-localip", "169.254.20.10", "-snapshotinterval", "10ms"}), flags::FlagError);
}

TEST(Options, ProbeReadyNeedsNoServingFlags) {
  // The readiness probe runs as `/node-cache -probe-ready 169.254.20.10:53`: no -localip.
  EXPECT_EQ(parse({"-probe-ready", "169.254.20.10:53"}).probe_ready, "169.254.20.10:53");
  EXPECT_EQ(parse({"-localip", "169.254.20.10"}).probe_ready, "");
  EXPECT_THROW(parse({}), flags::FlagError) << "without -probe-ready, -localip is required";
}

TEST(LocalIp, Parse) {
  LocalIp ip;
  ASSERT_TRUE(parseLocalIp("169.254.20.10", &ip));
  EXPECT_EQ(ip.hostPrefix(), 32);
  EXPECT_EQ(ip.bytes[0], 169);
  EXPECT_EQ(ip.bytes[3], 10);
  ASSERT_TRUE(parseLocalIp("FD00:0::A", &ip));
  EXPECT_EQ(ip.canonical(), "fd00::a");
  EXPECT_EQ(ip.text, "FD00:0::A");
  EXPECT_FALSE(parseLocalIp("fe80::1%eth0", &ip));
  EXPECT_FALSE(parseLocalIp("1.2.3", &ip));
}

}  // namespace
}  // namespace nld::node
