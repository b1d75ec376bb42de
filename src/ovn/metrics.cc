#include "ovn/metrics.h"

namespace nld::ovn {

namespace {

observability::Counter counter(observability::Registry& r, const char* name, const char* help) {
  return r.counter(name, help).with();
}

observability::Gauge gauge(observability::Registry& r, const char* name, const char* help) {
  return r.gauge(name, help).with();
}

}  // namespace

Metrics::Metrics()
    : reconciliations(counter(registry_, "nld_ovn_reconciliations_total", "Reconcile passes run.")),
      transactions(
          counter(registry_, "nld_ovn_transactions_total", "OVSDB transactions committed.")),
      changes_applied(counter(registry_, "nld_ovn_changes_applied_total",
                              "Policies inserted or deleted and NB_Global option writes.")),
      conflicts(counter(registry_, "nld_ovn_conflicts_total",
                        "Transactions aborted by a concurrent change and retried.")),
      errors(counter(registry_, "nld_ovn_errors_total",
                     "Failed connects, transactions and reconcile passes.")),
      connects(counter(registry_, "nld_ovn_connects_total",
                       "Successful connections (each is a full resync).")),
      connected(
          gauge(registry_, "nld_ovn_connected", "1 if connected to the OVN Northbound database.")),
      nodes(gauge(registry_, "nld_ovn_nodes", "Nodes found on the node switch.")),
      desired_policies(gauge(registry_, "nld_ovn_desired_policies",
                             "Local-DNS router policies that should exist.")),
      missing_port_groups(gauge(registry_, "nld_ovn_missing_port_groups",
                                "Nodes whose node port group does not exist.")),
      unconnected_underlay_switches(
          gauge(registry_, "nld_ovn_unconnected_underlay_switches",
                "Underlay switches not connected to the cluster router.")),
      shadowing_policies(gauge(registry_, "nld_ovn_shadowing_policies",
                               "Higher-priority policies that catch node pods' DNS traffic.")),
      failed_over_policies(gauge(
          registry_, "nld_ovn_failed_over_policies",
          "Node-local DNS policies the fail-over agent rerouted to a neighbour's cache (nonzero: a "
          "node's cache is down and its pods are served by another node).")),
      last_success_unix(gauge(registry_, "nld_ovn_last_success_timestamp_seconds",
                              "Unix time of the last pass that left the NB converged.")) {}

MetricsServer::MetricsServer(Metrics& metrics) : metrics_(metrics) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start(const std::string& address) {
  auto server = std::make_unique<observability::HttpServer>(address);
  server->enableMetrics(metrics_.registry());
  // Runs on the listener's thread: one atomic load.
  server->handle("/healthz", [&m = metrics_] {
    return m.isConnected() ? observability::HttpResponse{200, "ok\n"}
                           : observability::HttpResponse{503, "not connected to OVN NB\n"};
  });
  server->start();
  server_ = std::move(server);
}

void MetricsServer::stop() {
  if (server_) server_->stop();
  server_.reset();
}

}  // namespace nld::ovn
