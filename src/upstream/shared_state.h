#pragma once
// Process-wide state of one `forward` stanza, shared by the Forwarders of all worker threads:
// upstream health (consecutive failures), the round-robin counter and the max_concurrent count.
// Query-path operations are lock-free atomics; the health-check prober runs on its own thread.
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "net/address.h"
#include "upstream/settings.h"

namespace nld::upstream {

/// Metric hooks. Implementations must be thread-safe: exchange/conn-cache/reject hooks are called
/// from worker loop threads, onHealthcheckFailure from the stanza's health-check thread.
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  /// A successful exchange with upstream `upstream` (coredns_proxy_request_duration_seconds).
  virtual void onExchange(int upstream, uint8_t rcode, double seconds) = 0;
  /// A failed health probe (coredns_proxy_healthcheck_failures_total).
  virtual void onHealthcheckFailure(int upstream) = 0;
  /// Connection cache hit/miss (coredns_proxy_conn_cache_{hits,misses}_total); proto udp|tcp.
  virtual void onConnCache(int upstream, std::string_view proto, bool hit) = 0;
  /// All upstreams were down when one was needed (coredns_forward_healthcheck_broken_total).
  virtual void onAllUpstreamsDown() = 0;
  /// A query was refused by max_concurrent (coredns_forward_max_concurrent_rejects_total).
  virtual void onMaxConcurrentReject() = 0;
  /// A query was refused because the in-flight upstream query it would have joined already has
  /// kMaxWaitersPerFlight waiters (nodelocaldns_forward_coalesce_rejects_total).
  virtual void onCoalesceReject() = 0;
};

/// A count of in-flight client queries with a hard limit (`max_concurrent`), shared by the
/// Forwarders of every worker. Lock-free; any thread.
class ConcurrencyLimit {
 public:
  explicit ConcurrencyLimit(int64_t max) : max_(max) {}
  /// False (and nothing acquired) when the limit is reached.
  bool tryAcquire() {
    if (count_.fetch_add(1, std::memory_order_relaxed) >= max_) {
      count_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void release() { count_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t current() const { return count_.load(std::memory_order_relaxed); }
  int64_t max() const { return max_; }

 private:
  const int64_t max_;
  std::atomic<int64_t> count_{0};
};

/// A resolved upstream address.
/// Shared per-stanza state. Thread-safe. Owns the health-check thread, which is stopped (within
/// one probe timeout) by the destructor.
class SharedForwardState {
 public:
  /// Throws std::invalid_argument for an empty upstream list or an unparseable address
  /// (configuration error). `health_observer` may be null; it must outlive this object.
  SharedForwardState(Settings s, ForwardObserver* health_observer);
  ~SharedForwardState();
  SharedForwardState(const SharedForwardState&) = delete;
  SharedForwardState& operator=(const SharedForwardState&) = delete;

  const Settings& settings() const { return settings_; }
  size_t upstreamCount() const { return addrs_.size(); }
  const net::SockAddr& addr(size_t i) const { return addrs_[i]; }
  /// Effective cap on exchange attempts per query.
  uint32_t maxAttempts() const { return max_attempts_; }

  /// Down ⇔ max_fails != 0 and consecutive failures > max_fails. Any thread.
  bool isDown(size_t i) const;
  uint32_t failures(size_t i) const;
  /// Counts a failed exchange and starts health probing of the upstream (unless max_fails is 0).
  /// Any thread.
  void recordFailure(size_t i);
  /// True while the upstream is being probed (after a failure, until a probe succeeds).
  bool probing(size_t i) const;
  /// Number of health probes sent so far (all upstreams); for tests and debugging.
  uint64_t probesSent() const { return probes_sent_.load(std::memory_order_relaxed); }

  /// Round-robin start index source. Any thread.
  uint64_t nextRoundRobin() { return rr_.fetch_add(1, std::memory_order_relaxed); }

  /// max_concurrent accounting: false (and nothing acquired) when the limit would be exceeded.
  bool tryAcquireConcurrent() { return !limit_ || limit_->tryAcquire(); }
  void releaseConcurrent() {
    if (limit_) limit_->release();
  }
  /// In-flight client queries counted by max_concurrent; 0 when unbounded.
  int64_t concurrent() const { return limit_ ? limit_->current() : 0; }

 private:
  struct Health {
    std::atomic<uint32_t> fails{0};
    std::atomic<bool> probing{false};
  };

  void healthLoop();
  bool probe(size_t i);

  Settings settings_;
  ForwardObserver* observer_;
  std::vector<net::SockAddr> addrs_;
  std::unique_ptr<Health[]> health_;
  uint32_t max_attempts_ = 0;
  std::atomic<uint64_t> rr_{0};
  std::unique_ptr<ConcurrencyLimit> limit_;  // null: max_concurrent 0, unbounded
  std::atomic<uint64_t> probes_sent_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                  // guarded by mu_
  bool wakeup_ = false;                // guarded by mu_
  std::atomic<bool> stopping_{false};  // stop_, readable without the lock
  std::thread thread_;
};

/// Creates the shared state of a stanza and starts its health-check thread.
std::shared_ptr<SharedForwardState> makeSharedState(Settings s,
                                                    ForwardObserver* health_observer = nullptr);

}  // namespace nld::upstream
