#include "ovn/ip.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>

#include "net/address.h"

namespace nld::ovn {

namespace {

// Parses into 16 bytes; returns the family (4/6) or 0. OVN addresses carry no %zone.
int parse(const std::string& text, unsigned char out[16]) {
  std::memset(out, 0, 16);
  const auto a = net::parseIp(text);
  if (!a) return 0;
  std::array<uint8_t, 16> bytes{};
  const size_t n = a->addressBytes(bytes);
  std::memcpy(out, bytes.data(), n);
  return n == 4 ? 4 : 6;
}

}  // namespace

int ipFamily(const std::string& ip) {
  unsigned char b[16];
  return parse(ip, b);
}

std::optional<std::string> canonicalIp(const std::string& ip) {
  unsigned char b[16];
  int fam = parse(ip, b);
  if (fam == 0) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(fam == 4 ? AF_INET : AF_INET6, b, buf, sizeof buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

bool ipInCidr(const std::string& ip, const std::string& cidr_or_ip) {
  std::string net = cidr_or_ip;
  int prefix = -1;
  if (auto slash = net.find('/'); slash != std::string::npos) {
    std::string p = net.substr(slash + 1);
    net.resize(slash);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (ec != std::errc() || ptr != p.data() + p.size() || prefix < 0) return false;
  }
  unsigned char a[16];
  unsigned char n[16];
  int fa = parse(ip, a);
  int fn = parse(net, n);
  if (fa == 0 || fa != fn) return false;
  const int bits = fa == 4 ? 32 : 128;
  if (prefix < 0) prefix = bits;
  if (prefix > bits) return false;
  for (int i = 0; i < prefix; ++i) {
    const int byte = i / 8;
    const int mask = 0x80 >> (i % 8);
    if ((a[byte] & mask) != (n[byte] & mask)) return false;
  }
  return true;
}

}  // namespace nld::ovn
