#include "net/socket.h"

#include <linux/filter.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "fmt/format.h"
#include "net/address.h"

namespace nld::net {

namespace {

// Exception, not Result: a listener that cannot be bound ends start-up like CoreDNS's
// "listen tcp ...: bind: ..." exit; the message is complete here, callers only catch it.
[[noreturn]] void fail(const std::string& what, const std::string& ip, uint16_t port) {
  int e = errno;
  throw std::runtime_error(
      fmt::format("listen {} {}:{}: {}", what, ip.empty() ? "*" : ip, port, std::strerror(e)));
}

// fail() reads errno before it throws, so the Fd's close during unwinding cannot clobber it.
Fd makeSocket(const std::string& ip, uint16_t port, int type) {
  const SockAddr addr = isWildcard(ip) ? makeSockAddr("::", port) : makeSockAddr(ip, port);
  Fd owned(::socket(addr.af(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!owned) fail("socket", ip, port);
  const int fd = owned.get();
  int one = 1;
  int zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    fail("SO_REUSEPORT", ip, port);
  }
  if (addr.storage.ss_family == AF_INET6 && isWildcard(ip)) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  }
  // Binding to an address not (yet) on this host must fail loudly, as in CoreDNS.
  if (::bind(fd, addr.get(), addr.len) < 0) fail(type == SOCK_DGRAM ? "udp" : "tcp", ip, port);
  return owned;
}

}  // namespace

Fd bindUdp(const std::string& ip, uint16_t port, int rcvbuf_bytes, int sndbuf_bytes) {
  Fd owned = makeSocket(ip, port, SOCK_DGRAM);
  const int fd = owned.get();
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
  return owned;
}

Fd listenTcp(const std::string& ip, uint16_t port) {
  Fd owned = makeSocket(ip, port, SOCK_STREAM);
  int one = 1;
  setsockopt(owned.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::listen(owned.get(), 1024) < 0) fail("tcp listen", ip, port);
  return owned;
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
    op(BPF_JMP | BPF_JEQ | BPF_K, 1, 13, 0);  // name finished: next step
    op(BPF_LD | BPF_W | BPF_LEN, 0);
    op(BPF_JMP | BPF_JGT | BPF_K, 12 + i, 0, 11);  // packet too short: next step
    op(BPF_LD | BPF_B | BPF_ABS, 12 + i);
    op(BPF_JMP | BPF_JEQ | BPF_K, 0, 7, 0);  // root label: mark finished
    op(BPF_ALU | BPF_OR | BPF_K, 0x20);      // fold ASCII case
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

}  // namespace nld::net
