#pragma once
// Address, zone and host:port helpers for the Corefile parser. Internal to nld::config.
// Failures return nld::Result (the message) rather than throwing: callers attach file:line.
// std::optional without a message means "not this kind of thing" (not an IP, not a number).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nld::config::detail {

/// Canonical text of an IP literal (inet_ntop form), keeping a "%zone" suffix if present and
/// allowed. std::nullopt if `s` is not an IPv4/IPv6 literal.
std::optional<std::string> canonicalIp(std::string_view s, bool allow_zone = true);

/// True if `ip` (canonical, maybe with zone) is IPv6.
bool isIpv6(std::string_view ip);

/// Parses a decimal port 0..65535 (no sign, no spaces).
std::optional<uint16_t> parsePort(std::string_view s);

/// Parses a non-negative decimal integer that fits in uint64 (no sign, no spaces).
std::optional<uint64_t> parseUnsigned(std::string_view s);

/// Parses a decimal integer with optional sign (Go strconv.Atoi on 64-bit).
std::optional<int64_t> parseSigned(std::string_view s);

struct HostPort {
  std::string host;
  std::string port;
};

/// Go net.SplitHostPort: "host:port", "[v6]:port"; the error is Go's message.
Result<HostPort> splitHostPort(std::string_view s);

/// Makes `name` fully qualified and lower-case after checking it is a plausible domain name.
Result<std::string> normalizeName(std::string_view name);

/// If `s` is a CIDR ("10.0.0.0/8", "fd00::/8"), returns the reverse zones covering it (prefixes
/// not on an octet/nibble boundary expand to several zones), or why the CIDR is malformed.
/// std::nullopt if `s` is not a CIDR at all (no '/').
std::optional<Result<std::vector<std::string>>> reverseZonesForCidr(std::string_view s);

/// Normalizes a zone as CoreDNS's plugin.Host(...).NormalizeExact() does: CIDRs expand to
/// reverse zones, names become fqdn lower-case.
Result<std::vector<std::string>> normalizeZones(std::string_view s);

/// Addresses of `iface` from getifaddrs(3); IPv6 link-local ones get "%iface".
/// std::nullopt if there is no such interface.
std::optional<std::vector<std::string>> systemInterfaceAddresses(const std::string& iface);

}  // namespace nld::config::detail
