// Root tests of the nftables backend (Nftables) against the real kernel, checked with the `nft`
// CLI, inside the network namespace created by run_in_netns.sh (the guard is host_root_test.cc's
// global Environment, linked into the same binary).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "node/host_setup.h"
#include "node/nftables.h"
#include "node/process.h"

namespace nld::node {
namespace {

using namespace std::chrono_literals;

std::vector<LocalIp> nftIps(std::initializer_list<const char*> list) {
  std::vector<LocalIp> out;
  for (const char* s : list) {
    LocalIp ip;
    EXPECT_TRUE(parseLocalIp(s, &ip)) << s;
    out.push_back(ip);
  }
  return out;
}

ProcessResult nft(std::vector<std::string> args) {
  args.insert(args.begin(), "nft");
  return runProcess(args, {}, 20s);
}

std::string ruleset() {
  const ProcessResult r = nft({"list", "ruleset"});
  EXPECT_TRUE(r.ok()) << r.err;
  return r.out;
}

// The rule lines of `nft list table inet node-local-dns` (chain name prefixed), trimmed.
std::vector<std::string> ourRules() {
  const ProcessResult r = nft({"list", "table", "inet", "node-local-dns"});
  if (!r.ok()) return {};
  std::vector<std::string> out;
  std::string chain;
  size_t start = 0;
  while (start < r.out.size()) {
    size_t end = r.out.find('\n', start);
    if (end == std::string::npos) end = r.out.size();
    std::string line = r.out.substr(start, end - start);
    start = end + 1;
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.rfind("chain ", 0) == 0) {
      chain = line.substr(6, line.find(' ', 6) - 6);
    } else if (line.rfind("ip ", 0) == 0 || line.rfind("ip6 ", 0) == 0) {
      out.push_back(chain + ": " + line);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> wantedRules(const std::vector<IptablesRule>& rules) {
  const auto specs = nftRuleSpecs(rules);
  EXPECT_TRUE(specs.ok()) << specs.error().message();
  std::vector<std::string> out;
  if (!specs) return out;
  for (const auto& s : *specs) out.push_back(s.chain + ": " + s.text);
  std::sort(out.begin(), out.end());
  return out;
}

// Leftovers of a failed earlier test in the same namespace would skew the next one.
void resetTables() {
  for (const char* t : {"inet node-local-dns", "ip nld-unrelated", "ip kube-proxy"}) {
    const std::string spec(t);
    const size_t sp = spec.find(' ');
    nft({"delete", "table", spec.substr(0, sp), spec.substr(sp + 1)});
  }
}

void checkBackend(std::initializer_list<const char*> list) {
  resetTables();
  ASSERT_TRUE(nft({"add", "table", "ip", "nld-unrelated"}).ok());
  ASSERT_TRUE(
      nft({"add", "chain", "ip", "nld-unrelated", "c", "{ type filter hook input priority 0; }"})
          .ok());
  ASSERT_TRUE(
      nft({"add", "rule", "ip", "nld-unrelated", "c", "udp", "dport", "5353", "drop"}).ok());
  const std::string before = ruleset();

  const auto rules = nodeLocalDnsRules(nftIps(list), 53, 8080);
  std::vector<std::string> errors;
  Nftables n({}, rules, [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_EQ(n.ensure(), static_cast<int>(rules.size())) << n.lastError();
  EXPECT_EQ(ourRules(), wantedRules(rules));
  EXPECT_EQ(n.ensure(), 0) << "second ensure must find the table intact";

  // A deleted rule, an added foreign rule and a deleted table are all repaired.
  const ProcessResult handles =
      nft({"-a", "list", "chain", "inet", "node-local-dns", "raw-output"});
  const size_t rule_pos = handles.out.find(" dport 53 ");
  const size_t pos = handles.out.find("# handle ", rule_pos);
  ASSERT_NE(rule_pos, std::string::npos) << handles.out;
  ASSERT_NE(pos, std::string::npos) << handles.out;
  const std::string handle = handles.out.substr(pos + 9, handles.out.find('\n', pos) - pos - 9);
  ASSERT_TRUE(
      nft({"delete", "rule", "inet", "node-local-dns", "raw-output", "handle", handle}).ok());
  EXPECT_EQ(n.ensure(), static_cast<int>(rules.size()));
  EXPECT_EQ(ourRules(), wantedRules(rules));
  ASSERT_TRUE(
      nft({"add", "rule", "inet", "node-local-dns", "filter-input", "tcp", "dport", "22", "accept"})
          .ok());
  EXPECT_EQ(n.ensure(), static_cast<int>(rules.size()));
  EXPECT_EQ(ourRules(), wantedRules(rules));
  ASSERT_TRUE(nft({"delete", "table", "inet", "node-local-dns"}).ok());
  EXPECT_EQ(n.ensure(), static_cast<int>(rules.size()));
  EXPECT_EQ(ourRules(), wantedRules(rules));
  EXPECT_EQ(n.ensure(), 0);

  EXPECT_TRUE(n.teardown()) << n.lastError();
  EXPECT_EQ(ruleset(), before) << "teardown must leave the ruleset as it was";
  EXPECT_TRUE(n.teardown()) << "teardown of an absent table is a success";
  EXPECT_TRUE(errors.empty());
  ASSERT_TRUE(nft({"delete", "table", "ip", "nld-unrelated"}).ok());
}

TEST(NftablesRoot, Ipv4TwoIpsIdempotentRepairTeardown) {
  checkBackend({"169.254.20.10", "10.96.0.10"});
}

TEST(NftablesRoot, Ipv6IdempotentRepairTeardown) { checkBackend({"fd00::10"}); }

// 120 rules: the batch spans several libnftnl pages (sent as one iovec) and the dump several
// receives.
TEST(NftablesRoot, ManyAddressesSpanSeveralBatchPages) {
  checkBackend({"fd00::1", "fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7",
                "fd00::8", "fd00::9", "fd00::a"});
}

TEST(NftablesRoot, KernelRefusalIsAClearCountedError) {
  resetTables();
  NftablesSettings settings;
  settings.table = std::string(300, 'x');  // over NFT_NAME_MAXLEN: the kernel refuses it
  std::vector<std::string> errors;
  Nftables n(settings, nodeLocalDnsRules(nftIps({"169.254.20.10"}), 53, 8080),
             [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_EQ(n.ensure(), -1);
  EXPECT_NE(n.lastError().find("nftables:"), std::string::npos) << n.lastError();
  EXPECT_EQ(errors, std::vector<std::string>{"iptables"});
  EXPECT_EQ(ourRules(), std::vector<std::string>{});
}

TEST(NftablesRoot, ListTablesAndAutoChoice) {
  resetTables();
  auto tables = listNftTables();
  ASSERT_TRUE(tables.ok()) << tables.error().message();
  EXPECT_EQ(chooseFirewall(Firewall::kAuto).firewall,
            binaryOnPath("iptables") ? Firewall::kIptables : Firewall::kNftables);
  ASSERT_TRUE(nft({"add", "table", "ip", "kube-proxy"}).ok());
  tables = listNftTables();
  ASSERT_TRUE(tables.ok()) << tables.error().message();
  EXPECT_NE(std::find(tables->begin(), tables->end(),
                      std::make_pair(std::string("ip"), std::string("kube-proxy"))),
            tables->end());
  const FirewallChoice c = chooseFirewall(Firewall::kAuto);
  EXPECT_EQ(c.firewall, Firewall::kNftables);
  EXPECT_EQ(c.reason, "kube-proxy runs in nftables mode (table ip kube-proxy exists)");
  ASSERT_TRUE(nft({"delete", "table", "ip", "kube-proxy"}).ok());
}

TEST(NftablesRoot, HostSetupUsesNftablesAndTearsDown) {
  resetTables();
  HostSetupSettings s;
  s.setup_interface = false;
  s.local_ips = nftIps({"169.254.20.10"});
  s.firewall = Firewall::kNftables;
  HostSetup host(s);
  EXPECT_EQ(host.firewall(), Firewall::kNftables);
  EXPECT_TRUE(host.setupRules());
  EXPECT_EQ(ourRules().size(), 12u);
  ASSERT_TRUE(nft({"delete", "table", "inet", "node-local-dns"}).ok());
  EXPECT_TRUE(host.ensureOnce());
  EXPECT_EQ(ourRules().size(), 12u);
  host.teardown();
  EXPECT_TRUE(ourRules().empty());
  EXPECT_FALSE(nft({"list", "table", "inet", "node-local-dns"}).ok());
}

}  // namespace
}  // namespace nld::node
