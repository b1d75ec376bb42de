// Store eviction: dead entries first (and not counted as evictions), CLOCK second chance among
// live ones, the byte budget, the bounded work per insert, and the dead-entry lower bound that
// lets purge scans be skipped (checked against a brute-force model under random churn).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cache/store.h"
#include "store_entry.h"
#include "test_packets.h"

namespace nld::cache::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kBig = size_t{1} << 30;  // a byte budget that never binds

class StoreEviction : public ::testing::Test {
 protected:
  const Clock::time_point t0_ = Clock::time_point{} + std::chrono::hours(1000);
  std::map<int, dns::Name> names_;
  uint64_t evictions_ = 0;

  Clock::time_point at(int64_t s) const { return t0_ + seconds(s); }

  const dns::Name& nameOf(int k) {
    auto it = names_.find(k);
    if (it == names_.end()) {
      // Appended rather than `"k" + std::to_string(k)`: GCC 12 -O2 warns falsely (-Wrestrict).
      std::string text = std::to_string(k);
      text.insert(0, 1, 'k');
      text += ".test";
      it = names_.emplace(k, name(text)).first;
    }
    return it->second;
  }
  static uint64_t hashOf(int k) {  // splitmix64: well spread, deterministic
    uint64_t z = static_cast<uint64_t>(k) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  KeyView keyOf(int k) { return KeyView{&nameOf(k), dns::type::A, dns::cls::IN, false, false}; }

  /// An entry of exactly `blob_size` bytes (at least header + name + 4).
  Entry makeEntry(int k, Clock::time_point now, uint32_t duration, size_t blob_size = 0) {
    return makeStoreEntry(nameOf(k), hashOf(k), now, duration, blob_size);
  }
  uint32_t put(Store& s, int k, Clock::time_point now, uint32_t duration, size_t blob_size = 0) {
    return s.put(makeEntry(k, now, duration, blob_size), s.find(hashOf(k), keyOf(k)), now,
                 evictions_);
  }
  uint32_t find(Store& s, int k) { return s.find(hashOf(k), keyOf(k)); }
  bool has(Store& s, int k) { return find(s, k) != Store::kNone; }
};

TEST_F(StoreEviction, FullStoreTakesDeadEntriesFirstWithoutCountingThem) {
  Store s(64, kBig, 0);
  for (int k = 0; k < 64; ++k) ASSERT_NE(put(s, k, at(0), k % 2 == 0 ? 10 : 600), Store::kNone);
  ASSERT_EQ(s.size(), 64u);
  // At t=20 the 32 even keys are dead; 32 new keys must replace exactly those.
  for (int k = 100; k < 132; ++k) ASSERT_NE(put(s, k, at(20), 600), Store::kNone);
  EXPECT_EQ(evictions_, 0u);
  EXPECT_EQ(s.size(), 64u);
  for (int k = 0; k < 64; ++k) EXPECT_EQ(has(s, k), k % 2 == 1) << k;
  for (int k = 100; k < 132; ++k) EXPECT_TRUE(has(s, k)) << k;
}

TEST_F(StoreEviction, MixedDeadReferencedAndColdEntries) {
  Store s(64, kBig, 0);
  // k % 4 == 0: dead at t=20; 1: live and referenced; 2, 3: live, never hit.
  for (int k = 0; k < 64; ++k) put(s, k, at(0), k % 4 == 0 ? 10 : 600);
  for (int k = 1; k < 64; k += 4) s.reference(find(s, k));
  for (int k = 100; k < 140; ++k) ASSERT_NE(put(s, k, at(20), 600), Store::kNone);
  // 16 dead slots were reused for free; the other 24 inserts each evicted one live entry.
  EXPECT_EQ(evictions_, 24u);
  EXPECT_EQ(s.size(), 64u);
  for (int k = 0; k < 64; k += 4) EXPECT_FALSE(has(s, k)) << "dead key survived: " << k;
  for (int k = 1; k < 64; k += 4) EXPECT_TRUE(has(s, k)) << "referenced key evicted: " << k;
  EXPECT_TRUE(has(s, 139));  // the newest is never its own victim
}

TEST_F(StoreEviction, ClockGivesReferencedEntriesASecondChance) {
  Store s(64, kBig, 0);
  for (int k = 0; k < 64; ++k) put(s, k, at(0), 600);
  for (int k = 0; k < 32; ++k) s.reference(find(s, k));
  for (int k = 100; k < 132; ++k) put(s, k, at(1), 600);
  EXPECT_EQ(evictions_, 32u);
  for (int k = 0; k < 32; ++k) EXPECT_TRUE(has(s, k)) << k;
  for (int k = 32; k < 64; ++k) EXPECT_FALSE(has(s, k)) << k;
  // Second chance used up (bits cleared by the hand, except possibly the one it has not
  // reached yet): the next round of inserts evicts the old ones, not the newer cold keys only.
  for (int k = 200; k < 264; ++k) put(s, k, at(2), 600);
  int old_left = 0;
  for (int k = 0; k < 32; ++k) old_left += has(s, k);
  EXPECT_LE(old_left, 1);
}

TEST_F(StoreEviction, HandTakesADeadEntryRegardlessOfItsBitWithoutCountingIt) {
  Store s(256, kBig, 0);
  for (int k = 0; k < 256; ++k) put(s, k, at(0), k == 100 ? 50 : 600);  // index == key
  s.reference(find(s, 100));
  // Nothing can be dead before t=50, so no purge scan runs: the hand alone moves to slot 99.
  for (int k = 1000; k < 1099; ++k) ASSERT_NE(put(s, k, at(10), 600), Store::kNone);
  ASSERT_EQ(evictions_, 99u);
  ASSERT_TRUE(has(s, 100));
  // At t=60 key 100 is dead; the purge scan (slots 1..64) misses it, the hand meets it next.
  ASSERT_NE(put(s, 2000, at(60), 600), Store::kNone);
  EXPECT_EQ(evictions_, 99u);
  EXPECT_FALSE(has(s, 100));
  EXPECT_TRUE(has(s, 101));
  EXPECT_EQ(s.size(), 256u);
}

TEST_F(StoreEviction, DeadEntriesAreNeverCountedAsEvictions) {
  Store s(1024, kBig, 0);
  std::mt19937 rng(7);
  std::vector<int> dead_keys;
  for (int k = 0; k < 1024; ++k) {
    const bool dies = rng() % 10 == 0;
    if (dies) dead_keys.push_back(k);
    put(s, k, at(0), dies ? 10 : 600);
  }
  ASSERT_EQ(s.size(), 1024u);
  const auto d = static_cast<uint64_t>(dead_keys.size());
  ASSERT_GT(d, 50u);
  for (int k = 5000; k < 5300; ++k) ASSERT_NE(put(s, k, at(20), 600), Store::kNone);
  EXPECT_EQ(evictions_, 300u - d);  // every removal of a dead entry is a purge
  EXPECT_EQ(s.size(), 1024u);
  for (int k : dead_keys) EXPECT_FALSE(has(s, k)) << k;
}

TEST_F(StoreEviction, HotRunShorterThanTheBoundIsNeverEvicted) {
  // Entries stored together tend to be hot together: 600 consecutive hot slots (fewer than
  // kClockSteps) must be passed, not evicted, as unbounded CLOCK would do.
  static_assert(Store::kClockSteps > 600);
  Store s(4096, kBig, 0);
  for (int k = 0; k < 4096; ++k) put(s, k, at(0), 600);
  for (int round = 0; round < 40; ++round) {
    for (int k = 0; k < 600; ++k) s.reference(find(s, k));  // hits between passes of the hand
    for (int j = 0; j < 500; ++j)
      ASSERT_NE(put(s, 10000 + round * 500 + j, at(1), 600), Store::kNone);
    for (int k = 0; k < 600; ++k) ASSERT_TRUE(has(s, k)) << "hot key " << k << " round " << round;
  }
  EXPECT_EQ(evictions_, 40u * 500);
}

TEST_F(StoreEviction, WorkPerInsertIsBoundedWhenEverythingIsHot) {
  constexpr int kN = 4096;
  Store s(kN, kBig, 0);
  for (int k = 0; k < kN; ++k) put(s, k, at(0), 600);
  std::vector<uint32_t> idx(kN);
  for (int k = 0; k < kN; ++k) idx[static_cast<size_t>(k)] = find(s, k);
  size_t worst = 0;
  for (int round = 0; round < 200; ++round) {
    // Worst case for CLOCK: every entry hit since the hand last passed.
    for (uint32_t i = 0; i < kN; ++i) s.reference(i);
    const uint64_t before = s.slotsExamined();
    const uint64_t ev = evictions_;
    ASSERT_NE(put(s, 10000 + round, at(1), 600), Store::kNone);
    worst = std::max<size_t>(worst, s.slotsExamined() - before);
    EXPECT_EQ(evictions_, ev + 1);
  }
  EXPECT_EQ(s.size(), static_cast<size_t>(kN));
  // A full CLOCK sweep would pass all 4096 entries; the bound is a small constant.
  EXPECT_LE(worst, Store::kPurgeWhenFull + Store::kClockSteps);
  EXPECT_GE(worst, Store::kClockSteps);  // and the test did exercise the bound
}

TEST_F(StoreEviction, WorkPerInsertIsBoundedWithDeadEntriesAround) {
  // Entries die at different times, so purge scans run (the lower bound does not skip them).
  constexpr int kN = 2048;
  Store s(kN, kBig, 30);
  std::mt19937 rng(11);
  size_t worst = 0;
  for (int k = 0; k < 20000; ++k) {
    const auto now = t0_ + milliseconds(100) * k;
    const uint64_t before = s.slotsExamined();
    ASSERT_NE(put(s, k, now, 1 + static_cast<uint32_t>(rng() % 120)), Store::kNone);
    worst = std::max<size_t>(worst, s.slotsExamined() - before);
    ASSERT_LE(s.size(), static_cast<size_t>(kN));
    if (k % 3 == 0) s.reference(find(s, k));
  }
  EXPECT_LE(worst, Store::kPurgeWhenFull + Store::kClockSteps);
}

TEST_F(StoreEviction, ByteBudgetPrefersDeadEntriesAndEvictsBounded) {
  Store s(64, 800, 0);
  for (int k = 0; k < 8; ++k) ASSERT_NE(put(s, k, at(0), k % 2 == 0 ? 10 : 600, 100), Store::kNone);
  ASSERT_EQ(s.bytes(), 800u);
  // 400 bytes at t=20: the four dead 100-byte entries make room, nothing live is evicted.
  ASSERT_NE(put(s, 50, at(20), 600, 400), Store::kNone);
  EXPECT_EQ(evictions_, 0u);
  EXPECT_EQ(s.bytes(), 800u);
  for (int k = 1; k < 8; k += 2) EXPECT_TRUE(has(s, k)) << k;
  // 300 more bytes: three live entries have to go (CLOCK), and the new one stays.
  ASSERT_NE(put(s, 51, at(20), 600, 300), Store::kNone);
  EXPECT_EQ(evictions_, 3u);
  EXPECT_LE(s.bytes(), 800u);
  EXPECT_TRUE(has(s, 51));
  // Larger than the whole budget: refused, nothing evicted for it.
  EXPECT_EQ(put(s, 52, at(20), 600, 801), Store::kNone);
  EXPECT_EQ(evictions_, 3u);
  EXPECT_FALSE(has(s, 52));
}

TEST_F(StoreEviction, ByteBudgetEvictionsAreBounded) {
  Store s(64, 64 * 50, 0);
  for (int k = 0; k < 64; ++k) ASSERT_NE(put(s, k, at(0), 600, 50), Store::kNone);
  // Needs 20 evictions, more than kMaxEvictionsForBytes: refused after a bounded amount of work.
  const uint64_t before = s.slotsExamined();
  EXPECT_EQ(put(s, 99, at(1), 600, 1000), Store::kNone);
  EXPECT_LE(s.slotsExamined() - before,
            2 * Store::kPurgeWhenFull + Store::kClockSteps * (1 + Store::kMaxEvictionsForBytes));
  EXPECT_FALSE(has(s, 99));
  EXPECT_LE(s.bytes(), s.byteBudget());
  EXPECT_LE(evictions_, 1 + Store::kMaxEvictionsForBytes);
  // Within the bound it works: the refused insert left 2750 bytes; 600 more need three
  // 50-byte victims.
  ASSERT_EQ(s.bytes(), 2750u);
  evictions_ = 0;
  ASSERT_NE(put(s, 100, at(1), 600, 600), Store::kNone);
  EXPECT_EQ(evictions_, 3u);
  EXPECT_TRUE(has(s, 100));
  EXPECT_LE(s.bytes(), s.byteBudget());
}

TEST_F(StoreEviction, ReplacingADeadEntryUnderBytePressureKeepsIt) {
  Store s(8, 400, 0);
  const uint32_t a = put(s, 1, at(0), 10, 100);  // dead at t=20
  for (int k = 2; k <= 4; ++k) put(s, k, at(0), 600, 100);
  ASSERT_EQ(s.bytes(), 400u);
  // The replacement of key 1 is bigger; the purge that makes room must not take key 1's slot.
  const uint32_t b = put(s, 1, at(20), 600, 200);
  EXPECT_EQ(b, a);
  EXPECT_TRUE(has(s, 1));
  EXPECT_LE(s.bytes(), 400u);
  EXPECT_FALSE(s.isDead(s.entry(b), at(20)));
}

TEST_F(StoreEviction, ReplacementKeepsTheClockBit) {
  Store s(4, kBig, 0);
  for (int k = 0; k < 4; ++k) put(s, k, at(0), 600);
  s.reference(find(s, 2));
  put(s, 2, at(1), 600);
  EXPECT_TRUE(s.referenced(find(s, 2)));
  for (int k = 10; k < 13; ++k) put(s, k, at(2), 600);
  EXPECT_TRUE(has(s, 2));
}

TEST_F(StoreEviction, DeadHintIsExactAfterVerification) {
  Store s(64, kBig, 0);
  put(s, 1, t0_ + milliseconds(500), 10);  // dead from t0 + 10.5 s exactly
  // The slot word says "dies during second 10"; the entry itself is checked before erasing.
  EXPECT_EQ(s.purge(t0_ + milliseconds(10499), 64), 0u);
  EXPECT_TRUE(has(s, 1));
  EXPECT_EQ(s.purge(t0_ + milliseconds(10500), 64), 1u);
  EXPECT_FALSE(has(s, 1));
  EXPECT_EQ(s.size(), 0u);
}

TEST_F(StoreEviction, SkippedScansNeverHideDeadEntries) {
  // Model check of the earliest-death lower bound: after a purge covering the whole table, no
  // dead entry may remain, whatever the history of inserts, erases, hits and time.
  constexpr size_t kCap = 300;
  for (uint32_t stale : {0u, 7u}) {
    Store s(kCap, kBig, stale);
    std::mt19937 rng(99 + stale);
    std::map<int, bool> present;
    int64_t t = 0;
    for (int step = 0; step < 6000; ++step) {
      t += static_cast<int64_t>(rng() % 3);
      const int k = static_cast<int>(rng() % 700);
      const uint32_t r = rng() % 10;
      if (r == 0 && has(s, k)) {
        s.erase(find(s, k));
      } else if (r == 1 && has(s, k)) {
        s.reference(find(s, k));
      } else {
        put(s, k, at(t), 1 + static_cast<uint32_t>(rng() % 60));
      }
      if (step % 7 == 0) {
        s.purge(at(t), kCap);
        size_t live = 0;
        for (int key = 0; key < 700; ++key) {
          const uint32_t i = find(s, key);
          if (i == Store::kNone) continue;
          ++live;
          ASSERT_FALSE(s.isDead(s.entry(i), at(t))) << "step " << step << " key " << key;
        }
        ASSERT_EQ(live, s.size());
      }
    }
  }
}

TEST_F(StoreEviction, EntryIsOneCacheLineAndTablesDoNotGrowPerEntry) {
  EXPECT_EQ(sizeof(Entry), 64u);
  EXPECT_EQ(alignof(Entry), 64u);
  Store s(1024, kBig, 0);
  for (int k = 0; k < 1024; ++k) put(s, k, at(0), 600);
  // Entry (64) + slot word (4) + index (2 × 8 at load ≤ 1/2) per entry, plus the packets.
  const size_t tables = s.memoryBytes() - s.bytes() - sizeof(Store);
  EXPECT_LE(tables, 1024u * (64 + 4 + 16));
}

}  // namespace
}  // namespace nld::cache::testing
