#pragma once
// Counters and gauges of the OVN controller, rendered in the Prometheus text format, and a small
// HTTP server (cpp-httplib) for /metrics and /healthz on its own thread.
//
// Thread affinity: Metrics is written by the controller thread and read by the HTTP thread; all
// fields are atomics. MetricsServer: start()/stop() from the main thread.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace nld::ovn {

struct Metrics {
  std::atomic<uint64_t> reconciliations{0};    ///< reconcile passes run
  std::atomic<uint64_t> transactions{0};       ///< transactions committed
  std::atomic<uint64_t> changesApplied{0};     ///< policies inserted/deleted + option writes
  std::atomic<uint64_t> conflicts{0};          ///< transactions whose wait failed (retried)
  std::atomic<uint64_t> errors{0};             ///< failed passes/transactions/connects
  std::atomic<uint64_t> connects{0};           ///< successful (re)connections
  std::atomic<int> connected{0};               ///< 1 while connected to the NB
  std::atomic<uint64_t> nodes{0};
  std::atomic<uint64_t> desiredPolicies{0};
  std::atomic<uint64_t> missingPortGroups{0};
  std::atomic<uint64_t> unconnectedUnderlaySwitches{0};
  std::atomic<uint64_t> shadowingPolicies{0};
  std::atomic<uint64_t> failedOverPolicies{0};  ///< rows the agent rerouted to a neighbour
  std::atomic<int64_t> lastSuccessUnix{0};     ///< time of the last pass that left the NB converged

  /// Prometheus text exposition (version 0.0.4).
  std::string render() const;
};

class MetricsServer {
 public:
  explicit MetricsServer(const Metrics& metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Binds "host:port", ":port" or "[v6]:port" and serves on a new thread.
  /// @throws std::runtime_error if the address is malformed or cannot be bound (startup error).
  void start(const std::string& address);
  void stop();
  int port() const { return port_; }

 private:
  struct Impl;
  const Metrics& metrics_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace nld::ovn
