#pragma once
// Settings of one `forward` stanza as the forwarder needs them. The Corefile layer converts its
// ForwardConfig into this; nothing here parses text.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dns/name.h"

namespace nld::upstream {

/// One upstream server. `ip` is a literal IPv4 or IPv6 address (no brackets, no zone).
struct Upstream {
  std::string ip;
  uint16_t port = 53;
  std::string label;  // "ip:port" as used in metric labels (`to`)
};

/// The `forward` plugin's defaults (CoreDNS forward README), in one place: the Corefile layer
/// (config::ForwardConfig) and Settings both start from these.
namespace defaults {
inline constexpr std::chrono::seconds kExpire{10};
inline constexpr uint32_t kMaxFails = 2;
inline constexpr std::chrono::milliseconds kHealthCheck{500};
}  // namespace defaults

/// The stanza's options. Defaults are CoreDNS's (forward README) except max_connect_attempts.
/// Upper bound of Settings::udp_queries_per_socket (the per-socket slot table is this big).
inline constexpr uint32_t kMaxUdpQueriesPerSocket = 64;

struct Settings {
  enum class Policy : uint8_t { kRandom, kRoundRobin, kSequential };

  std::vector<Upstream> to;
  bool force_tcp = false;
  bool prefer_udp = false;
  std::chrono::seconds expire =
      defaults::kExpire;  // idle TCP connections are closed after this; UDP sockets
                          // take no new queries after this age
  /// Upstream UDP queries one socket (one random source port) carries before it is retired
  /// (1..kMaxUdpQueriesPerSocket). Not a Corefile option: see forwarder.h.
  uint32_t udp_queries_per_socket = 64;
  uint32_t max_fails =
      defaults::kMaxFails;  // down when consecutive failures > max_fails; 0 = never down
  /// 0 → default cap 2 × upstreams (as CoreDNS HEAD, coredns/coredns#8365; v1.13: unbounded).
  uint32_t max_connect_attempts = 0;
  Policy policy = Policy::kRandom;
  std::chrono::milliseconds health_check = defaults::kHealthCheck;
  bool health_check_rd = true;
  dns::Name health_check_name;  // len 0 (unset) means the root
  uint32_t max_concurrent = 0;  // 0 = unlimited
  bool failfast_all_unhealthy = false;
  std::chrono::milliseconds attempt_timeout{2000};
  std::chrono::milliseconds overall_timeout{5000};
  /// Read/write/connect timeout of one health probe (CoreDNS: 1 s).
  std::chrono::milliseconds health_check_timeout{1000};
};

std::string_view policyName(Settings::Policy p);

}  // namespace nld::upstream
