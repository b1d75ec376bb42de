#pragma once
// A small open-addressing hash map from 64-bit keys (already well mixed: hashes) to non-zero
// 64-bit values, for the forwarder's coalescing table.
//
// Hand-written instead of std::unordered_map: that allocates a node per insert, and the table is
// written twice per cache miss (insert on the first query, erase on the answer). Linear probing
// with backward-shift deletion: no tombstones, no allocation once grown to the peak size.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nld::upstream {

/// Not thread-safe (one forwarder = one loop thread).
class U64Map {
 public:
  /// The value stored for `key`, or 0.
  uint64_t find(uint64_t key) const {
    if (size_ == 0) return 0;
    const size_t mask = slots_.size() - 1;
    for (size_t i = key & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.value == 0) return 0;
      if (s.key == key) return s.value;
    }
  }
  /// Inserts or replaces. `value` must not be 0.
  void insert(uint64_t key, uint64_t value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = key & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.value == 0) {
        s = Slot{key, value};
        ++size_;
        return;
      }
      if (s.key == key) {
        s.value = value;
        return;
      }
    }
  }
  /// Removes `key` if present.
  void erase(uint64_t key) {
    if (size_ == 0) return;
    const size_t mask = slots_.size() - 1;
    size_t i = key & mask;
    for (;; i = (i + 1) & mask) {
      if (slots_[i].value == 0) return;
      if (slots_[i].key == key) break;
    }
    // Backward shift: move later members of the probe run into the hole when their home slot
    // does not lie cyclically in (hole, j].
    for (size_t j = (i + 1) & mask; slots_[j].value != 0; j = (j + 1) & mask) {
      const size_t home = slots_[j].key & mask;
      const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = 0;
    uint64_t value = 0;  // 0 = empty
  };
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    size_ = 0;
    for (const Slot& s : old) {
      if (s.value != 0) insert(s.key, s.value);
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace nld::upstream
