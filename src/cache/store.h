#pragma once
// One bounded store of cached responses (the success or the denial half of a Cache).
//
// Memory bounds: the entry table (`capacity` slots), a parallel table of 32-bit slot words and
// the open-addressing index (a power of two ≥ 2 × the table, so the load factor stays ≤ 0.5)
// grow on demand up to `capacity` and are never shrunk. Each entry owns one heap block holding
// its packet and its TTL offsets; the sum of those blocks is kept within `byte_budget`. An entry
// that cannot be made to fit is not stored.
//
// Slot words: for a slot in use, the in-use bit, the CLOCK `referenced` bit (set by hits) and
// the second (since the clock's epoch, rounded down) in which the entry dies, i.e. expires
// beyond the serve-stale window; for a free slot, the next free slot (an intrusive free list: no
// separate vector). Purge scans and the CLOCK hand read only these 4-byte words — 16 per cache
// line — and touch an Entry only to verify a death and to erase it.
//
// Eviction (bounded work per insert, no O(capacity) scan on the packet path):
// - every insert first checks kPurgePerInsert slot words (round-robin cursor) and erases dead
//   entries (Cache::insert calls purge());
// - an insert into a full store checks kPurgeWhenFull more words before evicting anything live;
//   both checks are skipped while no entry can be dead yet (a lower bound of the earliest death
//   second, refreshed each time the cursor completes a round);
// - then the CLOCK hand (second chance) takes the first dead or unreferenced entry within
//   kClockSteps slots, clearing the `referenced` bits it passes (every bit cleared was set by a
//   hit, so this is amortised O(1) per insert + hit). Only if all kClockSteps slots were
//   referenced (a run of more than 1000 consecutive hot entries) does it evict the entry it
//   stopped at, whose second chance has just been used: the bound replaces the rest of CLOCK's
//   sweep, at the cost of that one hot entry.
// - an insert over the byte budget checks kPurgeWhenFull more words for dead entries, then
//   takes up to kMaxEvictionsForBytes CLOCK victims; if that is not enough it is not stored.
// Worst case per insert: kPurgePerInsert + 2 × kPurgeWhenFull + kClockSteps ×
// (1 + kMaxEvictionsForBytes) slot words read, and at most one erase per slot word read (dead
// entries found plus victims; each entry is erased once, so amortised one erase per insert).
// Removing a dead entry is a purge, not an eviction, wherever it happens. Stores of up to
// kClockSteps / 2 entries behave exactly like unbounded CLOCK (two full turns fit in the bound).
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
/// Exactly one cache line: a hit touches one Entry line (the flags are bit-fields for that).
/// The CLOCK bit is not here but in the store's slot word (Store::reference()).
struct alignas(64) Entry {
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
  bool dnssec_ok : 1 = false;
  bool checking_disabled : 1 = false;
  bool refresh_in_flight : 1 = false;

  const uint8_t* packet() const { return blob.get(); }
  uint16_t ttlOffset(size_t i) const { return dns::load16(blob.get() + pkt_len + 2 * i); }
  /// Whole seconds since insertion (0 if `now` is earlier).
  uint32_t elapsed(Clock::time_point now) const;
};
static_assert(sizeof(Entry) == 64, "Entry must stay one cache line");

class Store {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kPurgePerInsert = 8;  // dead-entry checks on every insert
  static constexpr size_t kPurgeWhenFull = 64;  // extra checks before evicting a live entry
  static constexpr size_t kClockSteps = 1024;   // slots the CLOCK hand passes per victim, at most
  static constexpr size_t kMaxEvictionsForBytes = 8;

  /// @param capacity entries (1 .. 2^30); @param byte_budget bytes of entry blobs;
  /// @param dead_after_s extra seconds after expiry an entry is still useful (serve-stale window).
  /// Throws std::invalid_argument on a capacity out of range (startup only).
  Store(size_t capacity, size_t byte_budget, uint32_t dead_after_s);

  /// Index of the entry with this key, or kNone.
  uint32_t find(uint64_t hash, const KeyView& key) const;
  /// Sets the CLOCK bit of entry `index` (in use): called on every hit.
  /// Writes only when the bit is clear: a hot entry's slot word stays unwritten, so its cache line
  /// is not dirtied on every hit (and not moved between cores when another worker reads it).
  void reference(uint32_t index) {
    if ((meta_[index] & kReferenced) == 0) meta_[index] |= kReferenced;
  }
  bool referenced(uint32_t index) const { return (meta_[index] & kReferenced) != 0; }
  Entry& entry(uint32_t index) { return entries_[index]; }
  const Entry& entry(uint32_t index) const { return entries_[index]; }

  /// Stores `e` (complete, blob set), replacing `existing` (the entry with the same key, or
  /// kNone). A replaced entry's prefetch frequency and CLOCK bit carry over. Returns the index,
  /// or kNone if it could not be made to fit (then `existing`, if any, is removed too: it is
  /// outdated). `evictions` is incremented for every other live entry removed to make room
  /// (dead entries removed on the way are purged, not counted). Bounded work: see above.
  uint32_t put(Entry&& e, uint32_t existing, Clock::time_point now, uint64_t& evictions);

  void erase(uint32_t index);
  /// Checks up to `n` slots (round-robin) and erases dead entries. Returns how many it erased.
  size_t purge(Clock::time_point now, size_t n);
  bool isDead(const Entry& e, Clock::time_point now) const;

  size_t size() const { return size_; }
  /// Slots in the entry table (grown so far); valid indexes are [0, tableSize()).
  size_t tableSize() const { return entries_.size(); }
  /// True if slot `index` (< tableSize()) holds an entry.
  bool inUse(uint32_t index) const { return (meta_[index] & kInUse) != 0; }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return bytes_; }
  size_t byteBudget() const { return byte_budget_; }
  /// Everything this store holds: tables plus entry blobs.
  size_t memoryBytes() const;
  /// Slots examined so far by purge scans and the CLOCK hand (for tests of the per-insert bound).
  uint64_t slotsExamined() const { return examined_; }

 private:
  struct Slot {
    uint32_t tag = 0;    // low 32 bits of the hash
    uint32_t index = 0;  // entry index + 1; 0 = empty
  };
  // Slot word layout (meta_). In use: bit 31 set, bit 30 = referenced, bits 0..29 = death
  // second. Free: bit 31 clear, bits 0..30 = next free slot (kEndOfFree ends the list).
  static constexpr uint32_t kInUse = 0x80000000u;
  static constexpr uint32_t kReferenced = 0x40000000u;
  static constexpr uint32_t kDeathMask = 0x3fffffffu;
  static constexpr uint32_t kNextMask = 0x7fffffffu;
  static constexpr uint32_t kEndOfFree = kNextMask;
  static constexpr uint32_t kNeverDead = kDeathMask;  // beyond the 30-bit range (34 years)

  bool matches(const Entry& e, uint64_t hash, const KeyView& key) const;
  void indexInsert(uint64_t hash, uint32_t index);
  void indexErase(uint64_t hash, uint32_t index);

  /// Whole seconds since the clock's epoch, clamped to [0, kNeverDead − 1].
  static uint32_t secondsOf(Clock::time_point now);
  /// Whole second in which `e` dies (rounded down: a hint, verified by isDead()), clamped to
  /// kNeverDead.
  uint32_t deathSecond(const Entry& e) const;
  void setInUse(uint32_t index, uint32_t death, bool referenced);
  /// Scans `n` slot words from the purge cursor and erases the dead entries among them.
  size_t scanDead(Clock::time_point now, uint32_t now_s, size_t n);
  /// Removes entry `index` from the index and the accounting and frees its blob; the slot is
  /// left out of the free list for the caller to refill or release.
  void detach(uint32_t index);
  void pushFree(uint32_t index);
  uint32_t popFree();
  /// A slot for a new entry: free, grown, purged or evicted (CLOCK). kNone if the table is full
  /// and nothing could be taken (cannot happen with capacity ≥ 1).
  uint32_t takeSlot(Clock::time_point now, uint64_t& evictions);
  /// Picks a victim other than `keep` by CLOCK within kClockSteps slot words (see the header
  /// comment); sets `dead` if it is a dead entry. kNone if those slots hold no candidate.
  uint32_t clockVictim(Clock::time_point now, uint32_t keep, bool& dead);

  /// Grows the entry table (doubling, up to capacity_) and the hash index (load ≤ 1/2) on
  /// demand, so an idle cache configured for 100k names costs kilobytes, not megabytes.
  bool grow();
  void rehash(size_t table);

  size_t capacity_ = 0;
  std::vector<Entry> entries_;
  std::vector<uint32_t> meta_;  // one slot word per entry
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t bytes_ = 0;
  size_t byte_budget_ = 0;
  uint32_t dead_after_s_ = 0;
  uint32_t free_head_ = kEndOfFree;
  size_t hand_ = 0;          // CLOCK hand
  size_t purge_cursor_ = 0;  // incremental purge position
  // No entry dies before earliest_death_ (a lower bound): dead scans are skipped until then.
  // round_min_ collects the minimum over the cursor's current round and the entries stored
  // during it; it becomes the new bound when the cursor wraps.
  uint32_t earliest_death_ = kNeverDead;
  uint32_t round_min_ = kNeverDead;
  uint64_t examined_ = 0;
};

}  // namespace nld::cache
