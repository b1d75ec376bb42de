// Iptables' logic (what it lists, which rules it inserts or deletes, in what batches, and how it
// reports errors) against a fake iptables behind the ProcessRunner seam: no root, no binaries.
// The real binaries are exercised as root in host_root_test.cc and the system tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/iptables.h"
#include "node/process.h"

namespace nld::node {
namespace {

/// Plays `iptables -t T -S` and `iptables-restore --noflush` over an in-memory ruleset.
class FakeIptables final : public ProcessRunner {
 public:
  ProcessResult run(const std::vector<std::string>& argv, const std::string& input,
                    std::chrono::milliseconds) override {
    calls.push_back(argv.front());
    ProcessResult r;
    r.started = true;
    if (!fail_with.empty()) {
      r.exit_code = 4;
      r.err = fail_with;
      return r;
    }
    r.exit_code = 0;
    if (argv.back() == "-S") {  // iptables -w 5 -t TABLE -S
      const std::string& table = argv[argv.size() - 2];
      r.out = "-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n";
      for (const auto& l : tables[table]) r.out += l + "\n";
      return r;
    }
    batches.push_back(input);
    std::string table;
    size_t start = 0;
    while (start < input.size()) {
      size_t end = input.find('\n', start);
      if (end == std::string::npos) end = input.size();
      const std::string line = input.substr(start, end - start);
      start = end + 1;
      if (line.empty() || line == "COMMIT") continue;
      if (line[0] == '*') {
        table = line.substr(1);
      } else if (line.rfind("-I ", 0) == 0) {  // "-I CHAIN 1 ARGS" -> first rule of the table
        const size_t sp = line.find(' ', 3);
        const std::string chain = line.substr(3, sp - 3);
        const std::string args = line.substr(line.find(' ', sp + 1) + 1);
        auto& t = tables[table];
        t.insert(t.begin(), "-A " + chain + " " + args);
      } else if (line.rfind("-D ", 0) == 0 && !ignore_deletes) {  // "-D CHAIN ARGS"
        auto& t = tables[table];
        const auto it = std::find(t.begin(), t.end(), "-A " + line.substr(3));
        if (it != t.end()) t.erase(it);
      }
    }
    return r;
  }

  std::map<std::string, std::vector<std::string>> tables;  // table -> "-A CHAIN ARGS" lines
  std::vector<std::string> calls;                          // argv[0] of every run
  std::vector<std::string> batches;                        // every restore input
  std::string fail_with;                                   // non-empty: every call fails so
  bool ignore_deletes = false;
};

struct Rig {
  FakeIptables fake;
  std::vector<std::string> errors;
  std::vector<IptablesRule> rules;
  std::unique_ptr<Iptables> ipt;
  Rig() {
    LocalIp ip;
    EXPECT_TRUE(parseLocalIp("169.254.20.10", &ip));
    rules = nodeLocalDnsRules({ip}, 53, 8080);
    IptablesSettings s;
    s.runner = &fake;
    s.teardown_rounds = 3;
    ipt = std::make_unique<Iptables>(s, rules,
                                     [this](std::string_view t) { errors.emplace_back(t); });
  }
  size_t installed() const {
    size_t n = 0;
    for (const auto& [t, lines] : fake.tables) n += lines.size();
    return n;
  }
};

TEST(IptablesFake, EnsureInsertsEveryMissingRuleInOneBatchAndNothingTheSecondTime) {
  Rig r;
  EXPECT_EQ(r.ipt->ensure(), 12);
  ASSERT_EQ(r.fake.batches.size(), 1u);  // one iptables-restore for both tables
  EXPECT_EQ(r.fake.batches[0].rfind("*raw\n", 0), 0u) << r.fake.batches[0];
  EXPECT_NE(r.fake.batches[0].find("COMMIT\n*filter\n"), std::string::npos);
  EXPECT_EQ(r.installed(), 12u);
  for (const auto& rule : r.rules) EXPECT_EQ(r.ipt->countInstalled(rule), 1) << rule.toString();
  r.fake.calls.clear();
  EXPECT_EQ(r.ipt->ensure(), 0);
  EXPECT_EQ(r.fake.calls, (std::vector<std::string>{"iptables", "iptables"}));  // two lists
  EXPECT_EQ(r.fake.batches.size(), 1u);
  EXPECT_TRUE(r.errors.empty());
}

TEST(IptablesFake, ARuleDeletedBySomeoneElseIsAddedBackAlone) {
  Rig r;
  ASSERT_EQ(r.ipt->ensure(), 12);
  auto& raw = r.fake.tables["raw"];
  raw.erase(raw.begin() + 2);
  EXPECT_EQ(r.ipt->ensure(), 1);
  ASSERT_EQ(r.fake.batches.size(), 2u);
  EXPECT_EQ(std::count(r.fake.batches[1].begin(), r.fake.batches[1].end(), '\n'), 3)
      << r.fake.batches[1];  // *raw, one -I, COMMIT
  EXPECT_EQ(r.installed(), 12u);
}

TEST(IptablesFake, TeardownRemovesEveryCopyOverSeveralRoundsAndLeavesForeignRules) {
  Rig r;
  ASSERT_EQ(r.ipt->ensure(), 12);
  r.fake.tables["raw"].push_back(r.fake.tables["raw"].front());  // a duplicate of ours
  r.fake.tables["filter"].push_back("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT");  // not ours
  EXPECT_TRUE(r.ipt->teardown());
  EXPECT_EQ(r.fake.batches.size(), 3u);  // ensure, round 1, round 2 (the duplicate)
  EXPECT_EQ(r.installed(), 1u);
  EXPECT_EQ(r.fake.tables["filter"].front(), "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT");
}

TEST(IptablesFake, TeardownIsBoundedWhenDeletesDoNotTakeEffect) {
  Rig r;
  ASSERT_EQ(r.ipt->ensure(), 12);
  r.fake.ignore_deletes = true;
  EXPECT_FALSE(r.ipt->teardown());
  EXPECT_EQ(r.fake.batches.size(), 4u);  // ensure + 3 rounds (teardown_rounds)
  EXPECT_NE(r.ipt->lastError().find("still present after 3 delete rounds"), std::string::npos);
  EXPECT_EQ(r.errors, (std::vector<std::string>{"iptables"}));
}

TEST(IptablesFake, TheXtablesLockIsItsOwnErrorType) {
  Rig r;
  r.fake.fail_with =
      "Another app is currently holding the xtables lock. Perhaps you want to use the -w option?";
  EXPECT_EQ(r.ipt->ensure(), -1);
  r.fake.fail_with = "iptables v1.8.9 (nf_tables): table `raw' is incompatible";
  EXPECT_EQ(r.ipt->ensure(), -1);
  EXPECT_EQ(r.errors, (std::vector<std::string>{"iptables_lock", "iptables"}));
  EXPECT_NE(r.ipt->lastError().find("incompatible"), std::string::npos);
}

}  // namespace
}  // namespace nld::node
