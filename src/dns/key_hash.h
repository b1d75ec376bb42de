#pragma once
// The hash of a query's key: lower-cased QNAME, QTYPE, QCLASS, DO and CD — the key under which
// the cache stores an answer (QCLASS as CoreDNS HEAD, coredns/coredns#8272) and under which the
// forwarder coalesces identical in-flight questions. The two keys are the same on purpose, so a
// miss hashes the name once: the pipeline computes keyHash(q) and hands the value to the cache
// lookup, the forwarder and the cache insert.
//
// Hand-written (dns::Name::hashLower: 8 name bytes per multiply, lower-cased with SWAR on the
// fly; then type/class/flags and the splitmix64 finaliser of common/hash.h, so the low bits used
// for bucket selection are well mixed) because it must lower-case while hashing and no library hash
// does that without a copy. (FNV-1a one byte at a time cost ~340 instructions for a 27-byte key, 17
// % of a cache hit.) A random per-process seed replaces the FNV offset basis so precomputed
// collision sets do not carry over between processes; every user verifies full key equality on a
// match, so collisions cost time, never correctness.
//
// Thread affinity: none (the seed is set once, on first use, thread-safely).
#include <cstdint>

#include "dns/message.h"
#include "dns/name.h"

namespace nld::dns {

/// The key hash with an explicit seed (pure; for tests and benchmarks).
uint64_t keyHash(uint64_t seed, const Name& name, uint16_t qtype, uint16_t qclass, bool dnssec_ok,
                 bool checking_disabled);

/// This process's random seed (getrandom on first use).
uint64_t processKeySeed();

/// The key hash of a parsed query with the process seed: DO counts only with an OPT present.
inline uint64_t keyHash(const Query& q) {
  return keyHash(processKeySeed(), q.question.name, q.question.qtype, q.question.qclass,
                 q.edns.present && q.edns.dnssec_ok, q.header.cd());
}

}  // namespace nld::dns
