// Root tests of LinkManager, Iptables and HostSetup against the real kernel and iptables 1.8
// binaries, inside the network namespace created by run_in_netns.sh (never on the host).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/fd.h"
#include "node/host_setup.h"
#include "node/iptables.h"
#include "node/link_manager.h"
#include "node/process.h"
#include "support/eventually.h"

namespace nld::node {
namespace {

using namespace std::chrono_literals;

std::vector<LocalIp> ips(std::initializer_list<const char*> list) {
  std::vector<LocalIp> out;
  for (const char* s : list) {
    LocalIp ip;
    EXPECT_TRUE(parseLocalIp(s, &ip)) << s;
    out.push_back(ip);
  }
  return out;
}

std::string run(const std::vector<std::string>& argv) {
  ProcessResult r = runProcess(argv, {}, 20s);
  EXPECT_TRUE(r.ok()) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.err;
  return r.out;
}

// The "-A ..." lines of `<save> -t <table>`.
std::vector<std::string> savedRules(const std::string& save, const std::string& table) {
  std::vector<std::string> lines;
  const std::string out = run({save, "-t", table});
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(start, end - start);
    if (line.rfind("-A ", 0) == 0) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// How iptables-save prints one of our rules.
std::string saveLine(const IptablesRule& r, int prefix) {
  std::string s = "-A " + r.chain;
  if (!r.source.empty()) s += " -s " + r.source + "/" + std::to_string(prefix);
  if (!r.destination.empty()) s += " -d " + r.destination + "/" + std::to_string(prefix);
  s += " -p " + r.protocol + " -m " + r.protocol;
  if (r.source_port != 0) s += " --sport " + std::to_string(r.source_port);
  if (r.destination_port != 0) s += " --dport " + std::to_string(r.destination_port);
  s += " -m comment --comment \"" + r.comment + "\" -j " + r.target;
  return s;
}

// Expected -A lines of a table after inserting `rules` one by one at position 1 (upstream order),
// followed by `tail` (pre-existing rules), grouped per chain in first-appearance order of -S.
std::vector<std::string> expectedTable(const std::vector<IptablesRule>& rules,
                                       const std::string& table, int prefix,
                                       const std::vector<std::string>& chains,
                                       const std::vector<std::string>& tail) {
  std::vector<std::string> out;
  for (const auto& chain : chains) {
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
      if (it->table == table && it->chain == chain) out.push_back(saveLine(*it, prefix));
    }
    for (const auto& t : tail) {
      if (t.rfind("-A " + chain + " ", 0) == 0) out.push_back(t);
    }
  }
  return out;
}

struct Errors {
  std::mutex mu;
  std::vector<std::string> list;
  void operator()(std::string_view t) {
    std::lock_guard<std::mutex> lock(mu);
    list.emplace_back(t);
  }
  std::vector<std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return list;
  }
};

class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    // Refuse to run anywhere but the namespace run_in_netns.sh created: these tests add and
    // delete iptables rules and links.
    const char* ns = std::getenv("NLD_TEST_NETNS");
    ASSERT_NE(ns, nullptr) << "run via tests/node/run_in_netns.sh";
    struct stat self {
    }, named{};
    ASSERT_EQ(::stat("/proc/self/ns/net", &self), 0);
    ASSERT_EQ(::stat((std::string("/run/netns/") + ns).c_str(), &named), 0);
    ASSERT_EQ(self.st_ino, named.st_ino) << "not inside network namespace " << ns;
    ASSERT_EQ(::geteuid(), 0u);
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new Environment);

void iptablesLifecycle(int family, const std::vector<LocalIp>& local, const std::string& bin,
                       int prefix) {
  const std::string save = bin + "-save";
  const std::string foreign = "-A OUTPUT -p udp -m udp --dport 9999 -j ACCEPT";
  run({bin, "-w", "5", "-t", "raw", "-A", "OUTPUT", "-p", "udp", "--dport", "9999", "-j",
       "ACCEPT"});
  Errors errors;
  IptablesSettings s;
  s.family = family;
  const auto rules = nodeLocalDnsRules(local, 53, 8080);
  Iptables ipt(s, rules, std::ref(errors));

  ASSERT_EQ(ipt.ensure(), static_cast<int>(rules.size()));
  const auto raw = expectedTable(rules, "raw", prefix, {"PREROUTING", "OUTPUT"}, {foreign});
  const auto filter = expectedTable(rules, "filter", prefix, {"INPUT", "OUTPUT"}, {});
  EXPECT_EQ(savedRules(save, "raw"), raw);
  EXPECT_EQ(savedRules(save, "filter"), filter);

  // Idempotent: nothing added, nothing duplicated.
  EXPECT_EQ(ipt.ensure(), 0);
  EXPECT_EQ(savedRules(save, "raw"), raw);
  EXPECT_EQ(savedRules(save, "filter"), filter);

  // A rule deleted by someone else comes back with the next ensure.
  const IptablesRule& victim = rules[5];  // raw OUTPUT udp -s IP --sport 53
  std::vector<std::string> del{bin, "-w", "5", "-t", "raw", "-D", "OUTPUT"};
  for (const auto& a : victim.args()) del.push_back(a);
  run(del);
  EXPECT_EQ(ipt.countInstalled(victim), 0);
  EXPECT_EQ(ipt.ensure(), 1);
  EXPECT_EQ(ipt.countInstalled(victim), 1);
  EXPECT_EQ(savedRules(save, "raw").size(), raw.size());

  // Duplicates (e.g. left by an older instance) are all removed by teardown.
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> dup{bin, "-w", "5", "-t", rules[0].table, "-I", rules[0].chain, "1"};
    for (const auto& a : rules[0].args()) dup.push_back(a);
    run(dup);
    std::vector<std::string> dup2{bin, "-w", "5", "-t", rules[2].table, "-A", rules[2].chain};
    for (const auto& a : rules[2].args()) dup2.push_back(a);
    run(dup2);
  }
  EXPECT_EQ(ipt.countInstalled(rules[0]), 3);
  EXPECT_EQ(ipt.countInstalled(rules[2]), 3);
  EXPECT_TRUE(ipt.teardown());
  EXPECT_EQ(savedRules(save, "raw"), std::vector<std::string>{foreign});
  EXPECT_TRUE(savedRules(save, "filter").empty());
  EXPECT_EQ(run({save}).find("NodeLocal DNS Cache"), std::string::npos);
  EXPECT_TRUE(ipt.teardown());  // idempotent
  EXPECT_TRUE(errors.get().empty());
  run({bin, "-w", "5", "-t", "raw", "-D", "OUTPUT", "-p", "udp", "--dport", "9999", "-j",
       "ACCEPT"});
}

TEST(IptablesRoot, Ipv4TwoIpsExactRulesIdempotentRestoreTeardown) {
  iptablesLifecycle(AF_INET, ips({"169.254.20.10", "10.96.0.10"}), "iptables", 32);
}

TEST(IptablesRoot, Ipv6ExactRulesIdempotentRestoreTeardown) {
  iptablesLifecycle(AF_INET6, ips({"fd00::a"}), "ip6tables", 128);
}

bool canBind(int family, const std::string& ip, uint16_t port) {
  const net::Fd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  int rc = -1;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    std::memcpy(&ss, &a, sizeof(a));
    len = sizeof(a);
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
    std::memcpy(&ss, &a, sizeof(a));
    len = sizeof(a);
  }
  // sockaddr_storage → sockaddr is the sockets API's own aliasing contract.
  rc = ::bind(fd.get(), static_cast<const sockaddr*>(static_cast<const void*>(&ss)), len);
  return rc == 0;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class VethTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run({"ip", "link", "add", "nldv0", "type", "veth", "peer", "name", "nldv1"});
  }
  void TearDown() override { runProcess({"ip", "link", "del", "nldv0"}, {}, 10s); }
};

TEST_F(VethTest, AddressesAddedUpAndRemovedWithoutDeletingForeignLink) {
  Errors errors;
  LinkManager lm(std::ref(errors));
  const auto v4 = ips({"169.254.20.10", "10.96.0.10"});
  auto before = lm.lookup("nldv0");
  ASSERT_TRUE(before);
  EXPECT_FALSE(before->up);
  EXPECT_EQ(before->kind, "veth");
  EXPECT_FALSE(canBind(AF_INET, "169.254.20.10", 53));

  ASSERT_TRUE(lm.ensureInterface("nldv0", v4)) << lm.lastError();
  auto after = lm.lookup("nldv0");
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->up);
  auto addrs = lm.addresses("nldv0");
  EXPECT_TRUE(contains(addrs, "169.254.20.10/32"));
  EXPECT_TRUE(contains(addrs, "10.96.0.10/32"));
  EXPECT_TRUE(canBind(AF_INET, "169.254.20.10", 53));
  EXPECT_TRUE(canBind(AF_INET, "10.96.0.10", 53));
  EXPECT_TRUE(lm.ensureInterface("nldv0", v4)) << lm.lastError();  // EEXIST is fine
  EXPECT_EQ(lm.addresses("nldv0").size(), addrs.size());

  EXPECT_FALSE(lm.ownsLink("nldv0"));
  EXPECT_TRUE(lm.teardown("nldv0", v4));
  EXPECT_TRUE(lm.lookup("nldv0").has_value());  // not ours: only addresses removed
  addrs = lm.addresses("nldv0");
  EXPECT_FALSE(contains(addrs, "169.254.20.10/32"));
  EXPECT_FALSE(contains(addrs, "10.96.0.10/32"));
  EXPECT_FALSE(canBind(AF_INET, "169.254.20.10", 53));
  EXPECT_TRUE(lm.removeAddresses("nldv0", v4));  // already gone: fine
  EXPECT_TRUE(errors.get().empty());
}

TEST_F(VethTest, Ipv6AddressIsUsableImmediately) {
  Errors errors;
  LinkManager lm(std::ref(errors));
  const auto v6 = ips({"fd00::a"});
  ASSERT_TRUE(lm.ensureInterface("nldv0", v6)) << lm.lastError();
  EXPECT_TRUE(contains(lm.addresses("nldv0"), "fd00::a/128"));
  EXPECT_TRUE(canBind(AF_INET6, "fd00::a", 53));  // IFA_F_NODAD: not tentative
  EXPECT_TRUE(lm.removeAddresses("nldv0", v6));
  EXPECT_FALSE(contains(lm.addresses("nldv0"), "fd00::a/128"));
  EXPECT_TRUE(errors.get().empty());
}

TEST(LinkRoot, DummyCreationFailsClearlyOrCreatesTheLink) {
  Errors errors;
  LinkManager lm(std::ref(errors));
  const auto v4 = ips({"169.254.20.10"});
  const bool ok = lm.ensureInterface("nld-dummy0", v4);
  if (!ok) {
    // This kernel has no CONFIG_DUMMY: RTM_NEWLINK kind dummy → EOPNOTSUPP.
    EXPECT_NE(lm.lastError().find("kernel does not support dummy interfaces (CONFIG_DUMMY)"),
              std::string::npos)
        << lm.lastError();
    EXPECT_NE(lm.lastError().find("errno " + std::to_string(EOPNOTSUPP)), std::string::npos)
        << lm.lastError();
    EXPECT_EQ(errors.get(), std::vector<std::string>{"interface_add"});
    EXPECT_FALSE(lm.lookup("nld-dummy0").has_value());
  } else {
    auto link = lm.lookup("nld-dummy0");
    ASSERT_TRUE(link);
    EXPECT_EQ(link->kind, "dummy");
    EXPECT_TRUE(link->up);
    EXPECT_TRUE(contains(lm.addresses("nld-dummy0"), "169.254.20.10/32"));
    EXPECT_TRUE(lm.ownsLink("nld-dummy0"));
    EXPECT_TRUE(lm.teardown("nld-dummy0", v4));
    EXPECT_FALSE(lm.lookup("nld-dummy0").has_value());
    EXPECT_TRUE(errors.get().empty());
  }
}

TEST(LinkRoot, MissingLinkOperationsAreNoOps) {
  Errors errors;
  LinkManager lm(std::ref(errors));
  EXPECT_FALSE(lm.lookup("nld-nope").has_value());
  EXPECT_TRUE(lm.lastError().empty());
  EXPECT_TRUE(lm.removeInterface("nld-nope"));
  EXPECT_TRUE(lm.removeAddresses("nld-nope", ips({"169.254.20.10"})));
  EXPECT_TRUE(lm.addresses("nld-nope").empty());
  EXPECT_TRUE(errors.get().empty());
}

TEST_F(VethTest, RemoveInterfaceDeletesLink) {
  LinkManager lm;
  ASSERT_TRUE(lm.lookup("nldv1").has_value());
  EXPECT_TRUE(lm.removeInterface("nldv0"));
  EXPECT_FALSE(lm.lookup("nldv0").has_value());
  EXPECT_FALSE(lm.lookup("nldv1").has_value());  // the peer goes with it
}

TEST_F(VethTest, HostSetupOrderPeriodicRepairAndTeardown) {
  Errors errors;
  HostSetupSettings s;
  s.interface_name = "nldv0";
  s.local_ips = ips({"169.254.20.10"});
  s.dns_port = 53;
  s.health_port = 8080;
  HostSetup host(s, std::ref(errors));
  const auto rules = nodeLocalDnsRules(s.local_ips, 53, 8080);

  ASSERT_TRUE(host.setupInterface());
  EXPECT_TRUE(contains(host.links().addresses("nldv0"), "169.254.20.10/32"));
  EXPECT_EQ(host.iptables().countInstalled(rules[0]), 0);  // no rules before setupRules()
  host.startPeriodic(100ms);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(host.iptables().countInstalled(rules[0]), 0);  // periodic pass does not add them early

  ASSERT_TRUE(host.setupRules());
  for (const auto& r : rules) EXPECT_EQ(host.iptables().countInstalled(r), 1) << r.toString();

  // Someone deletes a rule and our address; the periodic pass repairs both.
  std::vector<std::string> del{"iptables", "-w", "5", "-t", rules[3].table, "-D", rules[3].chain};
  for (const auto& a : rules[3].args()) del.push_back(a);
  run(del);
  run({"ip", "addr", "del", "169.254.20.10/32", "dev", "nldv0"});
  EXPECT_TRUE(
      test::eventually([&] { return host.iptables().countInstalled(rules[3]) == 1; }, 5s, 20ms));
  EXPECT_TRUE(test::eventually(
      [&] { return contains(host.links().addresses("nldv0"), "169.254.20.10/32"); }, 5s, 20ms));

  const auto t0 = std::chrono::steady_clock::now();
  host.teardown();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  for (const auto& r : rules) EXPECT_EQ(host.iptables().countInstalled(r), 0) << r.toString();
  EXPECT_FALSE(contains(host.links().addresses("nldv0"), "169.254.20.10/32"));
  EXPECT_TRUE(host.links().lookup("nldv0").has_value());
  host.teardown();  // idempotent
  EXPECT_TRUE(errors.get().empty());
}

TEST_F(VethTest, HostSetupDualStackRulesPerFamily) {
  // -localip 169.254.20.10,fd00::10: both addresses on the link, the IPv4 address's 12 rules
  // through iptables and the IPv6 one's through ip6tables (neither tool takes the other family),
  // a repair of either family by the periodic pass, and a teardown of both.
  Errors errors;
  HostSetupSettings s;
  s.interface_name = "nldv0";
  s.local_ips = ips({"169.254.20.10", "fd00::10"});
  HostSetup host(s, std::ref(errors));
  ASSERT_NE(host.iptables(AF_INET), nullptr);
  ASSERT_NE(host.iptables(AF_INET6), nullptr);
  EXPECT_EQ(&host.iptables(), host.iptables(AF_INET));  // the first IP's family
  const auto v4 = nodeLocalDnsRules(ips({"169.254.20.10"}), 53, 8080);
  const auto v6 = nodeLocalDnsRules(ips({"fd00::10"}), 53, 8080);
  EXPECT_EQ(host.iptables(AF_INET)->rules(), v4);
  EXPECT_EQ(host.iptables(AF_INET6)->rules(), v6);

  ASSERT_TRUE(host.setupInterface());
  const auto addrs = host.links().addresses("nldv0");
  EXPECT_TRUE(contains(addrs, "169.254.20.10/32"));
  EXPECT_TRUE(contains(addrs, "fd00::10/128"));
  ASSERT_TRUE(host.setupRules());
  EXPECT_EQ(savedRules("iptables-save", "raw"),
            expectedTable(v4, "raw", 32, {"PREROUTING", "OUTPUT"}, {}));
  EXPECT_EQ(savedRules("ip6tables-save", "raw"),
            expectedTable(v6, "raw", 128, {"PREROUTING", "OUTPUT"}, {}));
  EXPECT_EQ(savedRules("ip6tables-save", "filter"),
            expectedTable(v6, "filter", 128, {"INPUT", "OUTPUT"}, {}));

  // Someone deletes an IPv6 rule: one pass restores it and adds nothing on the IPv4 side.
  std::vector<std::string> del{"ip6tables", "-w", "5", "-t", v6[1].table, "-D", v6[1].chain};
  for (const auto& a : v6[1].args()) del.push_back(a);
  run(del);
  EXPECT_EQ(host.iptables(AF_INET6)->countInstalled(v6[1]), 0);
  EXPECT_TRUE(host.ensureOnce());
  for (const auto& r : v6) EXPECT_EQ(host.iptables(AF_INET6)->countInstalled(r), 1) << r.toString();
  for (const auto& r : v4) EXPECT_EQ(host.iptables(AF_INET)->countInstalled(r), 1) << r.toString();

  host.teardown();
  for (const auto& r : v4) EXPECT_EQ(host.iptables(AF_INET)->countInstalled(r), 0) << r.toString();
  for (const auto& r : v6) EXPECT_EQ(host.iptables(AF_INET6)->countInstalled(r), 0) << r.toString();
  const auto left = host.links().addresses("nldv0");
  EXPECT_FALSE(contains(left, "169.254.20.10/32"));
  EXPECT_FALSE(contains(left, "fd00::10/128"));
  EXPECT_TRUE(errors.get().empty());
}

TEST(HostSetupRoot, DisabledPartsDoNothing) {
  HostSetupSettings s;
  s.setup_interface = false;
  s.setup_iptables = false;
  s.interface_name = "nld-unused";
  s.local_ips = ips({"169.254.20.10"});
  HostSetup host(s);
  EXPECT_TRUE(host.setupInterface());
  EXPECT_TRUE(host.setupRules());
  EXPECT_TRUE(host.ensureOnce());
  EXPECT_FALSE(host.links().lookup("nld-unused").has_value());
  EXPECT_EQ(host.iptables().countInstalled(host.iptables().rules()[0]), 0);
  host.teardown();
}

}  // namespace
}  // namespace nld::node
