#pragma once
// The CoreDNS / node-cache metric catalogue (from the CoreDNS v1.13 and node-cache code, not the
// READMEs): exact names, help texts, types, label names and buckets, so dashboards and alerts
// written for k8s-dns-node-cache keep working.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "observability/metrics.h"

namespace nld::observability {

/// Values of the coredns_build_info labels.
struct BuildInfo {
  std::string version = "unknown";
  std::string revision = "unknown";
  /// CoreDNS puts the Go version here; we put the compiler, e.g. "gcc-12.2". Empty = detect.
  std::string goversion;
};

/// Registers every CoreDNS metric family on construction. Construct once per registry at startup
/// (registering is idempotent, so a second instance on the same registry shares the families).
/// Members are family references; the server creates handles from them at configuration time.
/// Families without labels are pre-created at 0, like Go's plain (non-vector) collectors.
struct CorednsMetrics {
  /// @param with_node_cache_setup_errors false when node-cache's own metrics listener failed to
  /// start
  ///        (as upstream node-cache, the counter is then not registered at all).
  explicit CorednsMetrics(Registry& registry = defaultRegistry(), const BuildInfo& build = {},
                          bool with_node_cache_setup_errors = true);

  /// Request-duration buckets: 0.00025 * 2^k seconds, k = 0..15 (0.25 ms .. 8.192 s).
  static std::vector<double> durationBuckets();
  /// Request/response size buckets of plugin/metrics/vars.
  static std::vector<double> sizeBuckets();
  /// Health self-check buckets: 0.00025, 0.0025, 0.025, 0.25, 2.5 s.
  static std::vector<double> healthBuckets();

  /// The `type` label of coredns_dns_requests_total: A AAAA CNAME DNSKEY DS MX NSEC3 NSEC NS PTR
  /// RRSIG SOA SRV TXT HTTPS IXFR AXFR ANY, anything else "other". Any thread.
  static std::string_view typeLabel(uint16_t qtype);
  /// The `rcode` label: miekg/dns RcodeToString names (16 is "BADSIG", as in miekg), unknown
  /// codes "RCODE<n>". Any thread.
  static std::string rcodeLabel(uint8_t rcode);
  /// Compiler name and version, e.g. "gcc-12.2" or "clang-14.0".
  static std::string compilerVersion();

  Registry& registry;

  // plugin/metrics
  GaugeFamily& build_info;                // coredns_build_info{version,revision,goversion} = 1
  CounterFamily& panics;                  // coredns_panics_total
  CounterFamily& dns_requests;            // {server,zone,view,proto,family,type}
  HistogramFamily& dns_request_duration;  // {server,zone,view}
  HistogramFamily& dns_request_size;      // {server,zone,view,proto}
  HistogramFamily& dns_response_size;     // {server,zone,view,proto}
  CounterFamily& dns_do_requests;         // {server,zone,view}
  CounterFamily& dns_responses;           // {server,zone,view,rcode,plugin}
  GaugeFamily& plugin_enabled;            // {server,zone,view,name} = 1

  // plugin/cache; type is "success" or "denial"
  GaugeFamily& cache_entries;         // {server,zones,view,type}
  CounterFamily& cache_requests;      // {server,zones,view}
  CounterFamily& cache_hits;          // {server,zones,view,type}
  CounterFamily& cache_misses;        // {server,zones,view}
  CounterFamily& cache_prefetch;      // {server,zones,view}
  CounterFamily& cache_drops;         // {server,zones,view}
  CounterFamily& cache_served_stale;  // {server,zones,view}
  CounterFamily& cache_evictions;     // {server,zones,view,type}

  // plugin/forward + pkg/proxy
  HistogramFamily& proxy_request_duration;        // {proxy_name,to,rcode}
  CounterFamily& proxy_healthcheck_failures;      // {proxy_name,to}
  CounterFamily& proxy_conn_cache_hits;           // {proxy_name,to,proto}
  CounterFamily& proxy_conn_cache_misses;         // {proxy_name,to,proto}
  CounterFamily& forward_healthcheck_broken;      // no labels
  CounterFamily& forward_max_concurrent_rejects;  // no labels

  // plugin/reload
  CounterFamily& reload_failed;      // no labels
  GaugeFamily& reload_version_info;  // {hash,value} = 1

  // plugin/health
  HistogramFamily& health_request_duration;  // no labels
  CounterFamily& health_request_failures;    // no labels

  // node-cache: null if not registered. errortype in kSetupErrorTypes, pre-set to 0.
  CounterFamily* nodecache_setup_errors;
  static constexpr std::string_view kSetupErrorTypes[] = {
      "iptables", "iptables_lock", "interface_add", "interface_check", "configmap"};
};

}  // namespace nld::observability
