#pragma once
// One bounded store of cached responses (the success or the denial half of a Cache).
//
// Memory bounds: the entry table (`capacity` slots) and the open-addressing index (a power of two
// ≥ 2 × capacity, so the load factor stays ≤ 0.5) are allocated once in the constructor. Each
// entry owns one heap block holding its packet and its TTL offsets; the sum of those blocks is
// kept within `byte_budget`. An entry that cannot be made to fit is not stored.
//
// Eviction: CLOCK (second chance). Every hit sets the entry's `referenced` bit; the hand clears
// set bits and evicts the first entry whose bit is clear, so an entry hit since the hand last
// passed survives. Dead entries (expired beyond the serve-stale window) are always taken first:
// a few slots are purged on every insert, a larger scan runs before evicting anything live, and
// the hand takes a dead entry regardless of its bit.
//
// Hand-written rather than std::unordered_map: lookups must be allocation-free with fixed memory
// and the index must find an entry by hash and then compare the key against the stored packet
// (the QNAME is not stored twice).
//
// Thread affinity: owned and used by one thread (the worker owning the Cache); not thread-safe.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cache/cache_key.h"

namespace nld::cache {

using Clock = std::chrono::steady_clock;

/// A cached response. `blob` holds the response packet without OPT ([0, pkt_len)), its question
/// at offset 12 uncompressed, followed by rr_count big-endian 16-bit offsets of RR TTL fields.
struct Entry {
  std::unique_ptr<uint8_t[]> blob;
  uint64_t hash = 0;
  Clock::time_point inserted{};
  Clock::time_point last_hit{};         // prefetch frequency window
  Clock::time_point refresh_started{};  // when a background refresh was handed out
  uint32_t blob_size = 0;               // bytes allocated for blob
  uint32_t duration = 0;                // seconds the entry is fresh
  uint32_t hits = 0;                    // hits within the prefetch window
  uint16_t pkt_len = 0;
  uint16_t rr_count = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  uint16_t flags = 0;  // the upstream's RA, AD and RCODE bits
  uint8_t name_len = 0;
  bool dnssec_ok = false;
  bool checking_disabled = false;
  bool referenced = false;  // CLOCK bit
  bool in_use = false;
  bool refresh_in_flight = false;

  const uint8_t* packet() const { return blob.get(); }
  uint16_t ttlOffset(size_t i) const { return dns::load16(blob.get() + pkt_len + 2 * i); }
  /// Whole seconds since insertion (0 if `now` is earlier).
  uint32_t elapsed(Clock::time_point now) const;
};

class Store {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kPurgePerInsert = 8;   // dead-entry checks on every insert
  static constexpr size_t kPurgeWhenFull = 64;   // extra checks before evicting a live entry
  static constexpr size_t kMaxEvictionsForBytes = 8;

  /// @param capacity entries (≥ 1); @param byte_budget bytes of entry blobs;
  /// @param dead_after_s extra seconds after expiry an entry is still useful (serve-stale window).
  Store(size_t capacity, size_t byte_budget, uint32_t dead_after_s);

  /// Index of the entry with this key, or kNone.
  uint32_t find(uint64_t hash, const KeyView& key) const;
  Entry& entry(uint32_t index) { return entries_[index]; }
  const Entry& entry(uint32_t index) const { return entries_[index]; }

  /// Stores `e` (complete, blob set), replacing `existing` (the entry with the same key, or
  /// kNone). A replaced entry's prefetch frequency carries over. Returns the index, or kNone if
  /// it could not be made to fit (then `existing`, if any, is removed too: it is outdated).
  /// `evictions` is incremented for every other entry removed to make room.
  uint32_t put(Entry&& e, uint32_t existing, Clock::time_point now, uint64_t& evictions);

  void erase(uint32_t index);
  /// Checks up to `n` slots (round-robin) and erases dead entries. Returns how many it erased.
  size_t purge(Clock::time_point now, size_t n);
  bool isDead(const Entry& e, Clock::time_point now) const;

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return bytes_; }
  size_t byteBudget() const { return byte_budget_; }
  /// Everything this store holds: tables plus entry blobs.
  size_t memoryBytes() const;

 private:
  struct Slot {
    uint32_t tag = 0;    // low 32 bits of the hash
    uint32_t index = 0;  // entry index + 1; 0 = empty
  };

  bool matches(const Entry& e, uint64_t hash, const KeyView& key) const;
  void indexInsert(uint64_t hash, uint32_t index);
  void indexErase(uint64_t hash, uint32_t index);
  uint32_t takeFreeSlot(Clock::time_point now, uint64_t& evictions);
  /// Evicts one entry other than `keep` by CLOCK. False if there is none.
  bool evictOne(Clock::time_point now, uint32_t keep);

  /// Grows the entry table (doubling, up to capacity_) and the hash index (load ≤ 1/2) on
  /// demand, so an idle cache configured for 100k names costs kilobytes, not megabytes.
  bool grow();
  void rehash(size_t table);

  size_t capacity_ = 0;
  std::vector<Entry> entries_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t bytes_ = 0;
  size_t byte_budget_ = 0;
  uint32_t dead_after_s_ = 0;
  size_t hand_ = 0;          // CLOCK hand
  size_t purge_cursor_ = 0;  // incremental purge position
};

}  // namespace nld::cache
