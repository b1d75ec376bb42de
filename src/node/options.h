#pragma once
// node-cache's command line: every flag of k8s-dns-node-cache (node-cache's own flags plus the
// CoreDNS flags it inherits), with Go flag syntax (nld::flags) and the upstream validation, minus
// the upstream bugs (see docs/operator-guide.md): -syncinterval takes integer seconds or a Go
// duration, and the output Corefile path is -conf when given, else -corefile.
//
// Thread affinity: parseOptions runs once on the main thread at startup; Options is a plain value.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flags/flag_set.h"
#include "node/local_ip.h"

namespace nld::node {

struct Options {
  // node-cache's own flags (kubernetes/dns:cmd/node-cache/main.go).
  std::string localip;  ///< -localip, comma-separated, as given
  /// Parsed -localip elements, in order; IPv4 and IPv6 may be mixed (dual-stack). The first one
  /// is the primary address: the health address in the rendered Corefile (__PILLAR__LOCAL__DNS__:
  /// in host:port position), like the upstream manifest's single LOCAL_DNS.
  std::vector<LocalIp> local_ips;
  bool setup_interface = true;                                        ///< -setupinterface
  std::string interface_name = "nodelocaldns";                        ///< -interfacename
  std::chrono::nanoseconds sync_interval = std::chrono::seconds(60);  ///< -syncinterval
  std::string metrics_listen_address = "0.0.0.0:9353";                ///< -metrics-listen-address
  bool setup_iptables = true;                                         ///< -setupiptables
  /// -firewall: iptables (the upstream's rules through the iptables binaries), nftables (our own
  /// `inet node-local-dns` table over netlink) or auto (nftables when kube-proxy runs in nftables
  /// mode or no iptables binary is on PATH). -setupiptables=false disables either.
  Firewall firewall = Firewall::kIptables;
  std::string base_corefile = "/etc/coredns/Corefile.base";  ///< -basecorefile
  std::string corefile = "/etc/Corefile";  ///< -corefile (output path unless -conf is given)
  std::string kubednscm;                   ///< -kubednscm ("" → /etc/kube-dns if it exists)
  std::string upstream_svc = "kube-dns";   ///< -upstreamsvc
  uint16_t health_port = 8080;             ///< -health-port (only used in two NOTRACK rules)
  bool skip_teardown = false;              ///< -skipteardown
  bool reload_with_signal = false;         ///< -reloadwithsignal
  // CoreDNS flags.
  std::string conf;        ///< -conf (wins over -corefile when set)
  std::string pidfile;     ///< -pidfile
  uint16_t dns_port = 53;  ///< -dns.port / -p
  bool version = false;    ///< -version
  bool quiet = false;      ///< -quiet
  bool plugins = false;    ///< -plugins (list compiled-in plugins and exit)
  // Ours.
  bool default_config = false;  ///< -default-config: embedded Corefile on 127.0.0.1:5353
  int64_t workers = 0;          ///< -workers (0 = one per CPU)
  /// -statedir: where node-cache keeps state across restarts (the cache snapshot; the handover
  /// socket). "" disables it.
  std::string statedir = "/var/run/node-local-dns";
  /// -snapshotinterval: how often the cache snapshot is rewritten while serving.
  std::chrono::nanoseconds snapshot_interval = std::chrono::seconds(60);
  /// -probe-ready ADDR: do not serve; ask the node-cache on ADDR (ip:port) who it is and exit 0
  /// only if it is this process's identity (the readiness probe, cmd/node-cache/ready_probe.h).
  std::string probe_ready;

  /// The Corefile node-cache writes and the DNS server loads: -conf if set, else -corefile.
  std::string output_corefile;
  /// AF_INET or AF_INET6 of the first (primary) local IP (0 if there are none).
  int family() const { return local_ips.empty() ? 0 : local_ips.front().family; }
  /// -localip with commas turned into spaces (__PILLAR__LOCAL__DNS__, stub-domain `bind`).
  std::string localIpsSpaceSeparated() const;
};

/// Parses and validates argv like node-cache: every -localip element an IP (IPv4 and IPv6 may be
/// mixed, unlike upstream), integer ports, no positional arguments. With -version, -plugins or
/// -probe-ready validation is skipped.
/// With -default-config, -setupinterface/-setupiptables are forced off and -localip defaults to
/// 127.0.0.1 and the port to 5353 unless given.
/// @throws flags::FlagError with a one-line message; flags::HelpRequested for -h/-help.
Options parseOptions(int argc, const char* const* argv);

/// Go-style usage text of node-cache's flags (for -h).
std::string optionsUsage(const std::string& program = "node-cache");

}  // namespace nld::node
