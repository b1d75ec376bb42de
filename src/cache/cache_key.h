#pragma once
// The cache key: lower-cased QNAME, QTYPE, QCLASS, DO and CD. Its hash is dns::keyHash (shared
// with the forwarder's coalescing, so a miss hashes the name once); comparison runs on the hot
// path and never allocates.
#include <cstddef>
#include <cstdint>

#include "dns/key_hash.h"
#include "dns/name.h"

namespace nld::cache {

/// A borrowed view of a lookup key. `name` is the client's QNAME in any case.
struct KeyView {
  const dns::Name* name = nullptr;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool dnssec_ok = false;
  bool checking_disabled = false;
};

/// 64-bit hash of the key with `seed`. Thread-safe (pure).
inline uint64_t hashKey(uint64_t seed, const KeyView& key) {
  return dns::keyHash(seed, *key.name, key.qtype, key.qclass, key.dnssec_ok, key.checking_disabled);
}

}  // namespace nld::cache
