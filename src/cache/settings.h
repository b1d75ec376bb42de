#pragma once
// Configuration of one DNS response cache (the Corefile `cache` stanza), already
// validated by the config parser. Plain data; copied into each Cache.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "dns/name.h"

namespace nld::cache {

struct Settings {
  /// Configured capacities (entries) of the two stores for the whole server block; each worker
  /// partition gets its share (see Cache::partitionCapacity).
  size_t success_capacity = 10000, denial_capacity = 10000;
  uint32_t success_max_ttl = 3600, success_min_ttl = 5, denial_max_ttl = 1800, denial_min_ttl = 5;
  /// How long an upstream SERVFAIL/NOTIMP is cached; 0 disables (RFC 2308 §7: at most 5 min).
  uint32_t servfail_ttl = 5;
  /// `prefetch AMOUNT [DURATION [PCT%]]`; AMOUNT 0 disables prefetching.
  uint32_t prefetch_amount = 0;
  uint32_t prefetch_window_s = 60;
  uint32_t prefetch_percentage = 10;
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
