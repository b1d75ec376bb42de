#include "observability/coredns_metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nld::observability {
namespace {

struct Expected {
  const char* name;
  MetricType type;
  std::vector<std::string> labels;
};

// Written from the CoreDNS v1.13 and node-cache code (READMEs list labels the code lacks).
const std::vector<Expected> kCatalogue = {
    {"coredns_build_info", MetricType::kGauge, {"version", "revision", "goversion"}},
    {"coredns_panics_total", MetricType::kCounter, {}},
    {"coredns_dns_requests_total",
     MetricType::kCounter,
     {"server", "zone", "view", "proto", "family", "type"}},
    {"coredns_dns_request_duration_seconds", MetricType::kHistogram, {"server", "zone", "view"}},
    {"coredns_dns_request_size_bytes", MetricType::kHistogram, {"server", "zone", "view", "proto"}},
    {"coredns_dns_response_size_bytes",
     MetricType::kHistogram,
     {"server", "zone", "view", "proto"}},
    {"coredns_dns_do_requests_total", MetricType::kCounter, {"server", "zone", "view"}},
    {"coredns_dns_responses_total",
     MetricType::kCounter,
     {"server", "zone", "view", "rcode", "plugin"}},
    {"coredns_plugin_enabled", MetricType::kGauge, {"server", "zone", "view", "name"}},
    {"coredns_cache_entries", MetricType::kGauge, {"server", "zones", "view", "type"}},
    {"coredns_cache_requests_total", MetricType::kCounter, {"server", "zones", "view"}},
    {"coredns_cache_hits_total", MetricType::kCounter, {"server", "zones", "view", "type"}},
    {"coredns_cache_misses_total", MetricType::kCounter, {"server", "zones", "view"}},
    {"coredns_cache_prefetch_total", MetricType::kCounter, {"server", "zones", "view"}},
    {"coredns_cache_drops_total", MetricType::kCounter, {"server", "zones", "view"}},
    {"coredns_cache_served_stale_total", MetricType::kCounter, {"server", "zones", "view"}},
    {"coredns_cache_evictions_total", MetricType::kCounter, {"server", "zones", "view", "type"}},
    {"coredns_proxy_request_duration_seconds",
     MetricType::kHistogram,
     {"proxy_name", "to", "rcode"}},
    {"coredns_proxy_healthcheck_failures_total", MetricType::kCounter, {"proxy_name", "to"}},
    {"coredns_proxy_conn_cache_hits_total", MetricType::kCounter, {"proxy_name", "to", "proto"}},
    {"coredns_proxy_conn_cache_misses_total", MetricType::kCounter, {"proxy_name", "to", "proto"}},
    {"coredns_forward_healthcheck_broken_total", MetricType::kCounter, {}},
    {"coredns_forward_max_concurrent_rejects_total", MetricType::kCounter, {}},
    {"coredns_reload_failed_total", MetricType::kCounter, {}},
    {"coredns_reload_version_info", MetricType::kGauge, {"hash", "value"}},
    {"coredns_health_request_duration_seconds", MetricType::kHistogram, {}},
    {"coredns_health_request_failures_total", MetricType::kCounter, {}},
    {"coredns_nodecache_setup_errors_total", MetricType::kCounter, {"errortype"}},
};

TEST(CorednsMetrics, EveryFamilyFromTheSpecIsRegisteredWithItsTypeAndLabels) {
  Registry r;
  CorednsMetrics m(r, BuildInfo{"1.2.3", "abc", ""});
  for (const auto& e : kCatalogue) {
    SCOPED_TRACE(e.name);
    // Re-registering with the expected type and labels must return the existing family (it
    // throws if the type or label names differ).
    switch (e.type) {
      case MetricType::kCounter:
        EXPECT_EQ(r.counter(e.name, "x", e.labels).labelNames(), e.labels);
        break;
      case MetricType::kGauge:
        EXPECT_EQ(r.gauge(e.name, "x", e.labels).labelNames(), e.labels);
        break;
      case MetricType::kHistogram:
        EXPECT_THROW(r.counter(e.name, "x", e.labels), std::invalid_argument);
        break;
    }
  }
  EXPECT_EQ(&m.dns_request_duration,
            &r.histogram("coredns_dns_request_duration_seconds", "x", {"server", "zone", "view"},
                         CorednsMetrics::durationBuckets()));
  EXPECT_EQ(&m.proxy_request_duration,
            &r.histogram("coredns_proxy_request_duration_seconds", "x",
                         {"proxy_name", "to", "rcode"}, CorednsMetrics::durationBuckets()));
  EXPECT_EQ(&m.health_request_duration, &r.histogram("coredns_health_request_duration_seconds", "x",
                                                     {}, {0.00025, 0.0025, 0.025, 0.25, 2.5}));
  const std::vector<double> sizes = {0,    100,  200,  300,  400,  511,  1023,
                                     2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3};
  EXPECT_EQ(m.dns_request_size.bounds(), sizes);
  EXPECT_EQ(m.dns_response_size.bounds(), sizes);
}

TEST(CorednsMetrics, DurationBuckets) {
  const auto b = CorednsMetrics::durationBuckets();
  ASSERT_EQ(b.size(), 16u);
  EXPECT_DOUBLE_EQ(b.front(), 0.00025);
  EXPECT_DOUBLE_EQ(b.back(), 8.192);
  for (size_t i = 1; i < b.size(); ++i) {
    EXPECT_DOUBLE_EQ(b[i], 2 * b[i - 1]);
  }
}

TEST(CorednsMetrics, PreInitialisedSeriesAndBuildInfo) {
  Registry r;
  CorednsMetrics m(r, BuildInfo{"1.2.3", "abc", "gcc-12.2"});
  const std::string text = r.render();
  for (const char* series :
       {"coredns_nodecache_setup_errors_total{errortype=\"iptables\"} 0\n",
        "coredns_nodecache_setup_errors_total{errortype=\"iptables_lock\"} 0\n",
        "coredns_nodecache_setup_errors_total{errortype=\"interface_add\"} 0\n",
        "coredns_nodecache_setup_errors_total{errortype=\"interface_check\"} 0\n",
        "coredns_nodecache_setup_errors_total{errortype=\"configmap\"} 0\n",
        "coredns_build_info{goversion=\"gcc-12.2\",revision=\"abc\",version=\"1.2.3\"} 1\n",
        "coredns_panics_total 0\n", "coredns_reload_failed_total 0\n",
        "coredns_forward_healthcheck_broken_total 0\n",
        "coredns_forward_max_concurrent_rejects_total 0\n",
        "coredns_health_request_failures_total 0\n",
        "# TYPE coredns_nodecache_setup_errors_total counter\n",
        "# TYPE coredns_build_info gauge\n"}) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
  // Vector families without series are not rendered (as in the Go client).
  EXPECT_EQ(text.find("coredns_dns_requests_total"), std::string::npos);

  m.nodecache_setup_errors->with({"iptables"}).inc();
  m.dns_requests.with({"dns://169.254.20.10:53", ".", "", "udp", "1", "A"}).inc();
  const std::string after = r.render();
  EXPECT_NE(after.find("coredns_nodecache_setup_errors_total{errortype=\"iptables\"} 1\n"),
            std::string::npos);
  EXPECT_NE(after.find("coredns_dns_requests_total{family=\"1\",proto=\"udp\",server=\"dns://"
                       "169.254.20.10:53\",type=\"A\",view=\"\",zone=\".\"} 1\n"),
            std::string::npos)
      << after;
}

TEST(CorednsMetrics, WithoutNodeCacheSetupErrors) {
  Registry r;
  CorednsMetrics m(r, {}, false);
  EXPECT_EQ(m.nodecache_setup_errors, nullptr);
  EXPECT_EQ(r.render().find("coredns_nodecache_setup_errors_total"), std::string::npos);
  EXPECT_NE(r.render().find("goversion=\"" + CorednsMetrics::compilerVersion() + "\""),
            std::string::npos);
}

TEST(CorednsMetrics, TypeLabel) {
  EXPECT_EQ(CorednsMetrics::typeLabel(1), "A");
  EXPECT_EQ(CorednsMetrics::typeLabel(28), "AAAA");
  EXPECT_EQ(CorednsMetrics::typeLabel(5), "CNAME");
  EXPECT_EQ(CorednsMetrics::typeLabel(48), "DNSKEY");
  EXPECT_EQ(CorednsMetrics::typeLabel(43), "DS");
  EXPECT_EQ(CorednsMetrics::typeLabel(15), "MX");
  EXPECT_EQ(CorednsMetrics::typeLabel(50), "NSEC3");
  EXPECT_EQ(CorednsMetrics::typeLabel(47), "NSEC");
  EXPECT_EQ(CorednsMetrics::typeLabel(2), "NS");
  EXPECT_EQ(CorednsMetrics::typeLabel(12), "PTR");
  EXPECT_EQ(CorednsMetrics::typeLabel(46), "RRSIG");
  EXPECT_EQ(CorednsMetrics::typeLabel(6), "SOA");
  EXPECT_EQ(CorednsMetrics::typeLabel(33), "SRV");
  EXPECT_EQ(CorednsMetrics::typeLabel(16), "TXT");
  EXPECT_EQ(CorednsMetrics::typeLabel(65), "HTTPS");
  EXPECT_EQ(CorednsMetrics::typeLabel(251), "IXFR");
  EXPECT_EQ(CorednsMetrics::typeLabel(252), "AXFR");
  EXPECT_EQ(CorednsMetrics::typeLabel(255), "ANY");
  EXPECT_EQ(CorednsMetrics::typeLabel(64), "other");  // SVCB
  EXPECT_EQ(CorednsMetrics::typeLabel(0), "other");
  EXPECT_EQ(CorednsMetrics::typeLabel(65535), "other");
}

TEST(CorednsMetrics, RcodeLabel) {
  EXPECT_EQ(CorednsMetrics::rcodeLabel(0), "NOERROR");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(1), "FORMERR");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(2), "SERVFAIL");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(3), "NXDOMAIN");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(4), "NOTIMP");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(5), "REFUSED");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(6), "YXDOMAIN");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(7), "YXRRSET");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(8), "NXRRSET");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(9), "NOTAUTH");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(10), "NOTZONE");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(11), "RCODE11");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(16), "BADSIG");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(23), "BADCOOKIE");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(24), "RCODE24");
  EXPECT_EQ(CorednsMetrics::rcodeLabel(255), "RCODE255");
}

TEST(CorednsMetrics, SecondInstanceSharesFamilies) {
  Registry r;
  CorednsMetrics a(r);
  CorednsMetrics b(r);
  EXPECT_EQ(&a.dns_requests, &b.dns_requests);
  EXPECT_EQ(a.nodecache_setup_errors, b.nodecache_setup_errors);
}

}  // namespace
}  // namespace nld::observability
