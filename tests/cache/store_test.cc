// The store's open-addressing index (against a std::map model under random churn) and the key
// hash.
#include "cache/store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cache/cache_key.h"
#include "store_entry.h"
#include "test_packets.h"

namespace nld::cache::testing {
namespace {

Entry makeEntry(const dns::Name& n, uint64_t hash, Clock::time_point now, uint32_t duration) {
  return makeStoreEntry(n, hash, now, duration);
}

TEST(StoreIndex, RandomChurnMatchesModel) {
  const Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  Store store(64, 1 << 20, 0);
  std::map<int, uint32_t> model;  // key number -> entry index
  std::mt19937 rng(12345);
  std::vector<dns::Name> names;
  for (int i = 0; i < 200; ++i) {
    // Appended rather than `"k" + std::to_string(i)`: GCC 12 -O2 warns falsely (-Wrestrict).
    std::string text = std::to_string(i);
    text.insert(0, 1, 'k');
    names.push_back(name(text + ".test"));
  }
  // Deliberately poor hash (16 distinct values) so probe chains collide and wrap around.
  auto hash_of = [](int k) { return static_cast<uint64_t>(k % 16) * 0x9E3779B97F4A7C15ull; };
  for (int step = 0; step < 20000; ++step) {
    int k = static_cast<int>(rng() % names.size());
    KeyView key{&names[static_cast<size_t>(k)], dns::type::A, dns::cls::IN, false, false};
    uint32_t found = store.find(hash_of(k), key);
    auto it = model.find(k);
    ASSERT_EQ(found != Store::kNone, it != model.end()) << "step " << step << " key " << k;
    if (it != model.end()) {
      ASSERT_EQ(found, it->second);
    }
    if (rng() % 3 == 0 && found != Store::kNone) {
      store.erase(found);
      model.erase(it);
    } else {
      uint64_t evictions = 0;
      uint32_t idx = store.put(makeEntry(names[static_cast<size_t>(k)], hash_of(k), now, 100),
                               found, now, evictions);
      ASSERT_NE(idx, Store::kNone);
      if (evictions > 0) {
        // Rebuild the model from the store: evicted keys are no longer findable.
        for (auto m = model.begin(); m != model.end();) {
          KeyView mk{&names[static_cast<size_t>(m->first)], dns::type::A, dns::cls::IN, false,
                     false};
          if (store.find(hash_of(m->first), mk) == Store::kNone) {
            m = model.erase(m);
          } else {
            ++m;
          }
        }
      }
      model[k] = idx;
    }
    ASSERT_EQ(store.size(), model.size());
    ASSERT_LE(store.size(), store.capacity());
  }
}

TEST(StoreIndex, ByteAccountingReturnsToZero) {
  const Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  Store store(8, 4096, 0);
  dns::Name a = name("a.test"), b = name("b.test");
  uint64_t ev = 0;
  uint32_t ia = store.put(makeEntry(a, 1, now, 10), Store::kNone, now, ev);
  uint32_t ib = store.put(makeEntry(b, 2, now, 10), Store::kNone, now, ev);
  EXPECT_EQ(store.bytes(), 2 * (12 + 8 + 4u));
  store.erase(ia);
  store.erase(ib);
  EXPECT_EQ(store.bytes(), 0u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(StoreIndex, ZeroCapacityRejected) { EXPECT_THROW(Store(0, 1024, 0), std::invalid_argument); }

TEST(CacheKey, HashIgnoresCaseAndSeesEveryField) {
  dns::Name lower = name("www.example.org"), upper = name("WWW.Example.ORG");
  KeyView k{&lower, dns::type::A, dns::cls::IN, false, false};
  KeyView ku{&upper, dns::type::A, dns::cls::IN, false, false};
  EXPECT_EQ(hashKey(7, k), hashKey(7, ku));
  EXPECT_NE(hashKey(7, k), hashKey(8, k));  // seeded
  KeyView v = k;
  v.qtype = dns::type::AAAA;
  EXPECT_NE(hashKey(7, k), hashKey(7, v));
  v = k;
  v.qclass = dns::cls::CH;
  EXPECT_NE(hashKey(7, k), hashKey(7, v));
  v = k;
  v.dnssec_ok = true;
  EXPECT_NE(hashKey(7, k), hashKey(7, v));
  v = k;
  v.checking_disabled = true;
  EXPECT_NE(hashKey(7, k), hashKey(7, v));
  dns::Name other = name("www.example.com");
  v = k;
  v.name = &other;
  EXPECT_NE(hashKey(7, k), hashKey(7, v));
}

// The pipeline computes one hash per query (dns::keyHash) and hands it to the cache and the
// forwarder. It must agree with the cache's own key.
TEST(CacheKey, QueryKeyHashIsTheCacheKeyWithTheProcessSeed) {
  dns::Query q;
  q.question.name = name("WWW.example.org");
  q.question.qtype = dns::type::A;
  q.question.qclass = dns::cls::IN;
  const dns::Name lower = name("www.example.org");
  KeyView k{&lower, dns::type::A, dns::cls::IN, false, false};
  EXPECT_EQ(dns::keyHash(q), hashKey(dns::processKeySeed(), k));
  q.edns.dnssec_ok = true;  // DO without an OPT record does not count
  EXPECT_EQ(dns::keyHash(q), hashKey(dns::processKeySeed(), k));
  q.edns.present = true;
  k.dnssec_ok = true;
  EXPECT_EQ(dns::keyHash(q), hashKey(dns::processKeySeed(), k));
}

TEST(CacheKey, WireEqualsIgnoreCase) {
  dns::Name a = name("AbC.org"), b = name("aBc.ORG"), c = name("abd.org");
  EXPECT_TRUE(dns::wireEqualsIgnoreCase(a.data.data(), b.data.data(), a.len));
  EXPECT_FALSE(dns::wireEqualsIgnoreCase(a.data.data(), c.data.data(), a.len));
}

}  // namespace
}  // namespace nld::cache::testing
