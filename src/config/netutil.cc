#include "config/netutil.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "net/address.h"

namespace nld::config::detail {

std::optional<std::string> canonicalIp(std::string_view s, bool allow_zone) {
  std::string addr(s);
  std::string zone;
  if (const size_t pct = addr.find('%'); pct != std::string::npos) {
    if (!allow_zone) return std::nullopt;
    zone = addr.substr(pct + 1);
    addr.resize(pct);
    if (zone.empty()) return std::nullopt;
  }
  if (addr.empty() || addr.size() > 45) return std::nullopt;
  const auto ip = net::parseIp(addr);
  if (!ip || (!zone.empty() && ip->af() != AF_INET6)) return std::nullopt;  // zones are IPv6's
  // inet_ntop, not SockAddr::ip(): a v4-mapped IPv6 address keeps its ::ffff: form here.
  std::array<uint8_t, 16> bytes{};
  ip->addressBytes(bytes);
  char buf[INET6_ADDRSTRLEN];
  if (!::inet_ntop(ip->af(), bytes.data(), buf, sizeof(buf))) return std::nullopt;
  std::string out(buf);
  if (!zone.empty()) out += "%" + zone;
  return out;
}

bool isIpv6(std::string_view ip) { return ip.find(':') != std::string_view::npos; }

std::optional<uint64_t> parseUnsigned(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::optional<int64_t> parseSigned(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.size() > 18) return std::nullopt;
  auto v = parseUnsigned(s);
  if (!v) return std::nullopt;
  const auto x = static_cast<int64_t>(*v);
  return neg ? -x : x;
}

std::optional<uint16_t> parsePort(std::string_view s) {
  if (s.size() > 5) return std::nullopt;
  auto v = parseUnsigned(s);
  if (!v || *v > 65535) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

Result<HostPort> splitHostPort(std::string_view s) {
  const std::string quoted = "address " + std::string(s);
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return fail(quoted + ": missing port in address");
  std::string_view h;
  if (!s.empty() && s.front() == '[') {
    const size_t end = s.find(']');
    if (end == std::string_view::npos) return fail(quoted + ": missing ']' in address");
    if (end + 1 == s.size()) return fail(quoted + ": missing port in address");
    if (end + 1 != colon) return fail(quoted + ": unexpected character after ']'");
    h = s.substr(1, end - 1);
  } else {
    h = s.substr(0, colon);
    if (h.find(':') != std::string_view::npos) {
      return fail(quoted + ": too many colons in address");
    }
  }
  if (h.find_first_of("[]") != std::string_view::npos) {
    return fail(quoted + ": unexpected '[' or ']' in address");
  }
  return HostPort{std::string(h), std::string(s.substr(colon + 1))};
}

Result<std::string> normalizeName(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '*' || c == '.';
    if (!ok) return fail("'" + std::string(name) + "' is not a valid domain name");
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (out.empty() || out == ".") return std::string(".");
  if (out.back() != '.') out += '.';
  // Labels 1..63 octets, whole name at most 255 octets in wire form.
  size_t start = 0;
  while (start < out.size()) {
    const size_t dot = out.find('.', start);
    const size_t len = dot - start;
    if (len == 0 || len > 63) return fail("'" + std::string(name) + "' is not a valid domain name");
    start = dot + 1;
  }
  if (out.size() + 1 > 255) {
    return fail("'" + std::string(name) + "' is too long (more than 255 octets)");
  }
  return out;
}

namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::optional<Result<std::vector<std::string>>> reverseZonesForCidr(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string bad = "'" + std::string(s) + "' is not a valid CIDR";
  auto ip = canonicalIp(s.substr(0, slash), false);
  auto prefix = parseUnsigned(s.substr(slash + 1));
  if (!ip || !prefix || s.size() - slash > 4) return fail(bad);
  std::vector<std::string> zones;
  if (!isIpv6(*ip)) {
    if (*prefix > 32) return fail(bad);
    std::array<uint8_t, 16> a{};
    net::parseIp(*ip)->addressBytes(a);  // *ip is a canonical IPv4 literal
    std::array<uint8_t, 4> b{};
    std::memcpy(b.data(), a.data(), 4);
    const unsigned p = static_cast<unsigned>(*prefix);
    const unsigned octets = (p + 7) / 8;    // round up to an octet boundary
    const unsigned extra = octets * 8 - p;  // host bits inside the last octet
    // Mask host bits.
    for (unsigned i = 0; i < 4; ++i) {
      const unsigned keep = p > i * 8 ? std::min(8u, p - i * 8) : 0u;
      const unsigned mask = keep == 0 ? 0u : (0xffu << (8 - keep)) & 0xffu;
      b[i] = static_cast<uint8_t>(b[i] & mask);
    }
    const unsigned count = 1u << extra;
    for (unsigned k = 0; k < count; ++k) {
      std::array<uint8_t, 4> c = b;
      if (octets > 0) c[octets - 1] = static_cast<uint8_t>(c[octets - 1] + k);
      std::string z;
      for (unsigned i = octets; i-- > 0;) z += std::to_string(c[i]) + ".";
      zones.push_back(z + "in-addr.arpa.");
    }
    return zones;
  }
  if (*prefix > 128) return fail(bad);
  std::array<uint8_t, 16> a{};
  net::parseIp(*ip)->addressBytes(a);  // *ip is a canonical IPv6 literal
  std::array<uint8_t, 32> nib{};
  for (unsigned i = 0; i < 16; ++i) {
    nib[2 * i] = static_cast<uint8_t>(a[i] >> 4);
    nib[2 * i + 1] = static_cast<uint8_t>(a[i] & 0x0f);
  }
  const unsigned p = static_cast<unsigned>(*prefix);
  const unsigned nibbles = (p + 3) / 4;
  const unsigned extra = nibbles * 4 - p;
  for (unsigned i = 0; i < 32; ++i) {
    const unsigned keep = p > i * 4 ? std::min(4u, p - i * 4) : 0u;
    const unsigned mask = keep == 0 ? 0u : (0xfu << (4 - keep)) & 0xfu;
    nib[i] = static_cast<uint8_t>(nib[i] & mask);
  }
  const unsigned count = 1u << extra;
  for (unsigned k = 0; k < count; ++k) {
    std::array<uint8_t, 32> c = nib;
    if (nibbles > 0) c[nibbles - 1] = static_cast<uint8_t>(c[nibbles - 1] + k);
    std::string z;
    for (unsigned i = nibbles; i-- > 0;) {
      z += kHex[c[i]];
      z += '.';
    }
    zones.push_back(z + "ip6.arpa.");
  }
  return zones;
}

Result<std::vector<std::string>> normalizeZones(std::string_view s) {
  if (auto rev = reverseZonesForCidr(s)) return std::move(*rev);
  auto n = normalizeName(s);
  if (!n) return fail(std::move(n).error());
  return std::vector<std::string>{std::move(*n)};
}

std::optional<std::vector<std::string>> systemInterfaceAddresses(const std::string& iface) {
  if (iface.empty() || iface.size() >= IF_NAMESIZE || ::if_nametoindex(iface.c_str()) == 0) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !i->ifa_name || iface != i->ifa_name) continue;
    char buf[INET6_ADDRSTRLEN];
    if (i->ifa_addr->sa_family == AF_INET) {
      sockaddr_in sin{};
      std::memcpy(&sin, i->ifa_addr, sizeof(sin));
      if (::inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof(buf))) out.emplace_back(buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, i->ifa_addr, sizeof(sin6));
      if (!::inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof(buf))) continue;
      std::string a(buf);
      const uint8_t b0 = sin6.sin6_addr.s6_addr[0];
      const uint8_t b1 = sin6.sin6_addr.s6_addr[1];
      const bool link_local_unicast = b0 == 0xfe && (b1 & 0xc0) == 0x80;
      const bool link_local_multicast = b0 == 0xff && (b1 & 0x0f) == 0x02;
      if (link_local_unicast || link_local_multicast) a += "%" + iface;
      out.push_back(std::move(a));
    }
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace nld::config::detail
