#pragma once
// Configuration of one DNS response cache (the Corefile `cache` stanza), already
// validated by the config parser. Plain data; copied into each Cache.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "dns/name.h"

namespace nld::cache {

/// The `cache` plugin's defaults (CoreDNS cache README), in one place: the Corefile layer
/// (config::CacheConfig) and Settings both start from these.
namespace defaults {
inline constexpr size_t kCapacity = 10000;  // per store (success, denial)
inline constexpr uint32_t kSuccessMaxTtl = 3600, kDenialMaxTtl = 1800, kMinTtl = 5;
inline constexpr uint32_t kServfailTtl = 5;
inline constexpr uint32_t kPrefetchWindowS = 60, kPrefetchPercentage = 10;
}  // namespace defaults

struct Settings {
  /// Configured capacities (entries) of the two stores for the whole server block; each worker
  /// partition gets its share (see Cache::partitionCapacity).
  size_t success_capacity = defaults::kCapacity, denial_capacity = defaults::kCapacity;
  uint32_t success_max_ttl = defaults::kSuccessMaxTtl, success_min_ttl = defaults::kMinTtl;
  uint32_t denial_max_ttl = defaults::kDenialMaxTtl, denial_min_ttl = defaults::kMinTtl;
  /// How long an upstream SERVFAIL/NOTIMP is cached; 0 disables (RFC 2308 §7: at most 5 min).
  uint32_t servfail_ttl = defaults::kServfailTtl;
  /// `prefetch AMOUNT [DURATION [PCT%]]`; AMOUNT 0 disables prefetching.
  uint32_t prefetch_amount = 0;
  uint32_t prefetch_window_s = defaults::kPrefetchWindowS;
  uint32_t prefetch_percentage = defaults::kPrefetchPercentage;
  /// `serve_stale [DURATION [immediate|verify]]`; unset (or 0) disables serving stale answers.
  std::optional<uint32_t> serve_stale_s;
  bool serve_stale_verify = false;
  /// `keepttl`: hits carry the records' original TTLs instead of the remaining time.
  bool keepttl = false;
  /// `disable success|denial ZONES`: names at or below these zones are not stored.
  std::vector<dns::Name> disable_success, disable_denial;
  /// Number of worker partitions the configured capacities are divided among.
  size_t partitions = 1;
  /// Byte budget for stored packets, per entry of capacity (so per store:
  /// partition capacity × this).
  size_t bytes_per_entry_budget = 1024;
};

}  // namespace nld::cache
