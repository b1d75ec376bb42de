#include "cache/cache_key.h"

namespace nld::cache {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3ull;

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
  // The name 8 bytes per step, lower-cased with SWAR (dns::Name::hashLower); the rest of the key
  // in one more step.
  const uint64_t rest = (uint64_t{key.qtype} << 16) | key.qclass |
                        (uint64_t{key.dnssec_ok ? 1u : 0u} << 32) |
                        (uint64_t{key.checking_disabled ? 1u : 0u} << 33);
  return finalize(key.name->hashLower(seed) ^ (rest * kFnvPrime));
}

}  // namespace nld::cache
