#pragma once
// Test support: a real multi-worker server::Server with the metrics chain it needs (a Prometheus
// registry, the CoreDNS metric catalogue on it, per-worker ServerMetrics), for tests that load
// plans whose listeners bind 127.0.0.1 (ports from freePort(), support/udp_peer.h). Nothing is
// loaded yet: the test builds its plan with &metrics and calls server.load().
#include <cstddef>

#include "observability/coredns_metrics.h"
#include "observability/metrics.h"
#include "server/metrics.h"
#include "server/server.h"

namespace nld::test {

/// The members are declared in construction order; the server goes first on destruction.
struct ServerWithMetrics {
  /// `tcp_workers`: ServerOptions::tcp_workers (0: every worker has a TCP socket).
  explicit ServerWithMetrics(std::size_t workers, std::size_t tcp_workers = 0)
      : catalogue(registry),
        metrics(catalogue, workers),
        server(metrics, options(workers, tcp_workers)) {}
  ServerWithMetrics(const ServerWithMetrics&) = delete;
  ServerWithMetrics& operator=(const ServerWithMetrics&) = delete;

  observability::Registry registry;
  observability::CorednsMetrics catalogue;
  server::ServerMetrics metrics;
  server::Server server;

 private:
  static server::ServerOptions options(std::size_t workers, std::size_t tcp_workers) {
    server::ServerOptions o;
    o.workers = workers;
    o.tcp_workers = tcp_workers;
    return o;
  }
};

}  // namespace nld::test
