#include "dns/key_hash.h"

#include "common/hash.h"
#include "common/random.h"

namespace nld::dns {

uint64_t keyHash(uint64_t seed, const Name& name, uint16_t qtype, uint16_t qclass, bool dnssec_ok,
                 bool checking_disabled) {
  // The name 8 bytes per step, lower-cased with SWAR (Name::hashLower); the rest of the key in
  // one more step.
  const uint64_t rest = (uint64_t{qtype} << 16) | qclass | (uint64_t{dnssec_ok ? 1u : 0u} << 32) |
                        (uint64_t{checking_disabled ? 1u : 0u} << 33);
  return mixFinal(name.hashLower(seed) ^ (rest * kFnvPrime));
}

uint64_t processKeySeed() {
  static const uint64_t kSeed = [] {
    uint64_t s = 0;
    secureRandomBytes(&s, sizeof s);
    return s;
  }();
  return kSeed;
}

}  // namespace nld::dns
