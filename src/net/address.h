#pragma once
// net::SockAddr: the process's one IP socket address type, and makeSockAddr/parseSockAddr, its
// one parser of IP literals. Listeners, upstreams, the ovsdb client, the metrics/health server
// and the node agent's probes all turn "ip" + port into a sockaddr here, so they accept the same
// spellings (IPv4 dotted quad, IPv6 with an optional %zone) and print them alike.
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nld::net {

/// A socket address that holds IPv4 or IPv6.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  /// AF_INET or AF_INET6 (AF_UNSPEC when empty): the family to create a socket with.
  int af() const { return storage.ss_family; }
  /// 1 for IPv4 (including v4-mapped IPv6), 2 for IPv6: CoreDNS's `family` label.
  int family() const;
  std::string ip() const;
  uint16_t port() const;
  std::string toString() const;  // "1.2.3.4:53", "[::1]:53"
  /// The address bytes in network order: 4 for IPv4, 16 for IPv6 (a v4-mapped IPv6 address
  /// stays 16); the size is returned, the rest of `out` is zero.
  size_t addressBytes(std::array<uint8_t, 16>& out) const;
};

/// Parses an IP literal (IPv4 or IPv6, optional %zone; an unknown zone name gives scope 0) and
/// port. std::nullopt if `ip` is not an IP literal.
std::optional<SockAddr> parseSockAddr(std::string_view ip, uint16_t port);

/// parseSockAddr that throws std::runtime_error("not an IP address: '<ip>'").
SockAddr makeSockAddr(const std::string& ip, uint16_t port);

/// A bare IP literal (no %zone) with port 0: the parser for code that wants the address itself
/// (addressBytes, af) rather than somewhere to connect to. std::nullopt if not one.
std::optional<SockAddr> parseIp(std::string_view ip);

/// True if `ip` is an IPv4 or IPv6 literal (no zone).
bool isIpLiteral(std::string_view ip);

/// True if `ip` is the wildcard listener address ("" / "0.0.0.0" / "::").
bool isWildcard(const std::string& ip);

}  // namespace nld::net
