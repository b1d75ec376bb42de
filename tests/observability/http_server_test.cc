#include "observability/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "observability/coredns_metrics.h"

namespace nld::observability {
namespace {

httplib::Result get(const std::string& host, uint16_t port, const std::string& path) {
  httplib::Client c(host, port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(2, 0);
  return c.Get(path.c_str());
}

/// A listening TCP socket on 127.0.0.1 (ephemeral port) without SO_REUSEPORT; closed on scope exit.
struct BusyPort {
  int fd = -1;
  uint16_t port = 0;
  BusyPort() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sockaddr* sp = reinterpret_cast<sockaddr*>(&sa);  // sockets API: sockaddr_in via sockaddr*
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, sp, len) != 0 || listen(fd, 1) != 0 || getsockname(fd, sp, &len) != 0) {
      throw std::runtime_error("BusyPort setup failed");
    }
    port = ntohs(sa.sin_port);
  }
  ~BusyPort() { close(fd); }
};

TEST(ListenAddress, ParsesCorednsForms) {
  auto a = parseListenAddress(":8080");
  EXPECT_EQ(a.host, "");
  EXPECT_EQ(a.port, 8080);
  a = parseListenAddress("127.0.0.1:9253");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 9253);
  a = parseListenAddress("[::1]:8080");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 8080);
  a = parseListenAddress("localhost:9153");
  EXPECT_EQ(a.host, "localhost");
  EXPECT_EQ(a.port, 9153);
  a = parseListenAddress("0.0.0.0:0");
  EXPECT_EQ(a.port, 0);
}

TEST(ListenAddress, RejectsBadInputClearly) {
  for (const char* bad : {"", "8080", "127.0.0.1", "127.0.0.1:", ":65536", ":80a", "::1:80",
                          "[::1]", "[::1]80", "[]:80", ":123456"}) {
    SCOPED_TRACE(bad);
    try {
      parseListenAddress(bad);
      ADD_FAILURE() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("listen address"), std::string::npos) << e.what();
    }
  }
}

TEST(HttpServer, HealthOkAndLameduck) {
  HttpServer s("127.0.0.1:0");
  s.enableHealth();
  s.start();
  ASSERT_NE(s.port(), 0);
  auto res = get("127.0.0.1", s.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "OK");

  s.setLameduck(true);
  res = get("127.0.0.1", s.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "lameduck");

  s.setLameduck(false);
  res = get("127.0.0.1", s.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  // Health only: /metrics is not served here.
  res = get("127.0.0.1", s.port(), "/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  s.stop();
  EXPECT_EQ(s.port(), 0);
  EXPECT_FALSE(get("127.0.0.1", s.port(), "/health"));
}

TEST(HttpServer, MetricsContentTypeAndBody) {
  Registry r;
  Counter c = r.counter("scrape_test_total", "Help text.", {"a"}).with({"b"});
  c.add(41);
  HttpServer s("127.0.0.1:0");
  s.enableMetrics(r);
  s.start();
  c.inc();
  auto res = get("127.0.0.1", s.port(), "/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res->body,
            "# HELP scrape_test_total Help text.\n"
            "# TYPE scrape_test_total counter\n"
            "scrape_test_total{a=\"b\"} 42\n");
  res = get("127.0.0.1", s.port(), "/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = get("127.0.0.1", s.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST(HttpServer, BindFailureThrowsClearError) {
  BusyPort busy;
  HttpServer s("127.0.0.1:" + std::to_string(busy.port));
  s.enableHealth();
  try {
    s.start();
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot listen on 127.0.0.1:" + std::to_string(busy.port)),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
  }
  s.stop();  // harmless after a failed start
}

TEST(HttpServer, BadAddressThrowsInConstructor) {
  EXPECT_THROW(HttpServer("nonsense"), std::invalid_argument);
}

TEST(HttpServer, UnresolvableHostThrowsOnStart) {
  HttpServer s("192.0.2.300:0");
  s.enableHealth();
  try {
    s.start();
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 192.0.2.300:0: "), std::string::npos)
        << e.what();
  }
}

TEST(HttpServer, AllAddressesAndRestart) {
  HttpServer s(":0");
  s.enableHealth();
  s.start();
  const uint16_t p = s.port();
  ASSERT_NE(p, 0);
  auto res = get("127.0.0.1", p, "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "OK");
  s.stop();
  s.stop();  // idempotent
  s.start();
  res = get("127.0.0.1", s.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HttpServer, Ipv6Loopback) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  const bool ok = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  if (probe >= 0) {
    close(probe);
  }
  if (!ok) {
    GTEST_SKIP() << "no IPv6 loopback in this environment";
  }
  HttpServer s("[::1]:0");
  s.enableHealth();
  s.start();
  auto res = get("::1", s.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "OK");
}

TEST(HttpEndpoints, EqualAddressesShareOneServer) {
  Registry r;
  r.gauge("shared_gauge", "h").with().set(7);
  HttpEndpoints eps;
  HttpServer& h = eps.addHealth("127.0.0.1:0");
  HttpServer& m = eps.addMetrics("127.0.0.1:0", r);
  EXPECT_EQ(&h, &m);
  HttpServer& other = eps.addHealth("localhost:0");
  EXPECT_NE(&other, &h);
  EXPECT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps.find("127.0.0.1:0"), &h);
  EXPECT_EQ(eps.find("127.0.0.1:1"), nullptr);
  Registry r2;
  EXPECT_THROW(eps.addMetrics("127.0.0.1:0", r2), std::invalid_argument);

  eps.start();
  auto res = get("127.0.0.1", h.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "OK");
  res = get("127.0.0.1", h.port(), "/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("shared_gauge 7\n"), std::string::npos);
  res = get("127.0.0.1", other.port(), "/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  eps.setLameduck(true);
  EXPECT_EQ(get("127.0.0.1", h.port(), "/health")->status, 503);
  EXPECT_EQ(get("127.0.0.1", other.port(), "/health")->status, 503);
  eps.stop();
}

TEST(HttpEndpoints, StartFailureStopsTheOthers) {
  BusyPort busy;
  HttpEndpoints eps;
  HttpServer& ok = eps.addHealth("127.0.0.1:0");
  eps.addHealth("127.0.0.1:" + std::to_string(busy.port));
  EXPECT_THROW(eps.start(), std::runtime_error);
  EXPECT_EQ(ok.port(), 0);  // stopped again
}

TEST(HttpServer, HealthProbeRecordsDuration) {
  Registry r;
  auto& dur = r.histogram("probe_seconds", "h", {}, {0.25, 2.5});
  auto& fail = r.counter("probe_failures_total", "h");
  HttpServer s("127.0.0.1:0");
  s.enableHealth();
  s.enableHealthProbe(dur.with(), fail.with());
  s.start();
  Histogram h = dur.with();
  for (int i = 0; i < 50 && h.count() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(h.count(), 2u);
  EXPECT_EQ(fail.with().value(), 0u);
  s.setLameduck(true);  // the probe now gets 503: counted as a failure
  const uint64_t before = h.count();
  for (int i = 0; i < 30 && fail.with().value() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(fail.with().value(), 1u);
  EXPECT_GT(h.count(), before);
  s.stop();
}

/// Runs a command, returns (exit status, stdout).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return {-1, out};
  }
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(HttpServer, ExpositionParsesWithPrometheusClient) {
  Registry r;
  CorednsMetrics m(r, BuildInfo{"1.13.2", "deadbeef", ""});
  registerProcessCollector(r);
  const std::string server = "dns://169.254.20.10:53";
  m.dnsRequests.with({server, "cluster.local.", "", "udp", "1", "A"}).add(3);
  m.dnsRequestDuration.with({server, "cluster.local.", ""}).observe(0.0003);
  m.dnsRequestSize.with({server, "cluster.local.", "", "udp"}).observe(1232);
  m.dnsResponses.with({server, "cluster.local.", "", "NOERROR", "cache"}).inc();
  m.proxyRequestDuration.with({"forward", "10.96.0.10:53", "NOERROR"}).observe(0.02);
  m.cacheEntries.with({server, "cluster.local.", "", "success"}).set(12);
  m.pluginEnabled.with({server, "cluster.local.", "", "cache"}).set(1);
  m.reloadVersionInfo.with({"sha512", "ab\"c\\d"}).set(1);  // escaping must round-trip

  HttpServer s("127.0.0.1:0");
  s.enableMetrics(r);
  s.start();
  const auto [status, out] = run(std::string("/usr/bin/python3 ") + NLD_OBS_TEST_DIR +
                                 "/check_exposition.py http://127.0.0.1:" +
                                 std::to_string(s.port()) + "/metrics");
  ASSERT_EQ(status, 0) << out;
  for (const char* line :
       {"coredns_build_info gauge 1\n", "coredns_panics counter 1\n",
        "coredns_dns_requests counter 1\n",
        "coredns_dns_request_duration_seconds histogram 19\n",  // 16 + Inf + sum + count
        "coredns_dns_request_size_bytes histogram 17\n",        // 14 + Inf + sum + count
        "coredns_proxy_request_duration_seconds histogram 19\n",
        "coredns_health_request_duration_seconds histogram 8\n",
        "coredns_nodecache_setup_errors counter 5\n", "coredns_reload_version_info gauge 1\n",
        "process_cpu_seconds counter 1\n", "process_resident_memory_bytes gauge 1\n",
        "process_start_time_seconds gauge 1\n"}) {
    EXPECT_NE(out.find(line), std::string::npos) << line << "\n" << out;
  }
}

}  // namespace
}  // namespace nld::observability
