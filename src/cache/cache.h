#pragma once
// The DNS response cache (CoreDNS `cache` plugin semantics, with the deviations listed below).
// Stores upstream responses in wire form and answers hits by copying bytes and patching ID,
// question case, flags and TTLs in place — no allocation on a hit.
//
// Threading: one Cache per (server block, worker thread): the partition of the names that worker
// owns (the kernel steers a UDP query to its name's owner). The owner inserts, exports and
// imports. With one partition (one worker) nothing else touches it and there is no lock. With
// several, another worker may look up a partition too (Access::kPeer): a TCP connection lands on
// any worker, and reading the owner's partition answers its cache hits where it arrived instead
// of handing every query over to the owner's thread and back (two thread switches per batch when
// workers share a core). Then every public member function takes the partition's mutex; it is
// uncontended except for that case (UDP never crosses), ~20 ns, and a peer holds it for one
// lookup. The Stats counters are atomics written under that mutex (or by the only thread:
// relaxed load + store, no read-modify-write) and may be read from any thread (the metrics
// scraper). Stats has a stable address for the lifetime of the Cache, also across moves.
//
// Deviations from CoreDNS v1.13.2, on purpose:
// - QCLASS is part of the key (as CoreDNS HEAD, coredns/coredns#8272).
// - A configured max TTL above 3600 s takes effect; negative TTL honours SOA MINIMUM (RFC 2308).
// - Each RR keeps its own TTL, capped by the entry's duration, instead of all RRs flattened.
// - Stale answers carry TTL 30 (RFC 8767 §4 recommends 30 s; CoreDNS sends 0, which RFC 8767
//   says clients may not cache at all).
// - Eviction is CLOCK with expired entries first, not random; expired entries are purged.
// - At most one refresh (prefetch / stale refresh) is handed out per entry at a time; a refresh
//   handed out more than kRefreshRecheck ago is assumed failed and may be handed out again.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "cache/settings.h"
#include "cache/snapshot.h"
#include "cache/store.h"
#include "dns/message.h"

namespace nld::cache {

enum class Kind : uint8_t {
  kMiss,         // nothing usable; `out` untouched
  kHit,          // fresh answer written to `out`
  kStale,        // expired answer (within serve_stale) written to `out` with TTL 30
  kStaleVerify,  // serve_stale verify: an expired entry exists; ask upstream first, then call
                 // lookupStale() if that fails. `out` untouched.
};

/// Who looks up: the partition's owner, or another worker answering a query it received for a
/// name this partition owns (see Threading above).
enum class Access : uint8_t {
  kOwner,
  /// Only a usable answer (Hit, or Stale in immediate serve_stale mode) is taken: a Miss, or an
  /// expired entry under serve_stale verify, returns Miss with nothing changed (no dead entry
  /// erased), because the peer then hands the query to the owner, which looks up again. A peer's
  /// look is not counted in Stats (whose lookup counters are the owner's; the peer's own worker
  /// metrics count its answers), so it writes no line the owner writes on every lookup, beyond
  /// the mutex and a CLOCK bit not yet set. A prefetch or stale refresh a peer is handed
  /// (`prefetch`) must be carried out by the owner: the entry is marked refreshing.
  kPeer,
};

struct LookupResult {
  Kind kind = Kind::kMiss;
  size_t length = 0;  // bytes written to `out` (Hit, Stale)
  /// The caller should refresh this key in the background (and insert the answer): set on a
  /// Hit when the prefetch conditions hold, and on a Stale answer (immediate mode). Only one
  /// refresh per entry is handed out at a time (cleared by insert(), or after kRefreshRecheck).
  bool prefetch = false;
  bool denial = false;  // the entry came from the denial store
};

/// Counters for `coredns_cache_*` metrics. Written by the owning thread only (relaxed
/// load + store), readable from any thread.
struct alignas(64) Stats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> hits_success{0};
  std::atomic<uint64_t> hits_denial{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> prefetches{0};
  std::atomic<uint64_t> served_stale{0};
  std::atomic<uint64_t> evictions_success{0};
  std::atomic<uint64_t> evictions_denial{0};
  std::atomic<uint64_t> drops{0};
  std::atomic<uint64_t> entries_success{0};  // gauge
  std::atomic<uint64_t> entries_denial{0};   // gauge
};

/// TTL carried by stale answers (RFC 8767 §4: 30 s recommended).
inline constexpr uint32_t kStaleTtl = 30;
/// A refresh handed out this long ago without an insert is assumed to have failed
/// (RFC 8767 §5 failure-recheck timer, 30 s recommended).
inline constexpr std::chrono::seconds kRefreshRecheck{30};

class Cache {
 public:
  /// Validates `s` (throws std::invalid_argument on nonsense: partitions 0, prefetch
  /// percentage > 100, servfail TTL > 300, zero byte budget) and allocates both stores.
  explicit Cache(Settings s);
  ~Cache();
  Cache(Cache&&) noexcept;
  Cache& operator=(Cache&&) noexcept;
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  /// Looks up the client's query and, on Hit/Stale, writes the complete response to `out`:
  /// the stored packet with the client's ID and question-name bytes (0x20 case restored),
  /// QR=1 AA=1, RD/CD/opcode from the query, RA/RCODE as stored, AD only if stored and the client
  /// set DO or AD, TTLs aged, our OPT appended if the query had one; if longer than `limit` the
  /// answer is truncated to the question with TC=1. Denial store is consulted first (CoreDNS).
  /// Counts requests, hits/misses, prefetches, served_stale. Never allocates on Hit.
  /// @param query_pkt the client's packet (the question bytes are taken from `q`, which keeps
  ///        their case); @param q its parse; @param limit max response size (client UDP size, or
  ///        65535 for TCP); @param out buffer for the response, at least 65535 bytes.
  /// Owner thread, or a peer worker with Access::kPeer.
  /// @param key_hash dns::keyHash(q), computed once per query by the caller (the pipeline
  ///        shares it with the forwarder, insert and lookupStale); every caller passes it, so
  ///        tests and benchmarks run the code path production runs.
  LookupResult lookup(dns::ByteView query_pkt, const dns::Query& q, uint64_t key_hash,
                      Clock::time_point now, size_t limit, dns::MutableBytes out,
                      Access access = Access::kOwner);

  /// serve_stale verify, after the upstream refresh failed: writes the entry as a Stale answer
  /// (or as a Hit if it has meanwhile been refreshed). Counts served_stale, not requests.
  /// Caller contract (CoreDNS verifyStaleResponseWriter): after StaleVerify, insert() the
  /// upstream answer only if its rcode is NOERROR or NXDOMAIN and send it; otherwise (SERVFAIL,
  /// REFUSED, timeout...) do NOT insert it — a fresh cached SERVFAIL would shadow the stale
  /// entry — and answer with lookupStale(). Owner thread only.
  LookupResult lookupStale(dns::ByteView query_pkt, const dns::Query& q, uint64_t key_hash,
                           Clock::time_point now, size_t limit, dns::MutableBytes out);

  /// Stores an upstream response `resp_pkt` (parsed as `r`) for the client query `q`. Returns the
  /// duration in seconds it was stored for, 0 if it was not stored (TC=1, uncacheable type,
  /// disabled zone, duration 0, question mismatch — the latter counted in `drops` —, or too big
  /// for the byte budget). A NoError/Delegation insert removes the key from the denial store.
  /// Inserting clears the entry's refresh-in-flight mark. Owner thread only.
  uint32_t insert(const dns::Query& q, uint64_t key_hash, dns::ByteView resp_pkt,
                  const dns::Response& r, Clock::time_point now);

  /// Where an export stopped: the store (0 success, 1 denial, 2 done) and the slot in it.
  struct ExportCursor {
    uint8_t store = 0;
    uint32_t slot = 0;
    bool done() const { return store >= 2; }
  };
  /// Exports live entries (fresh, or stale within serve_stale) from `cursor` on into `writer`
  /// with group `group`, until `max_entries` were written, 4 × max_entries slots were looked at,
  /// both stores are done, or the writer is full. Returns where to continue: a worker exports
  /// its partition in such slices between loop rounds instead of pausing for the whole cache.
  /// Entries inserted, replaced or evicted between slices may be missed or seen once (a
  /// snapshot is a best-effort copy); no entry is written twice within one store pass. Each
  /// entry's insertion instant is converted to CLOCK_BOOTTIME with `now` (see ClockPair).
  /// Owner thread only. Does not change the cache (no CLOCK bits, no stats).
  ExportCursor exportSome(ExportCursor cursor, size_t max_entries, const ClockPair& now,
                          uint32_t group, SnapshotBuffer& writer) const;

  /// Stores a snapshot entry with the lifetime it has left: its insertion instant moves to the
  /// steady clock with `now` (rounded so that it only gets older) and its original duration is
  /// kept, so a TTL is never longer than it would have been without the round trip. Goes to the
  /// success or denial store as recorded. Returns false and stores nothing if the entry is
  /// invalid, dead for this cache, in a `disable`d zone, already present in that store (a live
  /// answer wins) or does not fit. Counts evictions; updates the entries gauges. Owner thread
  /// only.
  bool importEntry(const SnapshotEntry& e, const ClockPair& now);

  /// Thread-safe to read; stable address for the Cache's lifetime.
  const Stats& stats() const { return *stats_; }
  /// Bytes held by both stores (tables and packets).
  size_t memoryBytes() const;
  const Settings& settings() const { return settings_; }
  size_t successCapacity() const { return success_.capacity(); }
  size_t denialCapacity() const { return denial_.capacity(); }

  /// Per-partition capacity for a configured capacity: rounded down to a multiple of 256 with
  /// a minimum of 1024 like CoreDNS (256 shards × max(capacity/256, 4)), then divided among
  /// `partitions`, at least 4 each.
  static size_t partitionCapacity(size_t configured, size_t partitions);

 private:
  struct Found {
    Store* store = nullptr;
    uint32_t index = Store::kNone;
    bool denial = false;
  };
  enum class Freshness : uint8_t { kFresh, kStale, kDead };
  /// Holds the partition's mutex, if it has one, for a scope.
  class Guard {
   public:
    explicit Guard(std::mutex* mu) : mu_(mu) {
      if (mu_ != nullptr) mu_->lock();
    }
    ~Guard() {
      if (mu_ != nullptr) mu_->unlock();
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    std::mutex* mu_;
  };

  Freshness freshness(const Entry& e, Clock::time_point now) const;
  /// `erase_dead`: erase the dead entries met on the way (the owner; not a peer's lookup).
  Found findLive(const KeyView& key, uint64_t hash, Clock::time_point now, bool& fresh,
                 bool erase_dead);
  size_t render(const Entry& e, const dns::Query& q, Clock::time_point now, bool stale,
                size_t limit, dns::MutableBytes out) const;
  bool takeRefresh(Entry& e, Clock::time_point now);
  bool shouldPrefetch(Entry& e, Clock::time_point now);
  bool disabled(const dns::Name& name, bool denial) const;
  void syncGauges();

  Settings settings_;
  uint32_t stale_s_ = 0;
  std::unique_ptr<Stats> stats_;
  /// Only with more than one partition (see Threading); heap-held so the Cache stays movable.
  std::unique_ptr<std::mutex> mu_;
  Store success_;
  Store denial_;
};

}  // namespace nld::cache
