#include "cache/store.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <utility>

#include "dns/message.h"

namespace nld::cache {

uint32_t Entry::elapsed(Clock::time_point now) const {
  if (now <= inserted) return 0;
  auto s = std::chrono::duration_cast<std::chrono::seconds>(now - inserted).count();
  return s > static_cast<int64_t>(UINT32_MAX) ? UINT32_MAX : static_cast<uint32_t>(s);
}

Store::Store(size_t capacity, size_t byte_budget, uint32_t dead_after_s)
    : byte_budget_(byte_budget), dead_after_s_(dead_after_s) {
  if (capacity == 0 || capacity > (size_t{1} << 30)) {
    throw std::invalid_argument("cache store capacity must be between 1 and 2^30 entries");
  }
  capacity_ = capacity;
  rehash(16);
}

void Store::rehash(size_t table) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(table, Slot{});
  mask_ = table - 1;
  for (const Slot& s : old) {
    if (s.index != 0) indexInsert(entries_[s.index - 1].hash, s.index - 1);
  }
}

bool Store::grow() {
  const size_t have = entries_.size();
  if (have >= capacity_) return false;
  const size_t want = std::min(capacity_, std::max<size_t>(64, have * 2));
  entries_.resize(want);
  meta_.resize(want, 0);
  // Pushed in descending order so that new slots are handed out in ascending order.
  for (size_t i = want; i-- > have;) pushFree(static_cast<uint32_t>(i));
  // Keep the index at most half full for the largest size the entries can now reach.
  size_t table = std::bit_ceil(want * 2);
  if (table > slots_.size()) rehash(table);
  return true;
}

bool Store::matches(const Entry& e, uint64_t hash, const KeyView& key) const {
  return e.hash == hash && e.qtype == key.qtype && e.qclass == key.qclass &&
         e.dnssec_ok == key.dnssec_ok && e.checking_disabled == key.checking_disabled &&
         e.name_len == key.name->len &&
         dns::wireEqualsIgnoreCase(e.packet() + dns::kHeaderSize, key.name->data.data(),
                                   e.name_len);
}

uint32_t Store::find(uint64_t hash, const KeyView& key) const {
  const auto tag = static_cast<uint32_t>(hash);
  for (size_t p = hash & mask_;; p = (p + 1) & mask_) {
    const Slot& s = slots_[p];
    if (s.index == 0) return kNone;
    if (s.tag == tag && matches(entries_[s.index - 1], hash, key)) return s.index - 1;
  }
}

void Store::indexInsert(uint64_t hash, uint32_t index) {
  size_t p = hash & mask_;
  while (slots_[p].index != 0) p = (p + 1) & mask_;
  slots_[p] = Slot{static_cast<uint32_t>(hash), index + 1};
}

// Linear-probing deletion by backward shift (no tombstones, so probe lengths stay short).
void Store::indexErase(uint64_t hash, uint32_t index) {
  size_t p = hash & mask_;
  while (slots_[p].index != index + 1) {
    if (slots_[p].index == 0) return;  // not indexed (cannot happen for a live entry)
    p = (p + 1) & mask_;
  }
  size_t j = p;
  for (;;) {
    j = (j + 1) & mask_;
    if (slots_[j].index == 0) break;
    size_t home = slots_[j].tag & mask_;
    // The entry at j may move to p only if its home is not cyclically within (p, j].
    bool stays = (p <= j) ? (p < home && home <= j) : (p < home || home <= j);
    if (stays) continue;
    slots_[p] = slots_[j];
    p = j;
  }
  slots_[p] = Slot{};
}

bool Store::isDead(const Entry& e, Clock::time_point now) const {
  uint64_t limit = uint64_t{e.duration} + dead_after_s_;
  return e.elapsed(now) >= limit;
}

uint32_t Store::secondsOf(Clock::time_point now) {
  const int64_t s = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  if (s <= 0) return 0;
  return s >= int64_t{kNeverDead} ? kNeverDead - 1 : static_cast<uint32_t>(s);
}

uint32_t Store::deathSecond(const Entry& e) const {
  // Rounded down: the slot word is a hint ("may be dead from this second on"), always verified
  // by isDead() before an entry is erased, so a dead entry is found as soon as it dies. Seconds,
  // not nanoseconds: duration + dead_after_s_ (up to 2^33 s) would overflow a nanosecond count.
  const int64_t s =
      std::chrono::floor<std::chrono::seconds>(e.inserted.time_since_epoch()).count() +
      int64_t{e.duration} + int64_t{dead_after_s_};
  if (s <= 0) return 0;  // before the clock's epoch (fake test clocks only)
  return s >= int64_t{kNeverDead} ? kNeverDead : static_cast<uint32_t>(s);
}

void Store::setInUse(uint32_t index, uint32_t death, bool referenced) {
  meta_[index] = kInUse | (referenced ? kReferenced : 0) | death;
  earliest_death_ = std::min(earliest_death_, death);
  round_min_ = std::min(round_min_, death);
}

void Store::pushFree(uint32_t index) {
  meta_[index] = free_head_;  // in-use bit clear
  free_head_ = index;
}

uint32_t Store::popFree() {
  const uint32_t index = free_head_;
  free_head_ = meta_[index] & kNextMask;
  meta_[index] = 0;
  return index;
}

void Store::detach(uint32_t index) {
  Entry& e = entries_[index];
  indexErase(e.hash, index);
  bytes_ -= e.blob_size;
  e = Entry{};
  meta_[index] = 0;
  --size_;
}

void Store::erase(uint32_t index) {
  if (index >= meta_.size() || (meta_[index] & kInUse) == 0) return;
  detach(index);
  pushFree(index);
}

size_t Store::scanDead(Clock::time_point now, uint32_t now_s, size_t n) {
  const size_t table = entries_.size();
  if (size_ == 0 || now_s < earliest_death_) return 0;  // nothing can be dead yet
  size_t erased = 0;
  n = std::min(n, table);
  for (size_t i = 0; i < n; ++i) {
    if (++purge_cursor_ >= table) {
      // A full round is complete: every live entry was either examined or stored during it.
      purge_cursor_ = 0;
      earliest_death_ = round_min_;
      round_min_ = kNeverDead;
    }
    ++examined_;
    const uint32_t m = meta_[purge_cursor_];
    if ((m & kInUse) == 0) continue;
    const uint32_t death = m & kDeathMask;
    if (death <= now_s && isDead(entries_[purge_cursor_], now)) {
      erase(static_cast<uint32_t>(purge_cursor_));
      ++erased;
      continue;
    }
    round_min_ = std::min(round_min_, death);
  }
  return erased;
}

size_t Store::purge(Clock::time_point now, size_t n) { return scanDead(now, secondsOf(now), n); }

uint32_t Store::clockVictim(Clock::time_point now, uint32_t keep, bool& dead) {
  dead = false;
  const size_t table = entries_.size();
  if (table == 0) return kNone;
  const uint32_t now_s = secondsOf(now);
  uint32_t last_live = kNone;
  for (size_t step = 0; step < kClockSteps; ++step) {
    if (++hand_ >= table) hand_ = 0;
    ++examined_;
    const auto i = static_cast<uint32_t>(hand_);
    const uint32_t m = meta_[i];
    if ((m & kInUse) == 0 || i == keep) continue;
    if ((m & kDeathMask) <= now_s && isDead(entries_[i], now)) {
      dead = true;  // dead entries go regardless of their bit
      return i;
    }
    if ((m & kReferenced) == 0) return i;
    meta_[i] = m & ~kReferenced;  // second chance
    last_live = i;
  }
  // Every candidate within the bound was referenced: take the last one passed (its second
  // chance was just used), as a full CLOCK sweep would eventually have done.
  return last_live;
}

uint32_t Store::takeSlot(Clock::time_point now, uint64_t& evictions) {
  if (free_head_ == kEndOfFree) grow();
  if (free_head_ == kEndOfFree) purge(now, kPurgeWhenFull);
  if (free_head_ != kEndOfFree) return popFree();
  bool dead = false;
  const uint32_t victim = clockVictim(now, kNone, dead);
  if (victim == kNone) return kNone;
  detach(victim);  // reused directly, without a trip through the free list
  if (!dead) ++evictions;
  return victim;
}

uint32_t Store::put(Entry&& e, uint32_t existing, Clock::time_point now, uint64_t& evictions) {
  if (e.blob_size > byte_budget_) {
    if (existing != kNone) erase(existing);
    return kNone;
  }
  uint32_t index = existing;
  bool referenced = false;
  if (existing != kNone) {
    Entry& old = entries_[existing];
    e.hits = old.hits;
    e.last_hit = old.last_hit;
    referenced = (meta_[existing] & kReferenced) != 0;
    bytes_ -= old.blob_size;
    old.blob_size = 0;
    meta_[index] = kInUse | kNeverDead;  // provisional: a purge must not take it (it may be dead)
  } else {
    index = takeSlot(now, evictions);
    if (index == kNone) return kNone;
    Entry& slot = entries_[index];
    slot.hash = e.hash;
    slot.blob_size = 0;
    indexInsert(e.hash, index);
    ++size_;
    meta_[index] = kInUse | kNeverDead;  // provisional, until the entry is moved in
  }
  // Make room in the byte budget, keeping the slot being filled: dead entries first, then CLOCK.
  if (bytes_ + e.blob_size > byte_budget_) purge(now, kPurgeWhenFull);
  for (size_t i = 0; bytes_ + e.blob_size > byte_budget_; ++i) {
    bool dead = false;
    const uint32_t victim = i < kMaxEvictionsForBytes ? clockVictim(now, index, dead) : kNone;
    if (victim == kNone) {
      erase(index);
      return kNone;
    }
    erase(victim);
    if (!dead) ++evictions;
  }
  bytes_ += e.blob_size;
  const uint32_t death = deathSecond(e);
  entries_[index] = std::move(e);
  setInUse(index, death, referenced);
  return index;
}

size_t Store::memoryBytes() const {
  return sizeof(*this) + entries_.capacity() * sizeof(Entry) + meta_.capacity() * sizeof(uint32_t) +
         slots_.capacity() * sizeof(Slot) + bytes_;
}

}  // namespace nld::cache
