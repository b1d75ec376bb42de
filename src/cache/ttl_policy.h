#pragma once
// Where an upstream response is cached and for how long (CoreDNS cache plugin clamps, made
// RFC 2308-correct). Pure functions: no state, any thread.
#include <cstdint>

#include "cache/settings.h"
#include "dns/message.h"

namespace nld::cache {

enum class Placement : uint8_t { kNone, kSuccess, kDenial };

struct Decision {
  Placement placement = Placement::kNone;
  uint32_t duration = 0;  // seconds; 0 with Placement::kNone
};

/// TTL used when a response carries no records, or for types whose records say nothing about
/// freshness (CoreDNS `MinimalDefaultTTL`).
inline constexpr uint32_t kDefaultShortTtl = 5;

/// Decides placement and duration for a response of type `type` (dns::classify(r)):
/// - NoError: msgTTL = minimum RR TTL (5 s without records), clamped to
///   [success_min_ttl, success_max_ttl]. Unlike CoreDNS v1.13.2, msgTTL is not capped at 3600
///   first, so a configured maximum above one hour takes effect.
/// - Delegation: msgTTL = 5 s (CoreDNS: only NoError/NameError/NoData use record TTLs), clamped
///   like NoError.
/// - NameError / NoData: RFC 2308 §5 negative TTL = min(minimum RR TTL (which includes the SOA
///   RR's TTL), SOA MINIMUM), clamped to [denial_min_ttl, denial_max_ttl]. CoreDNS ignores
///   MINIMUM; for RFC-compliant authoritatives the result is the same.
/// - ServerError: servfail_ttl (0 = not cached).
/// - OtherError, Meta, Update: not cached.
/// TTLs with the top bit set count as 0 (RFC 2181 §8). TC=1 and question checks are the
/// caller's job.
Decision decide(const Settings& s, const dns::Response& r, dns::ResponseType type);

/// Caps every RR TTL of the response in `pkt` (described by `r`) at `duration`, so a relayed
/// miss carries the same TTLs a hit at elapsed 0 would (min(original, duration)); TTLs with the
/// top bit set become 0. The OPT RR is not in `r.rrs` and is left alone. No allocation.
/// Use on the client-bound copy after Cache::insert returned `duration` > 0. Any thread.
void capTtls(dns::MutableBytes pkt, const dns::Response& r, uint32_t duration);

/// min(max(ttl, lo), hi) — CoreDNS `computeTTL`; hi wins if lo > hi.
constexpr uint32_t clampTtl(uint32_t ttl, uint32_t lo, uint32_t hi) {
  uint32_t t = ttl < lo ? lo : ttl;
  return t > hi ? hi : t;
}

}  // namespace nld::cache
