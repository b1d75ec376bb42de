#pragma once
// Prometheus-style metrics with per-thread counter shards (Envoy/dnsdist style: lock-free, no
// read-modify-write on the fast path) and a text-format 0.0.4 renderer.
//
// Hand-written instead of using prometheus-cpp (Debian: prometheus-cpp-dev): its counters are
// shared atomics (one RMW per increment on a cache line every worker thread contends for), which
// is exactly what the DNS fast path must avoid, and it would pull in a civetweb HTTP server next
// to our own (http_server.h). Rendering the text format is ~150 lines.
//
// Model:
//   - A Registry owns families (name, help, type, label names). Families live as long as the
//     registry; references to them stay valid.
//   - family.with({label values}) returns a small copyable handle. Creating it locks and may
//     allocate (do it at configuration time); using it (inc/add/observe) does not lock.
//   - Counter and histogram values live in per-thread shards: each thread that touches a registry
//     gets its own cache-line-aligned slot array, registered with the registry on first use.
//     Only the owning thread writes its shard (relaxed load + store, no RMW). render() sums all
//     shards; a thread that exits folds its shard into a retired accumulator, so values never go
//     backwards.
//   - Gauges are a shared atomic<double> (they are set from control code, not per packet), or a
//     callback evaluated at scrape time.
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nld::observability {

class Registry;

namespace detail {

/// Slots per shard chunk (8 bytes each; a chunk is 4 KiB, allocated on first use per thread).
inline constexpr uint32_t kChunkSlots = 512;
/// Chunks per shard: at most kChunkSlots * kMaxChunks series slots per registry.
inline constexpr uint32_t kMaxChunks = 2048;

struct alignas(64) Chunk {
  std::array<std::atomic<uint64_t>, kChunkSlots> v{};
};

/// One thread's values for one registry. Written only by its owning thread.
struct Shard {
  std::array<std::atomic<Chunk*>, kMaxChunks> chunks{};
  Shard() = default;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();
};

class Core;  // registry internals (metrics.cc)

struct TlsCache {
  uint64_t registry_id = 0;
  Shard* shard = nullptr;
};
/// Last shard used by this thread: the common case (one registry) is one compare.
inline thread_local constinit TlsCache tls_cache{};

/// Slow path: finds or creates (and registers) this thread's shard for the registry.
Shard& slowShard(Core* core, uint64_t registry_id);
/// Allocates chunk `index` of the calling thread's shard (first use of that chunk on the thread).
Chunk* allocChunk(Shard& shard, uint32_t index);

inline std::atomic<uint64_t>& localSlot(Core* core, uint64_t registry_id, uint32_t slot) {
  Shard* shard = tls_cache.shard;
  if (tls_cache.registry_id != registry_id) [[unlikely]] {
    shard = &slowShard(core, registry_id);
  }
  const uint32_t index = slot / kChunkSlots;
  Chunk* chunk = shard->chunks[index].load(std::memory_order_relaxed);  // written by us only
  if (chunk == nullptr) [[unlikely]] {
    chunk = allocChunk(*shard, index);
  }
  return chunk->v[slot % kChunkSlots];
}

/// Single-writer add: relaxed load + store, no RMW (the shard has exactly one writer).
inline void addLocal(std::atomic<uint64_t>& a, uint64_t n) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct GaugeCell {
  std::atomic<double> value{0.0};
  std::function<double()> callback;  // set for callback series; value is then unused
};

}  // namespace detail

enum class MetricType { kCounter, kGauge, kHistogram };

/// Monotonic counter handle. Copyable, 24 bytes. inc()/add() may be called from any thread,
/// lock-free and allocation-free (except the first use of a registry on a new thread).
/// A default-constructed handle is detached: updates are ignored and value() is 0.
class Counter {
 public:
  Counter() = default;
  void inc() { add(1); }
  void add(uint64_t n) {
    if (core_ != nullptr) {
      detail::addLocal(detail::localSlot(core_, registry_id_, slot_), n);
    }
  }
  /// Sum over all threads (locks the registry; for tests and control code, not the fast path).
  uint64_t value() const;

 private:
  friend class CounterFamily;
  Counter(detail::Core* core, uint64_t registry_id, uint32_t slot)
      : core_(core), registry_id_(registry_id), slot_(slot) {}
  detail::Core* core_ = nullptr;
  uint64_t registry_id_ = 0;
  uint32_t slot_ = 0;
};

/// Gauge handle: a shared atomic double. Any thread. Default-constructed: updates ignored.
class Gauge {
 public:
  Gauge() = default;
  void set(double v) {
    if (cell_ != nullptr) {
      cell_->value.store(v, std::memory_order_relaxed);
    }
  }
  void add(double d) {
    if (cell_ != nullptr) {
      cell_->value.fetch_add(d, std::memory_order_relaxed);
    }
  }
  void inc() { add(1.0); }
  void dec() { add(-1.0); }
  double value() const {
    return cell_ == nullptr ? 0.0 : cell_->value.load(std::memory_order_relaxed);
  }

 private:
  friend class GaugeFamily;
  explicit Gauge(detail::GaugeCell* cell) : cell_(cell) {}
  detail::GaugeCell* cell_ = nullptr;
};

/// Histogram handle (classic buckets). observe() may be called from any thread, lock-free.
/// Default-constructed: observations ignored.
class Histogram {
 public:
  Histogram() = default;
  /// Records one observation (for durations: seconds). NaN is counted in the +Inf bucket.
  void observe(double v) {
    if (core_ == nullptr) {
      return;
    }
    uint32_t bucket = 0;
    while (bucket < n_bounds_ && !(v <= bounds_[bucket])) {  // NaN ends in +Inf
      ++bucket;
    }
    std::atomic<uint64_t>& b = detail::localSlot(core_, registry_id_, base_ + bucket);
    detail::addLocal(b, 1);
    // The sum slot follows the n_bounds_+1 bucket slots in the same chunk; it holds double bits.
    std::atomic<uint64_t>& s = detail::localSlot(core_, registry_id_, base_ + n_bounds_ + 1);
    const double sum = std::bit_cast<double>(s.load(std::memory_order_relaxed)) + v;
    s.store(std::bit_cast<uint64_t>(sum), std::memory_order_relaxed);
  }
  /// Total observations over all threads (locks the registry; tests/control code).
  uint64_t count() const;
  /// Sum of observations over all threads (locks the registry).
  double sum() const;
  /// Cumulative bucket counts, one per upper bound plus +Inf (locks the registry).
  std::vector<uint64_t> cumulativeCounts() const;

 private:
  friend class HistogramFamily;
  Histogram(detail::Core* core, uint64_t registry_id, uint32_t base, const double* bounds,
            uint32_t n_bounds)
      : core_(core), registry_id_(registry_id), bounds_(bounds), base_(base), n_bounds_(n_bounds) {}
  detail::Core* core_ = nullptr;
  uint64_t registry_id_ = 0;
  const double* bounds_ = nullptr;
  uint32_t base_ = 0;
  uint32_t n_bounds_ = 0;
};

/// Common part of a metric family. Not copyable; owned by its Registry.
class Family {
 public:
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;
  virtual ~Family() = default;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& labelNames() const { return label_names_; }

 protected:
  Family(std::shared_ptr<detail::Core> core, uint64_t registry_id, std::string name,
         std::string help, MetricType type, std::vector<std::string> label_names);

  /// Validates the count of label values and returns them reordered by label name (the
  /// exposition order), which is also the series' sort key. Throws std::invalid_argument.
  std::vector<std::string> seriesKey(const std::vector<std::string>& label_values) const;
  /// `{a="x",b="y"` without the closing brace (empty string for no labels).
  std::string labelPrefix(const std::vector<std::string>& key) const;

  std::shared_ptr<detail::Core> core_;
  uint64_t registry_id_;
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  std::vector<size_t> sorted_label_index_;  // label indices ordered by label name

 private:
  friend class Registry;
  /// Appends the family in text format; caller holds the registry lock. No-op without series.
  virtual void renderLocked(std::string& out) const = 0;
};

/// Family of counters. with() is thread-safe (locks).
class CounterFamily final : public Family {
 public:
  /// Returns the handle of the series with these label values (in label-name declaration order),
  /// creating it at 0 if needed (so it is rendered as 0 before any increment).
  /// @throws std::invalid_argument if the number of values differs from the label names.
  Counter with(const std::vector<std::string>& label_values = {});
  /// Adds a series whose value is fn() at scrape time (e.g. process CPU seconds). fn runs on the
  /// scraping thread under the registry lock: it must not call into the same registry.
  void withCallback(const std::vector<std::string>& label_values, std::function<double()> fn);

 private:
  friend class Registry;
  using Family::Family;
  void renderLocked(std::string& out) const override;
  struct Series {
    uint32_t slot = 0;
    std::function<double()> callback;
  };
  std::map<std::vector<std::string>, Series> series_;
};

/// Family of gauges. with()/withCallback() are thread-safe (lock).
class GaugeFamily final : public Family {
 public:
  /// Handle of the series with these label values, created at 0 if needed.
  Gauge with(const std::vector<std::string>& label_values = {});
  /// Series whose value is fn() at scrape time (runs on the scraping thread under the registry
  /// lock; must not call into the same registry). Replaces an existing callback for the labels.
  void withCallback(const std::vector<std::string>& label_values, std::function<double()> fn);

 private:
  friend class Registry;
  using Family::Family;
  void renderLocked(std::string& out) const override;
  std::map<std::vector<std::string>, std::unique_ptr<detail::GaugeCell>> series_;
};

/// Family of histograms with fixed classic bucket upper bounds.
class HistogramFamily final : public Family {
 public:
  /// Handle of the series with these label values, created empty if needed.
  Histogram with(const std::vector<std::string>& label_values = {});
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  friend class Registry;
  HistogramFamily(std::shared_ptr<detail::Core> core, uint64_t registry_id, std::string name,
                  std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);
  void renderLocked(std::string& out) const override;
  std::vector<double> bounds_;  // strictly increasing, finite; +Inf implicit
  std::map<std::vector<std::string>, uint32_t> series_;  // key -> base slot
};

/// A set of metric families. Thread-safe. Handles and family references must not outlive it.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Registers (or returns the existing) counter family. Config-time; any thread.
  /// @throws std::invalid_argument on an invalid name/label name, or if `name` already exists
  ///         with a different type or label names.
  CounterFamily& counter(const std::string& name, const std::string& help,
                         const std::vector<std::string>& label_names = {});
  /// Registers (or returns the existing) gauge family. Same rules as counter().
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     const std::vector<std::string>& label_names = {});
  /// Registers (or returns the existing) histogram family. `bounds` are the bucket upper bounds,
  /// strictly increasing (a trailing +Inf is dropped; it is always implicit). Re-registration
  /// must use the same labels and bounds. @throws std::invalid_argument.
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             const std::vector<std::string>& label_names,
                             const std::vector<double>& bounds);

  /// Prometheus text exposition format 0.0.4: families sorted by name, series sorted by label
  /// values (labels in name order), families without series omitted. Any thread.
  std::string render() const;

 private:
  Family* findLocked(const std::string& name, MetricType type,
                     const std::vector<std::string>& label_names) const;
  std::shared_ptr<detail::Core> core_;
  uint64_t id_;
  std::map<std::string, std::unique_ptr<Family>> families_;
};

/// The process-wide registry (what /metrics serves in the daemon).
Registry& defaultRegistry();

/// Registers the process_* collectors of Prometheus' Go client (values read from /proc at scrape
/// time): process_cpu_seconds_total, process_resident_memory_bytes,
/// process_virtual_memory_bytes, process_virtual_memory_max_bytes, process_open_fds,
/// process_max_fds, process_start_time_seconds. Idempotent.
void registerProcessCollector(Registry& registry);

/// Formats a sample value as Go's strconv.FormatFloat(v, 'g', -1, 64), which is what the
/// Prometheus Go client writes ("0", "1", "0.00025", "1.234567e+06", "+Inf", "NaN").
std::string formatValue(double v);

/// Escapes a label value for the text format (backslash, double quote, newline).
std::string escapeLabelValue(std::string_view v);

}  // namespace nld::observability
