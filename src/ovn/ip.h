#pragma once
// Small IP helpers for the reconciler (family detection, CIDR containment, canonical text).
// Thread affinity: pure functions.
#include <optional>
#include <string>

namespace nld::ovn {

/// 4 or 6 for a valid IPv4/IPv6 literal, 0 otherwise.
int ipFamily(const std::string& ip);

/// The canonical text of an IP literal (inet_ntop form, e.g. "fd00::a" for "fd00:0::A"),
/// or nullopt if it is not an IP.
std::optional<std::string> canonicalIp(const std::string& ip);

/// True if `ip` lies inside `cidr_or_ip` ("10.0.0.0/8", "10.1.2.3", "fd00::/64"). Different
/// families or malformed input → false.
bool ipInCidr(const std::string& ip, const std::string& cidr_or_ip);

}  // namespace nld::ovn
