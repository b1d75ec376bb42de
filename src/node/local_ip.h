#pragma once
// The value types the host side shares with the command line: one -localip address and the
// -firewall choice. In their own header so that the interface, firewall and host-setup headers
// do not include the whole command line (node/options.h) for them.
//
// Thread affinity: plain values and pure functions; any thread.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace nld::node {

/// One parsed -localip element.
struct LocalIp {
  std::string text;                 ///< as given on the command line (used in rules/templates)
  int family = 0;                   ///< AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  ///< network order; first 4 bytes for IPv4
  /// Canonical text (inet_ntop), e.g. "fd00::a" for "fd00:0::a".
  std::string canonical() const;
  /// Prefix length of a host route: 32 or 128.
  int hostPrefix() const { return family == kInet6 ? 128 : 32; }
  static constexpr int kInet6 = 10;  // AF_INET6 on Linux; checked by a static_assert in the .cc
};

/// -firewall: which packet-filter interface carries the NOTRACK/ACCEPT rules.
enum class Firewall { kIptables, kNftables, kAuto };

/// "iptables", "nftables" or "auto".
std::string_view firewallName(Firewall f);

/// Parses one IP address (IPv4 dotted quad or IPv6 text, no zone). Returns false if invalid.
bool parseLocalIp(std::string_view text, LocalIp* out);

}  // namespace nld::node
