#pragma once
// Counters and gauges of the OVN controller, kept in an observability::Registry of its own, and
// the /metrics and /healthz listener (observability::HttpServer: one epoll loop thread with the
// same connection limits as node-cache's listeners).
//
// The controller's names, types and HELP texts are the monitoring contract
// (deploy/monitoring/nodelocaldns-rules.yaml, the dashboard): change them only together.
//
// Thread affinity: the handles are written by the controller thread and read by the listener's
// loop thread at scrape time (the registry is thread-safe). MetricsServer: start()/stop() from
// the main thread.
#include <cstdint>
#include <memory>
#include <string>

#include "observability/http_server.h"
#include "observability/metrics.h"

namespace nld::ovn {

class Metrics {
 public:
  /// Registers every family in registry() with its value at 0 (so a scrape before the first
  /// pass shows them all).
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// What /metrics serves. A registry per Metrics object rather than the process-wide one, so
  /// that tests can make several.
  observability::Registry& registry() { return registry_; }
  /// Prometheus text exposition (version 0.0.4).
  std::string render() const { return registry_.render(); }
  /// True while connected to the NB (what /healthz answers).
  bool isConnected() const { return connected.value() != 0; }

 private:
  observability::Registry registry_;  // declared first: the handles below point into it

 public:
  observability::Counter reconciliations;  ///< reconcile passes run
  observability::Counter transactions;     ///< transactions committed
  observability::Counter changes_applied;  ///< policies inserted/deleted + option writes
  observability::Counter conflicts;        ///< transactions whose wait failed (retried)
  observability::Counter errors;           ///< failed passes/transactions/connects
  observability::Counter connects;         ///< successful (re)connections
  observability::Gauge connected;          ///< 1 while connected to the NB
  observability::Gauge nodes;
  observability::Gauge desired_policies;
  observability::Gauge missing_port_groups;
  observability::Gauge unconnected_underlay_switches;
  observability::Gauge shadowing_policies;
  observability::Gauge failed_over_policies;  ///< rows the agent rerouted to a neighbour
  observability::Gauge last_success_unix;     ///< time of the last pass that left the NB converged
};

/// GET /metrics (Metrics::render()) and GET /healthz: 200 "ok" while connected to the NB, else
/// 503 (the Deployment's liveness and readiness probes).
class MetricsServer {
 public:
  explicit MetricsServer(Metrics& metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Binds "host:port", ":port" (all addresses, dual-stack) or "[v6]:port" and serves on a new
  /// thread. @throws std::invalid_argument if the address is malformed, std::runtime_error if it
  /// cannot be bound (startup errors).
  void start(const std::string& address);
  /// Stops serving and joins the thread. Idempotent.
  void stop();
  /// The bound port (useful with port 0); 0 before start().
  uint16_t port() const { return server_ ? server_->port() : 0; }

 private:
  Metrics& metrics_;
  std::unique_ptr<observability::HttpServer> server_;
};

}  // namespace nld::ovn
