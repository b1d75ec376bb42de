#pragma once
// The health (/health) and Prometheus (/metrics) HTTP listeners (spec §8.8, §8.10, §8.11).
// A small blocking HTTP/1.1 server (one thread per listener, never a DNS worker); see
// http_server.cc for why it is not cpp-httplib.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "observability/metrics.h"

namespace nld::observability {

/// A listen address in CoreDNS form, split. host "" means all addresses (dual-stack).
struct ListenAddress {
  std::string host;  // "", "127.0.0.1", "::1", "localhost"
  uint16_t port = 0;
};

/// Parses ":8080", "127.0.0.1:9253", "[::1]:8080", "localhost:9153" (port 0 allowed).
/// @throws std::invalid_argument with a message naming the address.
ListenAddress parseListenAddress(std::string_view address);

/// One HTTP listener serving /health and/or /metrics. Configure (enable*) before start();
/// start()/stop()/setLameduck()/port() may be called from any thread, but start/stop not
/// concurrently with each other.
class HttpServer {
 public:
  /// @throws std::invalid_argument if `address` does not parse.
  explicit HttpServer(std::string address);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Serves GET /health: 200 "OK", or 503 "lameduck" while in lameduck.
  void enableHealth();
  /// Serves GET /metrics: registry.render() as text format 0.0.4. The registry must outlive us.
  /// @throws std::invalid_argument if a different registry is already served here.
  void enableMetrics(const Registry& registry);
  /// After start(), probes our own /health every second (3 s timeout), recording the duration
  /// and counting failures (CoreDNS health plugin's self-check); warns if it takes over 1 s.
  void enableHealthProbe(Histogram duration, Counter failures);

  /// Binds and starts serving on a background thread.
  /// @throws std::runtime_error "cannot listen on <address>: <reason>" if the bind fails.
  void start();
  /// Stops serving and joins the threads. Idempotent.
  void stop();

  void setLameduck(bool on) { lameduck_.store(on, std::memory_order_relaxed); }
  bool lameduck() const { return lameduck_.load(std::memory_order_relaxed); }
  /// The bound port (useful with port 0); 0 before start().
  uint16_t port() const { return boundPort_.load(); }
  const std::string& address() const { return address_; }
  bool servesHealth() const { return health_; }
  bool servesMetrics() const { return metrics_ != nullptr; }

 private:
  void probeLoop();
  void serveLoop();
  void serveConnection(int fd);

  std::string address_;
  ListenAddress listen_;
  int listenFd_ = -1;
  int wakeRead_ = -1;
  int wakeWrite_ = -1;
  std::thread thread_;
  std::atomic<uint16_t> boundPort_{0};
  std::atomic<bool> lameduck_{false};
  bool health_ = false;
  const Registry* metrics_ = nullptr;
  bool started_ = false;

  bool probe_ = false;
  Histogram probeDuration_;
  Counter probeFailures_;
  std::thread probeThread_;
  std::mutex probeMu_;
  std::condition_variable probeCv_;
  bool probeStop_ = false;
};

/// The set of HTTP listeners of the process: equal addresses share one HttpServer (CoreDNS
/// shares one listener per address). Config-time object; one controlling thread.
class HttpEndpoints {
 public:
  /// Adds /health on `address`; returns its server (e.g. to enable the probe).
  HttpServer& addHealth(const std::string& address);
  /// Adds /metrics for `registry` on `address`.
  HttpServer& addMetrics(const std::string& address, const Registry& registry);
  /// Starts all servers; on a bind failure stops those already started and rethrows.
  void start();
  void stop();
  void setLameduck(bool on);
  /// The server for an address previously added (nullptr if none).
  HttpServer* find(const std::string& address);
  size_t size() const { return servers_.size(); }

 private:
  HttpServer& serverFor(const std::string& address);
  std::map<std::string, std::unique_ptr<HttpServer>> servers_;  // key: normalised host:port
};

}  // namespace nld::observability
