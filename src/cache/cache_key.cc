#include "cache/cache_key.h"

namespace nld::cache {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3ull;

inline uint64_t fnvByte(uint64_t h, uint8_t b) { return (h ^ b) * kFnvPrime; }

// murmur3 fmix64: full avalanche of the FNV state.
inline uint64_t finalize(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t hashKey(uint64_t seed, const KeyView& key) {
  uint64_t h = seed;
  const uint8_t* p = key.name->data.data();
  for (size_t i = 0; i < key.name->len; ++i) h = fnvByte(h, dns::asciiLower(p[i]));
  h = fnvByte(h, static_cast<uint8_t>(key.qtype >> 8));
  h = fnvByte(h, static_cast<uint8_t>(key.qtype));
  h = fnvByte(h, static_cast<uint8_t>(key.qclass >> 8));
  h = fnvByte(h, static_cast<uint8_t>(key.qclass));
  h = fnvByte(h, static_cast<uint8_t>((key.dnssec_ok ? 1 : 0) | (key.checking_disabled ? 2 : 0)));
  return finalize(h);
}

bool wireEqualsIgnoreCase(const uint8_t* a, const uint8_t* b, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (a[i] != b[i] && dns::asciiLower(a[i]) != dns::asciiLower(b[i])) return false;
  }
  return true;
}

}  // namespace nld::cache
