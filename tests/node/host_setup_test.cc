// HostSetup's order, upkeep and teardown logic against fakes of its seams (node/backends.h): no
// root, no namespace, no binaries. The real LinkManager, Iptables and Nftables are tested as
// root in throwaway network namespaces (host_root_test.cc, nftables_root_test.cc).
#include "node/host_setup.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nld::node {
namespace {

/// Records every call into one shared journal, so tests can assert the order across fakes.
struct Journal {
  std::vector<std::string> calls;
};

class FakeLinks final : public InterfaceManager {
 public:
  explicit FakeLinks(Journal* j) : j_(j) {}
  bool ensureInterface(const std::string& name, const std::vector<LocalIp>& ips) override {
    j_->calls.push_back("link.ensure " + name + " " + std::to_string(ips.size()));
    return ok;
  }
  bool teardown(const std::string& name, const std::vector<LocalIp>&) override {
    j_->calls.push_back("link.teardown " + name);
    return true;
  }
  bool ok = true;

 private:
  Journal* j_;
};

class FakeRules final : public RuleBackend {
 public:
  FakeRules(Journal* j, std::string name) : j_(j), name_(std::move(name)) {}
  int ensure() override {
    j_->calls.push_back(name_ + ".ensure");
    return result;
  }
  bool teardown() override {
    j_->calls.push_back(name_ + ".teardown");
    return true;
  }
  int result = 0;

 private:
  Journal* j_;
  std::string name_;
};

struct Rig {
  Journal journal;
  FakeLinks* links = nullptr;
  std::vector<FakeRules*> rules;
  std::unique_ptr<HostSetup> host;

  explicit Rig(HostSetupSettings s, std::vector<std::string> backends = {"v4", "v6"}) {
    HostBackends b;
    auto l = std::make_unique<FakeLinks>(&journal);
    links = l.get();
    b.links = std::move(l);
    for (const auto& name : backends) {
      auto r = std::make_unique<FakeRules>(&journal, name);
      rules.push_back(r.get());
      b.rules.push_back(std::move(r));
    }
    host = std::make_unique<HostSetup>(std::move(s), std::move(b));
  }
  std::vector<std::string> take() { return std::exchange(journal.calls, {}); }
};

HostSetupSettings settings() {
  HostSetupSettings s;
  s.interface_name = "nldtest0";
  LocalIp a, b;
  EXPECT_TRUE(parseLocalIp("169.254.20.10", &a));
  EXPECT_TRUE(parseLocalIp("fd00::10", &b));
  s.local_ips = {a, b};
  return s;
}

using Calls = std::vector<std::string>;

TEST(HostSetup, InterfaceFirstRulesOnlyOnceEnabledThenBothInEveryPass) {
  Rig r(settings());
  EXPECT_TRUE(r.host->setupInterface());
  EXPECT_EQ(r.take(), (Calls{"link.ensure nldtest0 2"}));
  // A periodic pass before setupRules() (listeners not up yet) must not add rules.
  EXPECT_TRUE(r.host->ensureOnce());
  EXPECT_EQ(r.take(), (Calls{"link.ensure nldtest0 2"}));
  EXPECT_TRUE(r.host->setupRules());
  EXPECT_EQ(r.take(), (Calls{"v4.ensure", "v6.ensure"}));
  EXPECT_TRUE(r.host->ensureOnce());
  EXPECT_EQ(r.take(), (Calls{"v4.ensure", "v6.ensure", "link.ensure nldtest0 2"}));
}

TEST(HostSetup, AFailingBackendDoesNotKeepTheOthersRulesAway) {
  Rig r(settings());
  r.rules[0]->result = -1;  // e.g. iptables broken; ip6tables fine
  r.rules[1]->result = 12;
  EXPECT_FALSE(r.host->setupRules());
  EXPECT_EQ(r.take(), (Calls{"v4.ensure", "v6.ensure"}));
  r.links->ok = false;
  EXPECT_FALSE(r.host->ensureOnce());
  r.rules[0]->result = 0;
  r.links->ok = true;
  r.take();
  EXPECT_TRUE(r.host->ensureOnce());
}

TEST(HostSetup, TeardownRemovesRulesThenTheInterfaceOnceAndOnlyWhatWasSetUp) {
  Rig r(settings());
  r.host->teardown();  // nothing set up yet: nothing to remove
  EXPECT_EQ(r.take(), Calls{});
  ASSERT_TRUE(r.host->setupInterface());
  ASSERT_TRUE(r.host->setupRules());
  r.take();
  r.host->teardown();
  EXPECT_EQ(r.take(), (Calls{"v4.teardown", "v6.teardown", "link.teardown nldtest0"}));
  r.host->teardown();  // idempotent
  EXPECT_EQ(r.take(), Calls{});
  // After a teardown the periodic pass no longer adds rules back (until setupRules again).
  EXPECT_TRUE(r.host->ensureOnce());
  EXPECT_EQ(r.take(), (Calls{"link.ensure nldtest0 2"}));
}

TEST(HostSetup, WithoutSetupFlagsNothingIsTouched) {
  HostSetupSettings s = settings();
  s.setup_interface = false;
  s.setup_iptables = false;
  Rig r(s);
  EXPECT_TRUE(r.host->setupInterface());
  EXPECT_TRUE(r.host->setupRules());
  EXPECT_TRUE(r.host->ensureOnce());
  r.host->teardown();
  EXPECT_EQ(r.take(), Calls{});
}

TEST(HostSetup, TheRealBackendAccessorsRefuseFakes) {
  Rig r(settings());
  EXPECT_THROW(r.host->iptables(), std::logic_error);
  EXPECT_EQ(r.host->iptables(10), nullptr);
  EXPECT_THROW(r.host->links(), std::logic_error);
}

}  // namespace
}  // namespace nld::node
