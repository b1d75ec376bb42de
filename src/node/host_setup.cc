#include "node/host_setup.h"

#include <sys/socket.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "common/log.h"
#include "node/options.h"

namespace nld::node {

HostSetupSettings HostSetupSettings::fromOptions(const Options& o) {
  HostSetupSettings s;
  s.setup_interface = o.setup_interface;
  s.setup_iptables = o.setup_iptables;
  s.interface_name = o.interface_name;
  s.local_ips = o.local_ips;
  s.dns_port = o.dns_port;
  s.health_port = o.health_port;
  s.firewall = o.firewall;
  return s;
}

namespace {
Firewall resolveFirewall(const HostSetupSettings& s) {
  if (!s.setup_iptables) return Firewall::kIptables;
  const FirewallChoice c = chooseFirewall(s.firewall);
  log::info("Firewall backend: {} ({})", firewallName(c.firewall), c.reason);
  return c.firewall;
}

// One Iptables per family of `ips` (first IP's family first), each with the rules of its own
// addresses: iptables refuses an IPv6 address and ip6tables an IPv4 one. Without any IP, one IPv4
// runner with no rules, so iptables() always has something to return.
std::vector<std::unique_ptr<RuleBackend>> iptablesPerFamily(
    const HostSetupSettings& s, const Iptables::ErrorCallback& on_error) {
  std::vector<int> families;
  for (const LocalIp& ip : s.local_ips) {
    if (std::find(families.begin(), families.end(), ip.family) == families.end()) {
      families.push_back(ip.family);
    }
  }
  if (families.empty()) families.push_back(AF_INET);
  std::vector<std::unique_ptr<RuleBackend>> out;
  for (const int family : families) {
    std::vector<LocalIp> ips;
    std::copy_if(s.local_ips.begin(), s.local_ips.end(), std::back_inserter(ips),
                 [&](const LocalIp& ip) { return ip.family == family; });
    IptablesSettings settings = s.iptables;
    settings.family = family;
    out.push_back(std::make_unique<Iptables>(
        std::move(settings), nodeLocalDnsRules(ips, s.dns_port, s.health_port), on_error));
  }
  return out;
}
}  // namespace

HostBackends HostSetup::realBackends(const HostSetupSettings& s, const ErrorCallback& on_error) {
  HostBackends b;
  b.links = std::make_unique<LinkManager>(on_error);
  b.firewall = resolveFirewall(s);
  if (b.firewall == Firewall::kNftables) {
    b.rules.push_back(std::make_unique<Nftables>(
        s.nftables, nodeLocalDnsRules(s.local_ips, s.dns_port, s.health_port), on_error));
  } else {
    b.rules = iptablesPerFamily(s, on_error);
  }
  return b;
}

HostSetup::HostSetup(HostSetupSettings settings, ErrorCallback on_error)
    : HostSetup(settings, realBackends(settings, on_error), on_error) {}

HostSetup::HostSetup(HostSetupSettings settings, HostBackends backends, ErrorCallback on_error)
    : settings_(std::move(settings)),
      on_error_(std::move(on_error)),
      links_(std::move(backends.links)),
      rules_(std::move(backends.rules)),
      firewall_(backends.firewall) {}

int HostSetup::ensureRules() {
  // Every backend is ensured even if another failed (a broken ip6tables must not keep the IPv4
  // rules away); the error is already logged and counted by the failing backend.
  int added = 0;
  bool failed = false;
  for (auto& backend : rules_) {
    const int n = backend->ensure();
    failed = failed || n < 0;
    added += n < 0 ? 0 : n;
  }
  return failed ? -1 : added;
}

Iptables* HostSetup::iptables(int family) {
  for (auto& backend : rules_) {
    auto* runner = dynamic_cast<Iptables*>(backend.get());
    if (runner != nullptr && runner->family() == family) return runner;
  }
  return nullptr;
}

// std::logic_error: test hooks called on the wrong backend are programming errors.
Iptables& HostSetup::iptables() {
  auto* runner = rules_.empty() ? nullptr : dynamic_cast<Iptables*>(rules_.front().get());
  if (runner == nullptr) throw std::logic_error("HostSetup: not the real iptables backend");
  return *runner;
}

LinkManager& HostSetup::links() {
  auto* real = dynamic_cast<LinkManager*>(links_.get());
  if (real == nullptr) throw std::logic_error("HostSetup: not the real LinkManager");
  return *real;
}

HostSetup::~HostSetup() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stop_ = true;
    cv_.notify_all();
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

bool HostSetup::setupInterface() {
  if (!settings_.setup_interface) return true;
  std::lock_guard<std::mutex> lock(work_mu_);
  needs_teardown_ = true;
  return links_->ensureInterface(settings_.interface_name, settings_.local_ips);
}

bool HostSetup::setupRules() {
  if (!settings_.setup_iptables) return true;
  std::lock_guard<std::mutex> lock(work_mu_);
  rules_enabled_ = true;
  needs_teardown_ = true;
  return ensureRules() >= 0;
}

bool HostSetup::ensureOnce() {
  std::lock_guard<std::mutex> lock(work_mu_);
  bool ok = true;
  if (settings_.setup_iptables && rules_enabled_) ok = ensureRules() >= 0 && ok;
  if (settings_.setup_interface) {
    needs_teardown_ = true;
    ok = links_->ensureInterface(settings_.interface_name, settings_.local_ips) && ok;
  }
  return ok;
}

void HostSetup::startPeriodic(std::chrono::nanoseconds interval) {
  std::lock_guard<std::mutex> lock(thread_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this, interval] { run(interval); });
}

void HostSetup::run(std::chrono::nanoseconds interval) {
  std::unique_lock<std::mutex> lock(thread_mu_);
  while (!stop_) {
    if (cv_.wait_for(lock, interval, [this] { return stop_; })) break;
    lock.unlock();
    ensureOnce();
    lock.lock();
  }
}

void HostSetup::stopPeriodic() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stop_ = true;
    cv_.notify_all();
    t = std::move(thread_);
  }
  if (t.joinable()) {
    t.join();
    log::warn("Exiting iptables/interface check goroutine");
  }
}

void HostSetup::teardown() {
  stopPeriodic();
  std::lock_guard<std::mutex> lock(work_mu_);
  if (!needs_teardown_) return;
  if (settings_.setup_iptables) {
    for (auto& backend : rules_) backend->teardown();
  }
  if (settings_.setup_interface) links_->teardown(settings_.interface_name, settings_.local_ips);
  rules_enabled_ = false;
  needs_teardown_ = false;
}

}  // namespace nld::node
