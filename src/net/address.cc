#include "net/address.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <cstring>
#include <stdexcept>

#include "fmt/format.h"

namespace nld::net {

int SockAddr::family() const {
  if (storage.ss_family == AF_INET) return 1;
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ? 1 : 2;
}

std::string SockAddr::ip() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
  } else if (storage.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
    }
  }
  return buf;
}

uint16_t SockAddr::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

std::string SockAddr::toString() const {
  std::string i = ip();
  if (i.find(':') != std::string::npos) return fmt::format("[{}]:{}", i, port());
  return fmt::format("{}:{}", i, port());
}

size_t SockAddr::addressBytes(std::array<uint8_t, 16>& out) const {
  out.fill(0);
  if (storage.ss_family == AF_INET) {
    std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, 4);
    return 4;
  }
  if (storage.ss_family == AF_INET6) {
    std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, 16);
    return 16;
  }
  return 0;
}

std::optional<SockAddr> parseSockAddr(std::string_view text, uint16_t port) {
  SockAddr a;
  std::string ip(text);
  std::string zone;
  if (auto pct = ip.find('%'); pct != std::string::npos) {
    zone = ip.substr(pct + 1);
    ip.resize(pct);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    if (!zone.empty()) s6->sin6_scope_id = if_nametoindex(zone.c_str());
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

SockAddr makeSockAddr(const std::string& ip, uint16_t port) {
  if (auto a = parseSockAddr(ip, port)) return *a;
  // Exception: callers pass addresses already validated (flags, Corefile) or literals, so a bad
  // one is a bug; parseSockAddr is the non-throwing form for untrusted text.
  throw std::runtime_error(fmt::format("not an IP address: '{}'", ip));
}

std::optional<SockAddr> parseIp(std::string_view ip) {
  if (ip.find('%') != std::string_view::npos) return std::nullopt;
  return parseSockAddr(ip, 0);
}

bool isIpLiteral(std::string_view ip) { return parseIp(ip).has_value(); }

bool isWildcard(const std::string& ip) { return ip.empty() || ip == "0.0.0.0" || ip == "::"; }

}  // namespace nld::net
