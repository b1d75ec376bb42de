#pragma once
// Address, zone and host:port helpers for the Corefile parser. Internal to nld::config.
// Error-returning (std::nullopt / message) rather than throwing: callers attach file:line.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// Go net.SplitHostPort: "host:port", "[v6]:port". Returns an error message on failure.
std::optional<std::string> splitHostPort(std::string_view s, std::string* host, std::string* port);

/// Makes `name` fully qualified and lower-case after checking it is a plausible domain name.
/// Returns an error message in *error on failure.
std::optional<std::string> normalizeName(std::string_view name, std::string* error);

/// If `s` is a CIDR ("10.0.0.0/8", "fd00::/8"), returns the reverse zones covering it (prefixes
/// not on an octet/nibble boundary expand to several zones). std::nullopt if `s` is not a
/// CIDR at all; throws nothing: a malformed CIDR yields an error message in *error and an empty
/// vector.
std::optional<std::vector<std::string>> reverseZonesForCidr(std::string_view s, std::string* error);

/// Normalizes a zone as CoreDNS's plugin.Host(...).NormalizeExact() does: CIDRs expand to
/// reverse zones, names become fqdn lower-case. Empty vector + *error on failure.
std::vector<std::string> normalizeZones(std::string_view s, std::string* error);

/// Addresses of `iface` from getifaddrs(3); IPv6 link-local ones get "%iface".
/// std::nullopt if there is no such interface.
std::optional<std::vector<std::string>> systemInterfaceAddresses(const std::string& iface);

}  // namespace nld::config::detail
