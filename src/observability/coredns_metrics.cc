#include "observability/coredns_metrics.h"

namespace nld::observability {

namespace {
const std::vector<std::string> kServerLabels = {"server", "zone", "view"};
const std::vector<std::string> kCacheLabels = {"server", "zones", "view"};
const std::vector<std::string> kCacheTypeLabels = {"server", "zones", "view", "type"};
}  // namespace

std::vector<double> CorednsMetrics::durationBuckets() {
  // 0.00025 * 2^k, k = 0..15 (CoreDNS's ExponentialBuckets(0.00025, 2, 16)). A product, not
  // std::ldexp: ldexp is node-cache's only libm symbol, and without it libm (~0.4 MiB resident
  // when mapped) is not loaded at all (-Wl,--as-needed). Multiplying by a power of two is exact.
  std::vector<double> b;
  double v = 0.00025;
  for (int k = 0; k <= 15; ++k, v *= 2) b.push_back(v);
  return b;
}

std::vector<double> CorednsMetrics::sizeBuckets() {
  return {0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3};
}

std::vector<double> CorednsMetrics::healthBuckets() { return {0.00025, 0.0025, 0.025, 0.25, 2.5}; }

std::string_view CorednsMetrics::typeLabel(uint16_t qtype) {
  switch (qtype) {
    case 1:
      return "A";
    case 2:
      return "NS";
    case 5:
      return "CNAME";
    case 6:
      return "SOA";
    case 12:
      return "PTR";
    case 15:
      return "MX";
    case 16:
      return "TXT";
    case 28:
      return "AAAA";
    case 33:
      return "SRV";
    case 43:
      return "DS";
    case 46:
      return "RRSIG";
    case 47:
      return "NSEC";
    case 48:
      return "DNSKEY";
    case 50:
      return "NSEC3";
    case 65:
      return "HTTPS";
    case 251:
      return "IXFR";
    case 252:
      return "AXFR";
    case 255:
      return "ANY";
    default:
      return "other";
  }
}

std::string CorednsMetrics::rcodeLabel(uint8_t rcode) {
  static constexpr const char* kNames[] = {
      "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
      "NXRRSET", "NOTAUTH", "NOTZONE",  nullptr,    nullptr,   nullptr,   nullptr,    nullptr,
      "BADSIG",  "BADKEY",  "BADTIME",  "BADMODE",  "BADNAME", "BADALG",  "BADTRUNC", "BADCOOKIE"};
  if (rcode < std::size(kNames) && kNames[rcode] != nullptr) {
    return kNames[rcode];
  }
  return "RCODE" + std::to_string(rcode);
}

std::string CorednsMetrics::compilerVersion() {
#if defined(__clang__)
  return "clang-" + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__);
#elif defined(__GNUC__)
  return "gcc-" + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__);
#else
  return "unknown";
#endif
}

CorednsMetrics::CorednsMetrics(Registry& r, const BuildInfo& build,
                               bool with_node_cache_setup_errors)
    : registry(r),
      build_info(r.gauge("coredns_build_info",
                         "A metric with a constant '1' value labeled by version, revision, and "
                         "goversion from which CoreDNS was built.",
                         {"version", "revision", "goversion"})),
      panics(r.counter("coredns_panics_total", "A metrics that counts the number of panics.")),
      dns_requests(r.counter("coredns_dns_requests_total",
                             "Counter of DNS requests made per zone, protocol and family.",
                             {"server", "zone", "view", "proto", "family", "type"})),
      dns_request_duration(
          r.histogram("coredns_dns_request_duration_seconds",
                      "Histogram of the time (in seconds) each request took per zone.",
                      kServerLabels, durationBuckets())),
      dns_request_size(r.histogram("coredns_dns_request_size_bytes",
                                   "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone "
                                   "and protocol.",
                                   {"server", "zone", "view", "proto"}, sizeBuckets())),
      dns_response_size(r.histogram("coredns_dns_response_size_bytes",
                                    "Size of the returned response in bytes.",
                                    {"server", "zone", "view", "proto"}, sizeBuckets())),
      dns_do_requests(r.counter("coredns_dns_do_requests_total",
                                "Counter of DNS requests with DO bit set per zone.",
                                kServerLabels)),
      dns_responses(r.counter("coredns_dns_responses_total", "Counter of response status codes.",
                              {"server", "zone", "view", "rcode", "plugin"})),
      plugin_enabled(r.gauge("coredns_plugin_enabled",
                             "A metric that indicates whether a plugin is enabled on per server "
                             "and zone basis.",
                             {"server", "zone", "view", "name"})),
      cache_entries(r.gauge("coredns_cache_entries", "The number of elements in the cache.",
                            kCacheTypeLabels)),
      cache_requests(
          r.counter("coredns_cache_requests_total", "The count of cache requests.", kCacheLabels)),
      cache_hits(
          r.counter("coredns_cache_hits_total", "The count of cache hits.", kCacheTypeLabels)),
      cache_misses(r.counter("coredns_cache_misses_total",
                             "The count of cache misses. Deprecated, derive misses from cache "
                             "hits/requests counters.",
                             kCacheLabels)),
      cache_prefetch(r.counter("coredns_cache_prefetch_total",
                               "The number of times the cache has prefetched a cached item.",
                               kCacheLabels)),
      cache_drops(r.counter("coredns_cache_drops_total",
                            "The number responses that are not cached, because the reply is "
                            "malformed.",
                            kCacheLabels)),
      cache_served_stale(r.counter("coredns_cache_served_stale_total",
                                   "The number of requests served from stale cache entries.",
                                   kCacheLabels)),
      cache_evictions(r.counter("coredns_cache_evictions_total", "The count of cache evictions.",
                                kCacheTypeLabels)),
      proxy_request_duration(r.histogram("coredns_proxy_request_duration_seconds",
                                         "Histogram of the time each request took.",
                                         {"proxy_name", "to", "rcode"}, durationBuckets())),
      proxy_healthcheck_failures(r.counter("coredns_proxy_healthcheck_failures_total",
                                           "Counter of the number of failed healthchecks.",
                                           {"proxy_name", "to"})),
      proxy_conn_cache_hits(r.counter("coredns_proxy_conn_cache_hits_total",
                                      "Counter of connection cache hits per upstream and protocol.",
                                      {"proxy_name", "to", "proto"})),
      proxy_conn_cache_misses(
          r.counter("coredns_proxy_conn_cache_misses_total",
                    "Counter of connection cache misses per upstream and protocol.",
                    {"proxy_name", "to", "proto"})),
      forward_healthcheck_broken(
          r.counter("coredns_forward_healthcheck_broken_total",
                    "Counter of the number of complete failures of the healthchecks.")),
      forward_max_concurrent_rejects(
          r.counter("coredns_forward_max_concurrent_rejects_total",
                    "Counter of the number of queries rejected because the concurrent queries "
                    "were at maximum.")),
      reload_failed(r.counter("coredns_reload_failed_total",
                              "Counter of the number of failed reload attempts.")),
      reload_version_info(r.gauge("coredns_reload_version_info",
                                  "A metric with a constant '1' value labeled by hash, and value "
                                  "which type of hash generated.",
                                  {"hash", "value"})),
      health_request_duration(r.histogram("coredns_health_request_duration_seconds",
                                          "Histogram of the time (in seconds) each request took.",
                                          {}, healthBuckets())),
      health_request_failures(r.counter("coredns_health_request_failures_total",
                                        "The number of times the health check failed.")),
      nodecache_setup_errors(nullptr) {
  BuildInfo b = build;
  if (b.goversion.empty()) {
    b.goversion = compilerVersion();
  }
  build_info.with({b.version, b.revision, b.goversion}).set(1);
  // Plain (label-less) collectors exist at 0 from registration, as in Go.
  panics.with();
  forward_healthcheck_broken.with();
  forward_max_concurrent_rejects.with();
  reload_failed.with();
  health_request_failures.with();
  health_request_duration.with();
  if (with_node_cache_setup_errors) {
    nodecache_setup_errors = &r.counter(
        "coredns_nodecache_setup_errors_total",
        "The number of errors during periodic network setup for node-cache", {"errortype"});
    for (std::string_view t : kSetupErrorTypes) {
      nodecache_setup_errors->with({std::string(t)});
    }
  }
}

}  // namespace nld::observability
