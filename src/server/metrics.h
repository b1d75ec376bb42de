#pragma once
// The data path's CoreDNS metrics (metrics, cache, forward plugins) over the per-thread registry.
// Handles are created lazily per worker on first use of a label combination and kept in
// per-worker maps, so steady-state queries only look up a handle and bump a thread-local slot
// (no locks, no allocation).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "observability/coredns_metrics.h"
#include "observability/metrics.h"
#include "plan/plan.h"
#include "upstream/forwarder.h"

namespace nld::server {

/// The plugin that wrote an answer: coredns_dns_responses_total{plugin} ("" for the server's own
/// error replies).
enum class AnswerPlugin : uint8_t {
  kNone = 0,
  kCache = 1,
  kForward = 2,
  kHosts = 3,
  kTemplate = 4
};
inline constexpr size_t kAnswerPlugins = 5;

/// The forward observers of every Plan the daemon builds (plan::ForwardObservers).
class ServerMetrics final : public plan::ForwardObservers {
 public:
  ServerMetrics(observability::CorednsMetrics& catalogue, size_t workers);

  /// One answered (or dropped) query. `zone` empty = refused before any block ("dropped").
  /// Loop thread of `worker` only.
  void onQuery(size_t worker, const std::string& server, const std::string& zone, bool udp,
               int family, uint16_t qtype, bool dnssec_ok, size_t req_size, uint8_t rcode,
               AnswerPlugin plugin, size_t resp_size, double seconds);

  struct CacheEvent {
    bool hit = false;
    bool denial = false;
    bool stale = false;
    bool prefetch = false;
  };
  void onCacheLookup(size_t worker, const std::string& server, const std::string& zones,
                     const CacheEvent& e);
  /// The entries gauge moves by `delta`. Loop thread of `worker` only (a miss's insert calls
  /// it: the handle comes from the worker's map, no labels are built).
  void onCacheEntries(size_t worker, const std::string& server, const std::string& zones,
                      bool denial, double delta);
  /// Drops `worker`'s handle caches. The pipeline calls it when it installs a new plan: the
  /// caches are keyed by the addresses of the plan's label strings, and a later plan may
  /// allocate its strings where a freed plan had its own. The series stay in the registry.
  void forgetHandles(size_t worker);
  void onCacheEvictions(size_t worker, const std::string& server, const std::string& zones,
                        bool denial, uint64_t n);
  void onCacheDrop(size_t worker, const std::string& server, const std::string& zones);

  void onPanic();
  void onMalformed();
  /// `n` errors-plugin lines were dropped by the rate limit (any thread).
  void onLogSuppressed(uint64_t n);

  /// TCP front end under pressure (tcp_handler.h); any worker thread.
  void onTcpAcceptPaused() { tcp_accept_paused_.inc(); }
  void onTcpEvicted() { tcp_evicted_.inc(); }
  void onTcpRefused() { tcp_refused_.inc(); }

  /// The forwarder's metrics hooks for one stanza (process-wide; thread-safe).
  std::unique_ptr<upstream::ForwardObserver> forwardObserver(
      std::vector<std::string> to_labels) override;

  void enablePlugin(const std::string& server, const std::string& zone, const std::string& name);

  observability::Registry& registry() { return registry_; }

 private:
  // Handle caches are keyed by the identity of the plan-owned label strings (their addresses:
  // stable for a plan's lifetime) plus small integers, so a lookup builds no string.
  struct Key {
    const void* family;
    const void* a;
    const void* b;
    uint64_t small;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = reinterpret_cast<uintptr_t>(k.family) * 0x9E3779B97F4A7C15ull;
      h ^= reinterpret_cast<uintptr_t>(k.a) + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2);
      h ^= reinterpret_cast<uintptr_t>(k.b) + 0x8CB92BA72F3D8DD7ull + (h << 6) + (h >> 2);
      h ^= k.small + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
      return h;
    }
  };
  // Handles of one (server, zone) for one worker, created on first use: a query costs one
  // hash-map lookup (by the label strings' addresses) and then array indexing.
  static constexpr size_t kTypes = 19;  // typeLabel's 18 names + "other"
  struct ZoneCounters {
    std::array<observability::Counter, 2 * 3 * kTypes> requests{};  // [udp][family][type]
    std::array<bool, 2 * 3 * kTypes> requests_set{};
    observability::Counter do_requests;
    bool do_set = false;
    std::array<observability::Counter, 16 * kAnswerPlugins> responses{};  // [rcode][plugin]
    std::array<bool, 16 * kAnswerPlugins> responses_set{};
    observability::Histogram duration;
    std::array<observability::Histogram, 2> req_size{}, resp_size{};
    bool hist_set = false;
  };
  struct CacheCounters {
    observability::Counter requests, hits_success, hits_denial, misses, stale, prefetch;
  };
  struct PerWorker {
    std::unordered_map<Key, observability::Counter, KeyHash> counters;
    std::unordered_map<Key, observability::Gauge, KeyHash> gauges;
    std::unordered_map<Key, std::unique_ptr<ZoneCounters>, KeyHash> zones;
    std::unordered_map<Key, std::unique_ptr<CacheCounters>, KeyHash> caches;
    // One-entry memos in front of `zones` and `caches`: consecutive queries of a worker nearly
    // always hit the same block, so most queries skip the hash-map lookup.
    const std::string* last_zone_server = nullptr;
    const std::string* last_zone = nullptr;
    ZoneCounters* last_zone_counters = nullptr;
    const std::string* last_cache_server = nullptr;
    const std::string* last_cache_zones = nullptr;
    CacheCounters* last_cache_counters = nullptr;
  };
  static size_t typeIndex(uint16_t qtype);
  /// The handle of `key` in one of a worker's maps, made from `fam` with make()'s labels the
  /// first time.
  template <typename Map, typename Family, typename MakeLabels>
  static typename Map::mapped_type& cached(Map& m, Family& fam, const Key& key, MakeLabels&& make);

  observability::Registry& registry_;
  observability::CorednsMetrics& catalogue_;
  std::vector<PerWorker> workers_;
  observability::CounterFamily& requests_;
  observability::CounterFamily& do_requests_;
  observability::CounterFamily& responses_;
  observability::HistogramFamily& duration_;
  observability::HistogramFamily& req_size_;
  observability::HistogramFamily& resp_size_;
  observability::CounterFamily& panics_;
  observability::GaugeFamily& plugin_enabled_;
  observability::CounterFamily& cache_requests_;
  observability::CounterFamily& cache_hits_;
  observability::CounterFamily& cache_misses_;
  observability::CounterFamily& cache_prefetch_;
  observability::CounterFamily& cache_stale_;
  observability::CounterFamily& cache_drops_;
  observability::CounterFamily& cache_evictions_;
  observability::GaugeFamily& cache_entries_;
  observability::CounterFamily& malformed_;
  observability::Counter tcp_accept_paused_;
  observability::Counter tcp_evicted_;
  observability::Counter tcp_refused_;
  observability::CounterFamily& log_suppressed_;
};

std::string_view typeLabel(uint16_t qtype);
std::string rcodeLabel(uint8_t rcode);

}  // namespace nld::server
