#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "net/fd.h"
#include "node/iptables.h"
#include "node/process.h"

namespace nld::node {
namespace {

std::vector<LocalIp> ips(std::initializer_list<const char*> list) {
  std::vector<LocalIp> out;
  for (const char* s : list) {
    LocalIp ip;
    EXPECT_TRUE(parseLocalIp(s, &ip)) << s;
    out.push_back(ip);
  }
  return out;
}

TEST(IptablesRules, TwelvePerIpInUpstreamOrder) {
  const auto rules = nodeLocalDnsRules(ips({"169.254.20.10", "10.96.0.10"}), 53, 8080);
  ASSERT_EQ(rules.size(), 24u);
  const std::vector<std::string> expected = {
      "{raw PREROUTING [-p tcp -d 169.254.20.10 --dport 53 -j NOTRACK -m comment --comment "
      "NodeLocal DNS Cache: skip conntrack]}",
      "{raw PREROUTING [-p udp -d 169.254.20.10 --dport 53 -j NOTRACK -m comment --comment "
      "NodeLocal DNS Cache: skip conntrack]}",
      "{filter INPUT [-p tcp -d 169.254.20.10 --dport 53 -j ACCEPT -m comment --comment NodeLocal "
      "DNS Cache: allow DNS traffic]}",
      "{filter INPUT [-p udp -d 169.254.20.10 --dport 53 -j ACCEPT -m comment --comment NodeLocal "
      "DNS Cache: allow DNS traffic]}",
      "{raw OUTPUT [-p tcp -s 169.254.20.10 --sport 53 -j NOTRACK -m comment --comment NodeLocal "
      "DNS Cache: skip conntrack]}",
      "{raw OUTPUT [-p udp -s 169.254.20.10 --sport 53 -j NOTRACK -m comment --comment NodeLocal "
      "DNS Cache: skip conntrack]}",
      "{filter OUTPUT [-p tcp -s 169.254.20.10 --sport 53 -j ACCEPT -m comment --comment NodeLocal "
      "DNS Cache: allow DNS traffic]}",
      "{filter OUTPUT [-p udp -s 169.254.20.10 --sport 53 -j ACCEPT -m comment --comment NodeLocal "
      "DNS Cache: allow DNS traffic]}",
      "{raw OUTPUT [-p tcp -d 169.254.20.10 --dport 53 -j NOTRACK -m comment --comment NodeLocal "
      "DNS Cache: skip conntrack]}",
      "{raw OUTPUT [-p udp -d 169.254.20.10 --dport 53 -j NOTRACK -m comment --comment NodeLocal "
      "DNS Cache: skip conntrack]}",
      "{raw OUTPUT [-p tcp -d 169.254.20.10 --dport 8080 -j NOTRACK -m comment --comment NodeLocal "
      "DNS Cache: skip conntrack]}",
      "{raw OUTPUT [-p tcp -s 169.254.20.10 --sport 8080 -j NOTRACK -m comment --comment NodeLocal "
      "DNS Cache: skip conntrack]}",
  };
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(rules[i].toString(), expected[i]) << i;
  EXPECT_EQ(rules[12].destination, "10.96.0.10");
  EXPECT_EQ(rules[23].source, "10.96.0.10");
  EXPECT_EQ(rules[23].source_port, 8080);
}

TEST(IptablesRules, CustomPorts) {
  const auto rules = nodeLocalDnsRules(ips({"fd00::a"}), 5353, 9090);
  ASSERT_EQ(rules.size(), 12u);
  EXPECT_EQ(rules[0].destination_port, 5353);
  EXPECT_EQ(rules[10].destination_port, 9090);
  EXPECT_EQ(rules[0].destination, "fd00::a");
}

TEST(IptablesRules, ParseSavedLines) {
  IptablesRule r;
  ASSERT_TRUE(parseSavedRule(
      "-A PREROUTING -d 169.254.20.10/32 -p tcp -m tcp --dport 53 -m comment --comment "
      "\"NodeLocal DNS Cache: skip conntrack\" -j NOTRACK",
      "raw", &r));
  const auto rules = nodeLocalDnsRules(ips({"169.254.20.10"}), 53, 8080);
  EXPECT_TRUE(r.sameAs(rules[0]));
  EXPECT_FALSE(r.sameAs(rules[1]));
  ASSERT_TRUE(parseSavedRule(
      "-A OUTPUT -s fd00::a/128 -p udp -m udp --sport 53 -m comment --comment \"NodeLocal DNS "
      "Cache: skip conntrack\" -j NOTRACK",
      "raw", &r));
  const auto v6 = nodeLocalDnsRules(ips({"FD00:0::A"}), 53, 8080);
  EXPECT_TRUE(r.sameAs(v6[5]));
  EXPECT_FALSE(parseSavedRule("-P OUTPUT ACCEPT", "raw", &r));
  EXPECT_FALSE(parseSavedRule("-N KUBE-SERVICES", "filter", &r));
  EXPECT_FALSE(parseSavedRule("-A INPUT ! -d 1.2.3.4/32 -j ACCEPT", "filter", &r));
  EXPECT_FALSE(parseSavedRule("-A INPUT -m conntrack --ctstate NEW -j ACCEPT", "filter", &r));
  ASSERT_TRUE(parseSavedRule("-A INPUT -d 1.2.3.0/24 -p tcp -j ACCEPT", "filter", &r));
  IptablesRule mine = nodeLocalDnsRules(ips({"1.2.3.0"}), 53, 8080)[2];
  EXPECT_FALSE(r.sameAs(mine));  // a /24 is not our host rule
}

TEST(IptablesRules, SplitAndQuote) {
  EXPECT_EQ(splitSavedLine(R"(-A X --comment "a b \"c\"" -j Y)"),
            (std::vector<std::string>{"-A", "X", "--comment", "a b \"c\"", "-j", "Y"}));
  EXPECT_EQ(restoreQuote("NOTRACK"), "NOTRACK");
  EXPECT_EQ(restoreQuote("NodeLocal DNS Cache: skip conntrack"),
            "\"NodeLocal DNS Cache: skip conntrack\"");
  EXPECT_EQ(restoreQuote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(splitSavedLine(restoreQuote("a \"b\" \\c")), (std::vector<std::string>{"a \"b\" \\c"}));
}

class FakeBinary {
 public:
  explicit FakeBinary(const std::string& script) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nld-fake-XXXXXX").string();
    // Only the unique name is wanted: closed before ofstream writes the script (an executable
    // still open for writing fails to exec with ETXTBSY).
    net::Fd(::mkstemp(tmpl.data())).reset();
    path_ = tmpl;
    std::ofstream(path_) << "#!/bin/sh\n" << script;
    ::chmod(path_.c_str(), 0755);
  }
  ~FakeBinary() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Iptables, LockErrorIsClassified) {
  FakeBinary fake(
      "echo 'Another app is currently holding the xtables lock. Stopped waiting after 5s.' "
      ">&2\nexit 4\n");
  std::vector<std::string> errors;
  IptablesSettings s;
  s.family = AF_INET;
  s.iptables_binary = fake.path();
  Iptables ipt(s, nodeLocalDnsRules(ips({"169.254.20.10"}), 53, 8080),
               [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_EQ(ipt.ensure(), -1);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "iptables_lock");
  EXPECT_NE(ipt.lastError().find("holding the xtables lock"), std::string::npos);
}

TEST(Iptables, MissingBinaryAndRestoreFailureAreIptablesErrors) {
  std::vector<std::string> errors;
  IptablesSettings s;
  s.family = AF_INET;
  s.iptables_binary = "/nonexistent/iptables";
  Iptables ipt(s, nodeLocalDnsRules(ips({"169.254.20.10"}), 53, 8080),
               [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_EQ(ipt.ensure(), -1);
  EXPECT_FALSE(ipt.teardown());
  EXPECT_EQ(errors, (std::vector<std::string>{"iptables", "iptables"}));

  // Listing works (empty tables) but the restore fails: the batch input is in the message.
  FakeBinary lister("exit 0\n");
  FakeBinary restorer("cat > /dev/null\necho 'iptables-restore: line 3 failed' >&2\nexit 1\n");
  s.iptables_binary = lister.path();
  s.restore_binary = restorer.path();
  Iptables ipt2(s, nodeLocalDnsRules(ips({"169.254.20.10"}), 53, 8080),
                [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_EQ(ipt2.ensure(), -1);
  EXPECT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors.back(), "iptables");
  EXPECT_NE(ipt2.lastError().find("line 3 failed"), std::string::npos);
}

TEST(Iptables, BatchFormatSeenByRestore) {
  // A fake iptables-restore records its stdin and argv; listing returns one of our rules.
  const std::string dir = std::filesystem::temp_directory_path().string();
  const std::string record = dir + "/nld-restore-" + std::to_string(::getpid());
  FakeBinary lister(
      "echo '-P PREROUTING ACCEPT'\n"
      "case \"$*\" in *raw*) echo '-A PREROUTING -d 169.254.20.10/32 -p tcp -m tcp --dport 53 -m "
      "comment --comment \"NodeLocal DNS Cache: skip conntrack\" -j NOTRACK';; esac\n");
  FakeBinary restorer("echo \"$@\" > " + record + "\ncat >> " + record + "\n");
  IptablesSettings s;
  s.family = AF_INET;
  s.iptables_binary = lister.path();
  s.restore_binary = restorer.path();
  Iptables ipt(s, nodeLocalDnsRules(ips({"169.254.20.10"}), 53, 8080), nullptr);
  EXPECT_EQ(ipt.ensure(), 11);
  std::ifstream in(record);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  std::filesystem::remove(record);
  EXPECT_EQ(all.substr(0, all.find('\n')), "-w 5 --noflush");
  EXPECT_NE(
      all.find("*raw\n-I PREROUTING 1 -p udp -d 169.254.20.10 --dport 53 -j NOTRACK -m comment "
               "--comment \"NodeLocal DNS Cache: skip conntrack\"\n-I OUTPUT 1 -p tcp -s"),
      std::string::npos);
  EXPECT_EQ(all.find("-I PREROUTING 1 -p tcp"), std::string::npos);  // already present
  EXPECT_NE(all.find("COMMIT\n*filter\n-I INPUT 1 -p tcp -d 169.254.20.10 --dport 53 -j ACCEPT"),
            std::string::npos);
}

TEST(Process, CapturesOutputExitCodeAndInput) {
  ProcessResult r = runProcess({"sh", "-c", "cat; echo err >&2; exit 3"}, "hello\n");
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(runProcess({"true"}).ok());
}

TEST(Process, LargeInputAndEarlyExitDoNotKillUs) {
  const std::string big(1 << 20, 'x');
  ProcessResult r = runProcess({"wc", "-c"}, big);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "1048576\n");
  ProcessResult early = runProcess({"true"}, big);  // never reads: EPIPE, no SIGPIPE death
  EXPECT_TRUE(early.ok());
}

TEST(Process, TimeoutKills) {
  const auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = runProcess({"sleep", "10"}, {}, std::chrono::milliseconds(200));
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(Process, MissingBinary) {
  ProcessResult r = runProcess({"nld-no-such-binary"});
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.err.find("not found"), std::string::npos);
}

}  // namespace
}  // namespace nld::node
