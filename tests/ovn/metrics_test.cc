#include "ovn/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <stdexcept>
#include <string>

#include "net/fd.h"

namespace nld::ovn {
namespace {

// The controller's families and types: the monitoring contract (deploy/monitoring's rules and
// dashboard, docs/ovn-controller.md). A rename must show up here.
const std::map<std::string, std::string> kFamilies = {
    {"nld_ovn_reconciliations_total", "counter"},
    {"nld_ovn_transactions_total", "counter"},
    {"nld_ovn_changes_applied_total", "counter"},
    {"nld_ovn_conflicts_total", "counter"},
    {"nld_ovn_errors_total", "counter"},
    {"nld_ovn_connects_total", "counter"},
    {"nld_ovn_connected", "gauge"},
    {"nld_ovn_nodes", "gauge"},
    {"nld_ovn_desired_policies", "gauge"},
    {"nld_ovn_missing_port_groups", "gauge"},
    {"nld_ovn_unconnected_underlay_switches", "gauge"},
    {"nld_ovn_shadowing_policies", "gauge"},
    {"nld_ovn_failed_over_policies", "gauge"},
    {"nld_ovn_last_success_timestamp_seconds", "gauge"},
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(OvnMetrics, EveryFamilyIsRenderedAtZeroBeforeTheFirstPass) {
  Metrics m;
  const std::string text = m.render();
  for (const auto& [name, type] : kFamilies) {
    EXPECT_TRUE(contains(text, "# HELP " + name + " ")) << name;
    EXPECT_TRUE(contains(text, "# TYPE " + name + " " + type + "\n")) << name;
    EXPECT_TRUE(contains(text, "\n" + name + " 0\n")) << name;
  }
  EXPECT_FALSE(m.isConnected());
}

TEST(OvnMetrics, UpdatesShowInTheExposition) {
  Metrics m;
  m.reconciliations.inc();
  m.reconciliations.inc();
  m.changes_applied.add(5);
  m.connected.set(1);
  m.nodes.set(3);
  m.last_success_unix.set(1700000000);
  const std::string text = m.render();
  EXPECT_TRUE(contains(text, "\nnld_ovn_reconciliations_total 2\n")) << text;
  EXPECT_TRUE(contains(text, "\nnld_ovn_changes_applied_total 5\n")) << text;
  EXPECT_TRUE(contains(text, "\nnld_ovn_connected 1\n")) << text;
  EXPECT_TRUE(contains(text, "\nnld_ovn_nodes 3\n")) << text;
  // Go's strconv 'g' formatting, as the Prometheus Go client writes it.
  EXPECT_TRUE(contains(text, "\nnld_ovn_last_success_timestamp_seconds 1.7e+09\n")) << text;
  EXPECT_TRUE(m.isConnected());
  m.connected.set(0);
  EXPECT_FALSE(m.isConnected());
}

TEST(OvnMetrics, TwoMetricsObjectsAreIndependent) {
  Metrics a;
  Metrics b;
  a.errors.inc();
  EXPECT_EQ(a.errors.value(), 1u);
  EXPECT_EQ(b.errors.value(), 0u);
}

// One HTTP/1.0 exchange with 127.0.0.1:port (the server closes after answering); the whole
// response, or "" on a socket error. Bounded: 5 s receive timeout.
std::string exchange(uint16_t port, const std::string& request) {
  const net::Fd owned(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!owned) return "";
  const int fd = owned.get();
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(OvnMetricsServer, HealthzFollowsTheConnectionAndMetricsServeTheRegistry) {
  Metrics m;
  MetricsServer server(m);
  server.start("127.0.0.1:0");
  ASSERT_NE(server.port(), 0);
  const std::string down = exchange(server.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(down.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << down;
  EXPECT_TRUE(contains(down, "\r\n\r\nnot connected to OVN NB\n")) << down;
  m.connected.set(1);
  const std::string up = exchange(server.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(up.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << up;
  EXPECT_TRUE(contains(up, "Content-Length: 3\r\n")) << up;
  EXPECT_TRUE(contains(up, "\r\n\r\nok\n")) << up;
  const std::string head = exchange(server.port(), "HEAD /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_FALSE(contains(head, "ok\n")) << head;
  m.transactions.inc();
  const std::string metrics = exchange(server.port(), "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(metrics.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << metrics;
  EXPECT_TRUE(contains(metrics, "\nnld_ovn_transactions_total 1\n")) << metrics;
  EXPECT_TRUE(contains(metrics, "\nnld_ovn_connected 1\n")) << metrics;
  // node-cache's /health is not served here.
  const std::string other = exchange(server.port(), "GET /health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(other.rfind("HTTP/1.1 404 ", 0), 0u) << other;
}

TEST(OvnMetricsServer, MalformedAddressIsAClearError) {
  Metrics m;
  MetricsServer server(m);
  EXPECT_THROW(server.start("10667"), std::invalid_argument);
  EXPECT_THROW(server.start("127.0.0.1:99999"), std::invalid_argument);
  EXPECT_EQ(server.port(), 0);
}

TEST(OvnMetricsServer, PortInUseIsAClearError) {
  Metrics m;
  MetricsServer first(m);
  first.start("127.0.0.1:0");
  ASSERT_NE(first.port(), 0);
  MetricsServer second(m);
  try {
    second.start("127.0.0.1:" + std::to_string(first.port()));
    FAIL() << "second bind on the same port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "cannot listen on")) << e.what();
  }
  first.stop();
  first.stop();  // idempotent
  EXPECT_EQ(first.port(), 0);
}

}  // namespace
}  // namespace nld::ovn
