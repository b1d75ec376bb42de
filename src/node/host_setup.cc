#include "node/host_setup.h"

#include "common/log.h"

namespace nld::node {

HostSetupSettings HostSetupSettings::fromOptions(const Options& o) {
  HostSetupSettings s;
  s.setup_interface = o.setup_interface;
  s.setup_iptables = o.setup_iptables;
  s.interface_name = o.interface_name;
  s.local_ips = o.local_ips;
  s.dns_port = o.dns_port;
  s.health_port = o.health_port;
  s.iptables.family = o.family();
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

IptablesSettings withFamily(IptablesSettings s, const std::vector<LocalIp>& ips) {
  if (s.family == 0 && !ips.empty()) s.family = ips.front().family;
  return s;
}
}  // namespace

HostSetup::HostSetup(HostSetupSettings settings, ErrorCallback on_error)
    : settings_(std::move(settings)),
      on_error_(std::move(on_error)),
      links_(on_error_),
      iptables_(withFamily(settings_.iptables, settings_.local_ips),
                nodeLocalDnsRules(settings_.local_ips, settings_.dns_port, settings_.health_port),
                on_error_),
      firewall_(resolveFirewall(settings_)),
      nftables_(settings_.nftables,
                nodeLocalDnsRules(settings_.local_ips, settings_.dns_port, settings_.health_port),
                on_error_) {}

int HostSetup::ensureRules() {
  return firewall_ == Firewall::kNftables ? nftables_.ensure() : iptables_.ensure();
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
  return links_.ensureInterface(settings_.interface_name, settings_.local_ips);
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
    ok = links_.ensureInterface(settings_.interface_name, settings_.local_ips) && ok;
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
    if (firewall_ == Firewall::kNftables) {
      nftables_.teardown();
    } else {
      iptables_.teardown();
    }
  }
  if (settings_.setup_interface) links_.teardown(settings_.interface_name, settings_.local_ips);
  rules_enabled_ = false;
  needs_teardown_ = false;
}

}  // namespace nld::node
