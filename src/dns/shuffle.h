#pragma once
// CoreDNS `loadbalance` (round_robin) on the wire: the order of a response's address records
// is shuffled on every answer, cached or not, so clients that take the first address spread
// over all of them.
//
// In place and allocation-free (it runs on the cache-hit path): within each section, the A
// records that share one owner name (the same owner bytes, usually the pointer 0xc00c) and
// class trade their TTL and RDATA among their slots, and so do the AAAA records; nothing else
// moves, so every compression pointer in the message stays valid. CoreDNS additionally moves
// CNAMEs before addresses and shuffles MX; answers from a recursive upstream already list the
// CNAME chain first, and MX records of different lengths cannot trade slots in place, so MX
// keeps its order (docs/operator-guide.md, where we differ).
#include <cstddef>
#include <cstdint>

#include "dns/name.h"

namespace nld::dns {

/// Random index in [0, bound) (bound > 0); a seam so tests can fix the permutation.
using RandomBelow = uint64_t (*)(uint64_t bound);

/// Shuffles the A and AAAA records of msg[0, len) as described above. Only NOERROR answers are
/// touched (CoreDNS leaves other rcodes alone). A message that does not parse is left as it
/// is. Returns the number of records that took part in a shuffle.
size_t shuffleAddressRecords(MutableBytes msg, size_t len, RandomBelow random_below);

}  // namespace nld::dns
