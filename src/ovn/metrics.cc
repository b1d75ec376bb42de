#include "ovn/metrics.h"

#include <fmt/format.h>
#include <httplib.h>

#include <charconv>
#include <stdexcept>

namespace nld::ovn {

std::string Metrics::render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  counter("nld_ovn_reconciliations_total", "Reconcile passes run.", reconciliations.load());
  counter("nld_ovn_transactions_total", "OVSDB transactions committed.", transactions.load());
  counter("nld_ovn_changes_applied_total", "Policies inserted or deleted and NB_Global option writes.",
          changesApplied.load());
  counter("nld_ovn_conflicts_total", "Transactions aborted by a concurrent change and retried.", conflicts.load());
  counter("nld_ovn_errors_total", "Failed connects, transactions and reconcile passes.", errors.load());
  counter("nld_ovn_connects_total", "Successful connections (each is a full resync).", connects.load());
  gauge("nld_ovn_connected", "1 if connected to the OVN Northbound database.", connected.load());
  gauge("nld_ovn_nodes", "Nodes found on the node switch.", static_cast<int64_t>(nodes.load()));
  gauge("nld_ovn_desired_policies", "Local-DNS router policies that should exist.",
        static_cast<int64_t>(desiredPolicies.load()));
  gauge("nld_ovn_missing_port_groups", "Nodes whose node port group does not exist.",
        static_cast<int64_t>(missingPortGroups.load()));
  gauge("nld_ovn_unconnected_underlay_switches", "Underlay switches not connected to the cluster router.",
        static_cast<int64_t>(unconnectedUnderlaySwitches.load()));
  gauge("nld_ovn_shadowing_policies", "Higher-priority policies that catch node pods' DNS traffic.",
        static_cast<int64_t>(shadowingPolicies.load()));
  gauge("nld_ovn_failed_over_policies",
        "Node-local DNS policies the fail-over agent rerouted to a neighbour's cache (nonzero: a "
        "node's cache is down and its pods are served by another node).",
        static_cast<int64_t>(failedOverPolicies.load()));
  gauge("nld_ovn_last_success_timestamp_seconds", "Unix time of the last pass that left the NB converged.",
        lastSuccessUnix.load());
  return out;
}

struct MetricsServer::Impl {
  httplib::Server server;
};

MetricsServer::MetricsServer(const Metrics& metrics) : metrics_(metrics) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics address \"" + address + "\" needs :PORT");
  std::string host = address.substr(0, colon);
  const std::string portText = address.substr(colon + 1);
  int port = -1;
  auto [p, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || p != portText.data() + portText.size() || port < 0 || port > 65535) {
    throw std::runtime_error("metrics address \"" + address + "\" has an invalid port");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  impl_ = std::make_unique<Impl>();
  impl_->server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(), "text/plain; version=0.0.4");
  });
  impl_->server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    if (metrics_.connected.load() != 0) {
      res.set_content("ok\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content("not connected to OVN NB\n", "text/plain");
    }
  });
  if (port == 0) {
    port_ = impl_->server.bind_to_any_port(host);
  } else {
    port_ = impl_->server.bind_to_port(host, port) ? port : -1;
  }
  if (port_ < 0) {
    impl_.reset();
    throw std::runtime_error("cannot listen on metrics address " + address);
  }
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
}

void MetricsServer::stop() {
  if (impl_) impl_->server.stop();
  if (thread_.joinable()) thread_.join();
  impl_.reset();
}

}  // namespace nld::ovn
