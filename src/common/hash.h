#pragma once
// The project's one 64-bit hash toolkit: FNV-1a steps and one avalanche finaliser. Used by the
// DNS key hash (per-process seed) and by the OVN fail-over ranking, which must give the same
// numbers on every node and in every version (do not change the constants).
#include <cstdint>

namespace nld {

inline constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
inline constexpr uint64_t kFnvPrime = 1099511628211ULL;

/// One FNV-1a step over a byte.
constexpr uint64_t fnv1aStep(uint64_t h, unsigned char c) { return (h ^ c) * kFnvPrime; }

/// The splitmix64 finaliser: every input bit flips about half the output bits, so FNV's weak
/// low bits are spread before a value is reduced to a bucket or compared.
constexpr uint64_t mixFinal(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

}  // namespace nld
