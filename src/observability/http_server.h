#pragma once
// The health (/health) and Prometheus (/metrics) HTTP listeners.
//
// Any pod on the node can connect to these ports, and the kubelet's liveness probe restarts the
// cache when /health does not answer, so one slow or malicious client must not be able to hold
// the listener. Design (details in http_server.cc):
//   - One thread per listener running an epoll loop (nld::net::EventLoop) over non-blocking
//     sockets; all connections of the listener are served concurrently by that thread, none
//     gets a thread of its own. One loop per listener rather than one for all keeps the
//     listeners independent (a large /metrics render on :9353 never delays :8080/health) and
//     keeps HttpServer usable on its own (node-cache's -metrics-listen-address server); there are
//     at most a handful of listeners per process.
//   - Every connection has one deadline for its current phase, not per recv: the whole request
//     head within HttpLimits::request_timeout of accept (or of the first byte of a keep-alive
//     request), the whole response within write_timeout, idle_timeout between keep-alive requests.
//   - At most HttpLimits::max_connections per listener; a new connection over the cap evicts the
//     connection that matters least (lingering, then idle keep-alive, then the oldest one still
//     sending its request, then the oldest being written), as unbound and dnsdist do, so a fresh
//     probe always gets in.
//   - Buffers are allocated when bytes arrive and freed after each response, so an idle
//     connection costs its socket and ~200 bytes; concurrent /metrics responses share one render.
//   - accept() failing for lack of file descriptors or memory pauses the listener for
//     accept_backoff instead of spinning on the level-triggered event; counted, then recovers.
// The request parser (http_request.h) is separate from the socket code and fuzzed.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/inherited_sockets.h"
#include "net/fd.h"
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

/// The one place where an HTTP listening socket is created: binds `address` (CoreDNS form, see
/// parseListenAddress; "" host = dual-stack all addresses) with SO_REUSEADDR and no
/// SO_REUSEPORT (a port in use is a clear error, not a silent share), non-blocking, close-on-exec,
/// listening.
/// @throws std::invalid_argument if `address` does not parse;
///         std::runtime_error "cannot listen on <address>: <reason>" if the bind fails.
net::Fd listenHttp(const std::string& address);

/// Per-listener bounds (defaults as documented in docs/operator-guide.md). Worst-case memory of
/// one listener: max_connections x (max_head_bytes + 4 KiB read slack + ~0.3 KiB) plus one /metrics
/// render per second of write_timeout.
struct HttpLimits {
  size_t max_connections = 64;   // over it, the least valuable connection is evicted
  size_t max_head_bytes = 8192;  // request line + headers; longer: 431 and close
  std::chrono::milliseconds request_timeout{5000};  // whole request head, from accept
  std::chrono::milliseconds write_timeout{5000};    // whole response
  std::chrono::milliseconds idle_timeout{5000};     // between keep-alive requests
  std::chrono::milliseconds linger_timeout{1000};   // draining unread input before close
  std::chrono::milliseconds accept_backoff{100};    // listener pause when accept lacks fds
};

/// The answer of an endpoint added with HttpServer::handle(): a status (200, 503, ...) and a
/// text/plain body.
struct HttpResponse {
  int status = 200;
  std::string body;
};

/// Cumulative counts of one HttpServer (over restarts), plus its current connection count.
struct HttpStats {
  uint64_t accepted = 0;
  uint64_t answered = 0;          // responses fully written (any status)
  uint64_t evicted = 0;           // closed to make room for a new connection
  uint64_t request_timeouts = 0;  // request head not complete within request_timeout
  uint64_t write_timeouts = 0;    // response not written within write_timeout
  uint64_t idle_timeouts = 0;     // keep-alive connections closed after idle_timeout
  uint64_t bad_requests = 0;      // 400
  uint64_t too_large = 0;         // 431
  uint64_t accept_backoffs = 0;   // accept failed (EMFILE, ENFILE, ENOBUFS, ENOMEM): paused
  size_t connections = 0;         // open now
};

/// One HTTP listener serving /health and/or /metrics. Configure (enable*) before start();
/// start()/stop()/setLameduck()/port()/stats() may be called from any thread, but start/stop
/// not concurrently with each other.
class HttpServer {
 public:
  /// @throws std::invalid_argument if `address` does not parse.
  explicit HttpServer(std::string address, HttpLimits limits = {});
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Serves GET /health: 200 "OK", or 503 "lameduck" while in lameduck.
  void enableHealth();
  /// Serves GET /metrics: registry.render() as text format 0.0.4. The registry must outlive us.
  /// @throws std::invalid_argument if a different registry is already served here.
  void enableMetrics(Registry& registry);
  /// Serves GET (and HEAD) `path` with handler(), called on the listener's loop thread for each
  /// request: it must be quick and must not block (read atomics, format a short text). For
  /// endpoints whose answer is not CoreDNS' /health, e.g. the OVN controller's /healthz.
  /// Before start(). @throws std::invalid_argument if `path` does not start with '/' or is
  /// already served (/health, /metrics or an earlier handler).
  void handle(std::string path, std::function<HttpResponse()> handler);
  /// Counts connections dropped at a limit and accept back-offs in `registry`:
  /// nodelocaldns_http_connections_dropped_total{address,reason} (reason: evicted,
  /// request_timeout, write_timeout, bad_request, too_large) and
  /// nodelocaldns_http_accept_backoffs_total{address}. Before start(); first call wins.
  void countLimitsInto(Registry& registry);
  /// After start(), probes our own /health every second (3 s timeout), recording the duration
  /// and counting failures (CoreDNS health plugin's self-check); warns if it takes over 1 s.
  void enableHealthProbe(Histogram duration, Counter failures);

  /// Binds (listenHttp) and starts serving on a background thread.
  /// @throws std::runtime_error "cannot listen on <address>: <reason>" if the bind fails.
  void start();
  /// Starts serving on an already-listening TCP socket (e.g. one inherited from a predecessor
  /// process), taking ownership of it (closed by stop(), also if this throws). The address
  /// given to the constructor is then only a label and the health probe's target.
  /// @throws std::runtime_error if `fd` is not a listening stream socket.
  void startOn(net::Fd listening_fd);
  /// Stops serving and joins the threads. Idempotent.
  void stop();

  void setLameduck(bool on) { lameduck_.store(on, std::memory_order_relaxed); }
  bool lameduck() const { return lameduck_.load(std::memory_order_relaxed); }
  /// The listening socket while started (owned by us), else -1; for a handover to a successor
  /// process, which gets its own copy of the same socket. Any thread.
  int listeningFd() const { return fd_.load(); }
  /// The bound port (useful with port 0); 0 before start().
  uint16_t port() const { return bound_port_.load(); }
  const std::string& address() const { return address_; }
  bool servesHealth() const { return health_; }
  bool servesMetrics() const { return metrics_ != nullptr; }
  bool countsLimits() const { return counted_; }
  const HttpLimits& limits() const { return limits_; }
  HttpStats stats() const;

 private:
  class Loop;  // the epoll loop, its connections and their state machine (http_server.cc)
  friend class Loop;
  friend class HttpEndpoints;  // shares the metrics registry with health-only listeners

  /// Counters of HttpStats, written by the loop thread, read by stats().
  struct AtomicStats {
    std::atomic<uint64_t> accepted{0}, answered{0}, evicted{0}, request_timeouts{0},
        write_timeouts{0}, idle_timeouts{0}, bad_requests{0}, too_large{0}, accept_backoffs{0};
    std::atomic<size_t> connections{0};
  };
  /// Registry handles of the limit counters (detached, i.e. no-ops, until countLimitsInto).
  struct LimitCounters {
    Counter evicted, request_timeout, write_timeout, bad_request, too_large, accept_backoffs;
  };

  void probeLoop();

  std::string address_;
  ListenAddress listen_;
  HttpLimits limits_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  std::atomic<uint16_t> bound_port_{0};
  std::atomic<int> fd_{-1};
  std::atomic<bool> lameduck_{false};
  bool health_ = false;
  Registry* metrics_ = nullptr;
  std::map<std::string, std::function<HttpResponse()>, std::less<>> handlers_;  // by path
  bool started_ = false;
  bool counted_ = false;
  AtomicStats stats_;
  LimitCounters counters_;

  bool probe_ = false;
  Histogram probe_duration_;
  Counter probe_failures_;
  std::thread probe_thread_;
  std::mutex probe_mu_;
  std::condition_variable probe_cv_;
  bool probe_stop_ = false;
};

/// The set of HTTP listeners of the process: equal addresses share one HttpServer (CoreDNS
/// shares one listener per address). Config-time object; one controlling thread.
class HttpEndpoints {
 public:
  /// Adds /health on `address`; returns its server (e.g. to enable the probe).
  HttpServer& addHealth(const std::string& address);
  /// Adds /metrics for `registry` on `address`.
  HttpServer& addMetrics(const std::string& address, Registry& registry);
  /// Starts all servers; on a bind failure stops those already started and rethrows. If any
  /// server serves /metrics, every server counts its limit events into that registry first
  /// (HttpServer::countLimitsInto).
  void start();
  void stop();
  /// Before start(), for a reload: takes over from `old` every started server whose address and
  /// role equal one of this set's (health, metrics registry, health probe, limit counting), so
  /// its listener, connections and probe go on untouched; then stops the rest of `old`. start()
  /// starts only what is new. Returns how many servers were taken over.
  size_t keepRunning(HttpEndpoints& old);
  void setLameduck(bool on);
  /// The listening sockets of the started servers (kind Http, address as added, port 0).
  std::vector<PassedSocket> listeningSockets() const;
  /// The server for an address previously added (nullptr if none).
  HttpServer* find(const std::string& address);
  size_t size() const { return servers_.size(); }

 private:
  HttpServer& serverFor(const std::string& address);
  /// The registry the set's limit events count into (a metrics server's), or nullptr.
  Registry* limitRegistry() const;
  std::map<std::string, std::unique_ptr<HttpServer>> servers_;  // key: normalised host:port
};

}  // namespace nld::observability
