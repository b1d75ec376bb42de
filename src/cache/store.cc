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
  for (size_t i = want; i-- > have;) free_.push_back(static_cast<uint32_t>(i));
  // Keep the index at most half full for the largest size the entries can now reach.
  size_t table = std::bit_ceil(want * 2);
  if (table > slots_.size()) rehash(table);
  return true;
}

bool Store::matches(const Entry& e, uint64_t hash, const KeyView& key) const {
  return e.hash == hash && e.qtype == key.qtype && e.qclass == key.qclass &&
         e.dnssec_ok == key.dnssec_ok && e.checking_disabled == key.checking_disabled &&
         e.name_len == key.name->len &&
         wireEqualsIgnoreCase(e.packet() + dns::kHeaderSize, key.name->data.data(), e.name_len);
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

void Store::erase(uint32_t index) {
  Entry& e = entries_[index];
  if (!e.in_use) return;
  indexErase(e.hash, index);
  bytes_ -= e.blob_size;
  e = Entry{};
  free_.push_back(index);
  --size_;
}

size_t Store::purge(Clock::time_point now, size_t n) {
  size_t erased = 0;
  if (size_ == 0 || entries_.empty()) return 0;
  for (size_t i = 0; i < n && i < entries_.size(); ++i) {
    purge_cursor_ = (purge_cursor_ + 1) % entries_.size();
    Entry& e = entries_[purge_cursor_];
    if (e.in_use && isDead(e, now)) {
      erase(static_cast<uint32_t>(purge_cursor_));
      ++erased;
    }
  }
  return erased;
}

bool Store::evictOne(Clock::time_point now, uint32_t keep) {
  const size_t n = entries_.size();
  if (n == 0) return false;
  // Two full turns suffice: the first clears every bit, the second finds a victim.
  for (size_t step = 0; step < 2 * n + 1; ++step) {
    hand_ = (hand_ + 1) % n;
    Entry& e = entries_[hand_];
    if (!e.in_use || hand_ == keep) continue;
    if (e.referenced && !isDead(e, now)) {
      e.referenced = false;
      continue;
    }
    erase(static_cast<uint32_t>(hand_));
    return true;
  }
  return false;
}

uint32_t Store::takeFreeSlot(Clock::time_point now, uint64_t& evictions) {
  if (free_.empty()) grow();
  if (free_.empty()) purge(now, kPurgeWhenFull);
  if (free_.empty()) {
    if (!evictOne(now, kNone)) return kNone;
    ++evictions;
  }
  uint32_t index = free_.back();
  free_.pop_back();
  return index;
}

uint32_t Store::put(Entry&& e, uint32_t existing, Clock::time_point now, uint64_t& evictions) {
  if (e.blob_size > byte_budget_) {
    if (existing != kNone) erase(existing);
    return kNone;
  }
  uint32_t index = existing;
  if (existing != kNone) {
    Entry& old = entries_[existing];
    e.hits = old.hits;
    e.last_hit = old.last_hit;
    e.referenced = old.referenced;
    bytes_ -= old.blob_size;
    old.blob_size = 0;
  } else {
    index = takeFreeSlot(now, evictions);
    if (index == kNone) return kNone;
    indexInsert(e.hash, index);
    ++size_;
  }
  // Make room in the byte budget, keeping the slot being filled.
  {
    Entry& slot = entries_[index];
    slot.in_use = true;
    slot.hash = e.hash;
    slot.blob_size = 0;
  }
  for (size_t i = 0; bytes_ + e.blob_size > byte_budget_; ++i) {
    if (i >= kMaxEvictionsForBytes || !evictOne(now, index)) {
      erase(index);
      return kNone;
    }
    ++evictions;
  }
  e.in_use = true;
  bytes_ += e.blob_size;
  entries_[index] = std::move(e);
  return index;
}

size_t Store::memoryBytes() const {
  return sizeof(*this) + entries_.capacity() * sizeof(Entry) + slots_.capacity() * sizeof(Slot) +
         free_.capacity() * sizeof(uint32_t) + bytes_;
}

}  // namespace nld::cache
