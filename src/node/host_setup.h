#pragma once
// Orchestrates node-cache's host side (kubernetes/dns cmd/node-cache/app/cache_app.go):
//   setupInterface()  before the DNS listeners bind (the local IPs must exist to bind them);
//   setupRules()      after the listeners are up and the pidfile is written (NOTRACK rules
//                     without a listening server black-hole node DNS); the rules go through
//                     iptables (Iptables) or our own nftables table (Nftables) per -firewall;
//                     with both families in -localip (dual-stack) the iptables backend runs
//                     one Iptables per family (iptables for the IPv4 addresses' rules, ip6tables
//                     for the IPv6 ones), and the `inet` nftables table holds both;
//   startPeriodic(i)  re-ensures rules (once enabled by setupRules) and the interface every i;
//   teardown()        stops the periodic thread, removes every copy of every rule, then removes
//                     the interface (or only our addresses on a link we do not own).
// Errors are logged and reported through the callback with the errortype of
// coredns_nodecache_setup_errors_total (iptables, iptables_lock, interface_add, interface_check);
// none is fatal.
//
// Thread affinity: all public methods may be called from any thread (e.g. teardown() from a
// signal-handling thread while the periodic thread runs); link and iptables work is serialised by
// an internal mutex. The error callback runs on the calling thread or the periodic thread.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "node/backends.h"
#include "node/iptables.h"
#include "node/link_manager.h"
#include "node/local_ip.h"
#include "node/nftables.h"

namespace nld::node {

struct Options;  // node/options.h: only fromOptions() reads it

/// What HostSetup drives: the interface holder and the rule backends, in the order they are
/// ensured (seams: backends.h). realBackends() builds the real ones; tests pass fakes.
struct HostBackends {
  std::unique_ptr<InterfaceManager> links;
  std::vector<std::unique_ptr<RuleBackend>> rules;
  Firewall firewall = Firewall::kIptables;  ///< which kind `rules` are (never kAuto)
};

struct HostSetupSettings {
  bool setup_interface = true;
  bool setup_iptables = true;
  std::string interface_name = "nodelocaldns";
  std::vector<LocalIp> local_ips;
  uint16_t dns_port = 53;
  uint16_t health_port = 8080;
  /// Settings of every per-family Iptables; `family` is ignored (each runner gets its own).
  IptablesSettings iptables;
  /// -firewall; auto is resolved (chooseFirewall, logged) when HostSetup is constructed with
  /// setup_iptables on.
  Firewall firewall = Firewall::kIptables;
  NftablesSettings nftables;

  /// The settings node-cache's flags imply.
  static HostSetupSettings fromOptions(const Options& options);
};

class HostSetup {
 public:
  using ErrorCallback = std::function<void(std::string_view errortype)>;

  /// With the real backends (realBackends: LinkManager, one Iptables per family or Nftables).
  HostSetup(HostSetupSettings settings, ErrorCallback on_error = {});
  HostSetup(HostSetupSettings settings, HostBackends backends, ErrorCallback on_error = {});
  /// The real backends for `settings` (-firewall auto is resolved here and the choice logged).
  static HostBackends realBackends(const HostSetupSettings& settings,
                                   const ErrorCallback& on_error);
  ~HostSetup();  // stops the periodic thread; does NOT tear down (the caller decides,
                 // -skipteardown)
  HostSetup(const HostSetup&) = delete;
  HostSetup& operator=(const HostSetup&) = delete;

  /// Ensures the interface and its addresses (no-op returning true without -setupinterface).
  bool setupInterface();
  /// Ensures the iptables rules and enables them in the periodic pass (no-op without
  /// -setupiptables). @return false on error (logged, counted; the periodic pass retries).
  bool setupRules();
  /// One periodic pass: rules (if enabled) then the interface. @return true if both succeeded.
  bool ensureOnce();
  /// Starts the periodic thread (first pass after one interval). Idempotent.
  void startPeriodic(std::chrono::nanoseconds interval);
  /// Stops the periodic thread promptly. Idempotent. Logs
  /// `Exiting iptables/interface check goroutine` like upstream.
  void stopPeriodic();
  /// Stops the periodic pass, removes the rules, then the interface/addresses (the caller logs
  /// upstream's `Tearing down` and skips this for -skipteardown). Idempotent: a
  /// second call does nothing unless setup ran again in between.
  void teardown();

  // For the root tests of the real backends (they throw std::logic_error on fakes or in the
  // other firewall mode).
  /// The iptables runner of the first local IP's family (the only one unless dual-stack).
  Iptables& iptables();
  /// The iptables runner of `family` (AF_INET/AF_INET6), nullptr if no local IP has it.
  Iptables* iptables(int family);
  /// The backend in use: kIptables or kNftables (never kAuto).
  Firewall firewall() const { return firewall_; }
  LinkManager& links();

 private:
  void run(std::chrono::nanoseconds interval);
  int ensureRules();  // with work_mu_ held

  HostSetupSettings settings_;
  ErrorCallback on_error_;
  std::mutex work_mu_;  // serialises link/iptables work
  std::unique_ptr<InterfaceManager> links_;
  // Iptables: one per family of local_ips, first IP's family first; or one Nftables.
  std::vector<std::unique_ptr<RuleBackend>> rules_;
  Firewall firewall_ = Firewall::kIptables;
  bool rules_enabled_ = false;
  bool needs_teardown_ = false;

  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace nld::node
