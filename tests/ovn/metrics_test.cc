#include "ovn/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>

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
  m.changesApplied.add(5);
  m.connected.set(1);
  m.nodes.set(3);
  m.lastSuccessUnix.set(1700000000);
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
