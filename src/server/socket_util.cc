#include "server/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "fmt/format.h"

namespace nld::server {

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

SockAddr makeSockAddr(const std::string& ip_in, uint16_t port) {
  SockAddr a;
  std::string ip = ip_in;
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
  throw std::runtime_error(fmt::format("not an IP address: '{}'", ip_in));
}

bool isWildcard(const std::string& ip) { return ip.empty() || ip == "0.0.0.0" || ip == "::"; }

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& ip, uint16_t port) {
  int e = errno;
  throw std::runtime_error(fmt::format("listen {} {}:{}: {}", what, ip.empty() ? "*" : ip, port,
                                       std::strerror(e)));
}

int makeSocket(const std::string& ip, uint16_t port, int type, SockAddr& addr) {
  addr = isWildcard(ip) ? makeSockAddr("::", port) : makeSockAddr(ip, port);
  int fd = ::socket(addr.storage.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket", ip, port);
  int one = 1;
  int zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    ::close(fd);
    fail("SO_REUSEPORT", ip, port);
  }
  if (addr.storage.ss_family == AF_INET6 && isWildcard(ip)) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  }
  // Binding to an address not (yet) on this host must fail loudly, as in CoreDNS.
  if (::bind(fd, addr.get(), addr.len) < 0) {
    ::close(fd);
    fail(type == SOCK_DGRAM ? "udp" : "tcp", ip, port);
  }
  return fd;
}

}  // namespace

int bindUdp(const std::string& ip, uint16_t port, int rcvbuf_bytes, int sndbuf_bytes) {
  SockAddr addr;
  int fd = makeSocket(ip, port, SOCK_DGRAM, addr);
  // Large buffers: with the default ~208 KiB a burst of queries is dropped by the kernel
  // (testbed NOTES: dnsperf -q 500). SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back silently.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof(rcvbuf_bytes)) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof(rcvbuf_bytes));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf_bytes, sizeof(sndbuf_bytes)) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf_bytes, sizeof(sndbuf_bytes));
  }
  if (isWildcard(ip)) {
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
  }
  return fd;
}

int listenTcp(const std::string& ip, uint16_t port) {
  SockAddr addr;
  int fd = makeSocket(ip, port, SOCK_STREAM, addr);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::listen(fd, 1024) < 0) {
    ::close(fd);
    fail("tcp listen", ip, port);
  }
  return fd;
}

bool attachQueryNameSteering(int fd, unsigned workers) {
  if (workers <= 1) return true;
  // The program runs with the packet positioned at the UDP payload (the DNS message). It hashes
  // up to kBytes bytes of the question name starting at offset 12, OR-ing 0x20 into each byte so
  // that case variants (0x20 clients) hash alike, stopping at the name's terminating zero byte or
  // the packet's end, and returns hash % workers as the socket index. Classic BPF has only
  // forward jumps, so the per-byte step is unrolled.
  constexpr unsigned kBytes = 32;
  std::vector<sock_filter> prog;
  auto op = [&](uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) {
    prog.push_back(sock_filter{code, jt, jf, k});
  };
  op(BPF_LD | BPF_IMM, 2166136261u);  // M[0] = hash = FNV offset basis
  op(BPF_ST, 0);
  op(BPF_LD | BPF_IMM, 0);  // M[1] = 1 once the name's terminating zero byte was seen
  op(BPF_ST, 1);
  // One 15-instruction step per byte; every jump goes forward within the step or to the next.
  for (unsigned i = 0; i < kBytes; ++i) {
    op(BPF_LD | BPF_MEM, 1);
    op(BPF_JMP | BPF_JEQ | BPF_K, 1, 13, 0);       // name finished: next step
    op(BPF_LD | BPF_W | BPF_LEN, 0);
    op(BPF_JMP | BPF_JGT | BPF_K, 12 + i, 0, 11);  // packet too short: next step
    op(BPF_LD | BPF_B | BPF_ABS, 12 + i);
    op(BPF_JMP | BPF_JEQ | BPF_K, 0, 7, 0);        // root label: mark finished
    op(BPF_ALU | BPF_OR | BPF_K, 0x20);            // fold ASCII case
    op(BPF_MISC | BPF_TAX, 0);
    op(BPF_LD | BPF_MEM, 0);
    op(BPF_ALU | BPF_MUL | BPF_K, 16777619u);
    op(BPF_ALU | BPF_XOR | BPF_X, 0);
    op(BPF_ST, 0);
    op(BPF_JMP | BPF_JA, 2);
    op(BPF_LD | BPF_IMM, 1);
    op(BPF_ST, 1);
  }
  op(BPF_LD | BPF_MEM, 0);
  op(BPF_ALU | BPF_MOD | BPF_K, workers);
  op(BPF_RET | BPF_A, 0);
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof(fprog)) == 0;
}

}  // namespace nld::server
