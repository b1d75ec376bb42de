#pragma once
// The cache key: lower-cased QNAME, QTYPE, QCLASS, DO and CD (QCLASS as CoreDNS HEAD,
// coredns/coredns#8272). Hashing and comparison run on the hot path and never allocate.
//
// The hash is hand-written (dns::Name::hashLower: 8 name bytes per multiply, lower-cased with
// SWAR on the fly; then the type/class/flags and a murmur3 finaliser so the low bits used for
// bucket selection are well mixed) because it must lower-case while hashing and no library hash
// does that without a copy. (FNV-1a one byte at a time cost ~340 instructions for a 27-byte
// key, 17 % of a cache hit.) A per-cache
// random seed replaces the FNV offset basis so precomputed collision sets do not carry over
// between processes; full key equality is verified on every lookup, so collisions cost time,
// never correctness.
#include <cstddef>
#include <cstdint>

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
uint64_t hashKey(uint64_t seed, const KeyView& key);

}  // namespace nld::cache
