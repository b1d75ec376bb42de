#include "node/local_ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>

#include "net/address.h"

namespace nld::node {

static_assert(LocalIp::kInet6 == AF_INET6);

std::string_view firewallName(Firewall f) {
  switch (f) {
    case Firewall::kIptables:
      return "iptables";
    case Firewall::kNftables:
      return "nftables";
    case Firewall::kAuto:
      return "auto";
  }
  return "iptables";
}

std::string LocalIp::canonical() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes.data(), buf, sizeof(buf)) == nullptr) return text;
  return buf;
}

bool parseLocalIp(std::string_view text, LocalIp* out) {
  const std::string s(text);
  LocalIp ip;
  ip.text = s;
  const auto a = net::parseIp(s);
  if (!a) return false;
  a->addressBytes(ip.bytes);
  ip.family = a->af();
  *out = std::move(ip);
  return true;
}

}  // namespace nld::node
