#pragma once
// Randomness for DNS query IDs and source ports (RFC 5452). A per-thread ChaCha-quality stream
// is overkill here; we use a per-thread xoshiro256** generator seeded from getrandom(2), which
// is unpredictable to an off-path attacker that cannot observe its outputs in bulk, and reseed
// it periodically from the kernel.
#include <cstdint>

namespace nld {

/// Returns 64 random bits. Thread-safe (state is thread_local). Never blocks after first use.
uint64_t random64();

/// Uniform integer in [0, bound). bound must be > 0.
uint64_t randomBelow(uint64_t bound);

/// Fills buf with kernel randomness (getrandom). Used for seeding and secrets.
void secureRandomBytes(void* buf, unsigned long len);

}  // namespace nld
