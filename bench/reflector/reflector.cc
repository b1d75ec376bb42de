// A minimal DNS "reflector": the ceiling a kernel-socket DNS server can reach on this machine.
// It answers every UDP datagram by flipping the QR bit and sending the packet straight back,
// reading and writing in batches of 64 with recvmmsg/sendmmsg on one thread. Optionally it does
// the same over TCP (RFC 1035 §4.2.2 two-byte length framing, pipelined) so the TCP scenario of
// bench/run.sh has a reference too.
//
// Hand-written on purpose: it is the reference for "the cost of the kernel socket path and
// nothing else", so it must do no parsing, no allocation per query and nothing a library adds.
// It is not a DNS server (it never checks what it reflects) and must only ever listen on
// loopback inside the benchmark's private network namespace.
//
// Thread affinity: single-threaded; everything runs on main's epoll loop.
//
// Forwarding mode (-f UPSTREAM_ADDR:PORT, UDP only): the floor of a forwarder's miss, i.e. the
// cost of the four datagrams a miss needs and nothing else. Each query is sent on to the
// upstream over one connected UDP socket with its ID replaced by a slot number (the slot holds
// the client's address and ID), and each answer goes back to its client with the ID restored:
// recvmmsg/sendmmsg batches both ways, no parsing beyond the ID, no cache, no allocation.
//
// Usage: reflector [-a ADDR] [-p PORT] [-b RCVBUF_BYTES] [--no-tcp] [-f UPSTREAM_ADDR:PORT]
//   prints "ready" on stdout once both sockets listen; exits 0 on SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace nld::bench {
namespace {

constexpr unsigned kBatch = 64;
constexpr size_t kUdpBuf = 4096;
constexpr size_t kTcpReadChunk = 65536;
constexpr uint8_t kQrBit = 0x80;  // high bit of the flags' first byte (byte 2 of the header)

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "reflector: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

struct Options {
  std::string address = "127.0.0.1";
  uint16_t port = 5300;
  int rcvbuf = 8 * 1024 * 1024;
  bool tcp = true;
  std::string forward;  // "ADDR:PORT": forwarding mode
};

Options parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "reflector: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-a") {
      o.address = value();
    } else if (a == "-p") {
      long p = std::strtol(value().c_str(), nullptr, 10);
      if (p <= 0 || p > 65535) {
        std::fprintf(stderr, "reflector: bad port\n");
        std::exit(2);
      }
      o.port = static_cast<uint16_t>(p);
    } else if (a == "-b") {
      long b = std::strtol(value().c_str(), nullptr, 10);
      if (b <= 0 || b > (1L << 30)) {
        std::fprintf(stderr, "reflector: bad buffer size\n");
        std::exit(2);
      }
      o.rcvbuf = static_cast<int>(b);
    } else if (a == "--no-tcp") {
      o.tcp = false;
    } else if (a == "-f") {
      o.forward = value();
      o.tcp = false;
    } else {
      std::fprintf(stderr,
                   "usage: reflector [-a ADDR] [-p PORT] [-b RCVBUF_BYTES] [--no-tcp] "
                   "[-f UPSTREAM_ADDR:PORT]\n");
      std::exit(2);
    }
  }
  return o;
}

sockaddr_in makeAddr(const Options& o) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(o.port);
  if (inet_pton(AF_INET, o.address.c_str(), &sa.sin_addr) != 1) {
    std::fprintf(stderr, "reflector: bad IPv4 address %s\n", o.address.c_str());
    std::exit(2);
  }
  return sa;
}

int bindSocket(const Options& o, int type) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (type == SOCK_DGRAM) {
    // SO_RCVBUFFORCE (root) ignores rmem_max; fall back to the capped SO_RCVBUF.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o.rcvbuf, sizeof o.rcvbuf) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, sizeof o.rcvbuf);
    }
  }
  sockaddr_in sa = makeAddr(o);
  if (bind(fd, static_cast<sockaddr*>(static_cast<void*>(&sa)), sizeof sa) != 0) die("bind");
  if (type == SOCK_STREAM && listen(fd, 128) != 0) die("listen");
  return fd;
}

/// Sends a batch; on a hard error (e.g. ENOBUFS) drops the rest, as a real server would.
void sendAll(int fd, mmsghdr* msgs, unsigned n) {
  unsigned sent = 0;
  while (sent < n) {
    int s = sendmmsg(fd, msgs + sent, n - sent, 0);
    if (s < 0) {
      if (errno == EINTR) continue;
      return;
    }
    sent += static_cast<unsigned>(s);
  }
}

/// Batch state for the UDP socket: preallocated, reused for every recvmmsg/sendmmsg.
class UdpReflector {
 public:
  explicit UdpReflector(int fd) : fd_(fd) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov_[i].iov_base = bufs_[i].data();
      iov_[i].iov_len = kUdpBuf;
    }
  }

  /// Drains the socket: reflects every datagram until EAGAIN. Returns false on a hard error.
  bool drain() {
    for (;;) {
      for (unsigned i = 0; i < kBatch; ++i) {
        msgs_[i].msg_hdr.msg_name = &peers_[i];
        msgs_[i].msg_hdr.msg_namelen = sizeof peers_[i];
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
        msgs_[i].msg_hdr.msg_control = nullptr;
        msgs_[i].msg_hdr.msg_controllen = 0;
        msgs_[i].msg_hdr.msg_flags = 0;
        iov_[i].iov_len = kUdpBuf;
      }
      int n = recvmmsg(fd_, msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        return false;
      }
      unsigned out = 0;
      for (int i = 0; i < n; ++i) {
        size_t len = msgs_[i].msg_len;
        if (len < 12) continue;  // not even a DNS header: nothing to reflect
        bufs_[i][2] ^= kQrBit;
        iov_[out].iov_base = bufs_[i].data();
        iov_[out].iov_len = len;
        send_msgs_[out].msg_hdr = msgs_[i].msg_hdr;
        send_msgs_[out].msg_hdr.msg_iov = &iov_[out];
        send_msgs_[out].msg_hdr.msg_iovlen = 1;
        ++out;
      }
      sendAll(fd_, send_msgs_.data(), out);
      for (unsigned i = 0; i < kBatch; ++i) iov_[i].iov_base = bufs_[i].data();
      if (static_cast<unsigned>(n) < kBatch) return true;
    }
  }

 private:
  int fd_;
  std::array<std::array<uint8_t, kUdpBuf>, kBatch> bufs_{};
  std::array<iovec, kBatch> iov_{};
  std::array<sockaddr_in, kBatch> peers_{};
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<mmsghdr, kBatch> send_msgs_{};
};

/// Forwarding mode: client queries out to the upstream, answers back (see the header).
class UdpForwarder {
 public:
  UdpForwarder(int client_fd, int upstream_fd) : client_(client_fd), upstream_(upstream_fd) {}

  /// Drains `from` (the client socket or the upstream socket) and relays every datagram.
  bool drain(bool from_client) {
    const int in_fd = from_client ? client_ : upstream_;
    for (;;) {
      for (unsigned i = 0; i < kBatch; ++i) {
        iov_[i] = iovec{bufs_[i].data(), kUdpBuf};
        msgs_[i].msg_hdr = msghdr{};
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
        if (from_client) {
          msgs_[i].msg_hdr.msg_name = &peers_[i];
          msgs_[i].msg_hdr.msg_namelen = sizeof peers_[i];
        }
      }
      int n = recvmmsg(in_fd, msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        return false;
      }
      unsigned out = 0;
      for (int i = 0; i < n; ++i) {
        const size_t len = msgs_[i].msg_len;
        if (len < 12) continue;
        uint8_t* b = bufs_[i].data();
        const uint16_t id = static_cast<uint16_t>((b[0] << 8) | b[1]);
        send_msgs_[out].msg_hdr = msghdr{};
        if (from_client) {  // remember the client under a fresh slot; the slot is the new ID
          const uint16_t slot = next_slot_++;
          slots_[slot] = Slot{peers_[i], id};
          b[0] = static_cast<uint8_t>(slot >> 8);
          b[1] = static_cast<uint8_t>(slot);
        } else {  // back to the slot's client with its own ID
          Slot& s = slots_[id];
          b[0] = static_cast<uint8_t>(s.id >> 8);
          b[1] = static_cast<uint8_t>(s.id);
          send_msgs_[out].msg_hdr.msg_name = &s.peer;
          send_msgs_[out].msg_hdr.msg_namelen = sizeof s.peer;
        }
        send_iov_[out] = iovec{b, len};
        send_msgs_[out].msg_hdr.msg_iov = &send_iov_[out];
        send_msgs_[out].msg_hdr.msg_iovlen = 1;
        ++out;
      }
      sendAll(from_client ? upstream_ : client_, send_msgs_.data(), out);
      if (static_cast<unsigned>(n) < kBatch) return true;
    }
  }

 private:
  struct Slot {
    sockaddr_in peer;
    uint16_t id;
  };
  int client_;
  int upstream_;
  uint16_t next_slot_ = 0;
  std::array<Slot, 65536> slots_{};
  std::array<std::array<uint8_t, kUdpBuf>, kBatch> bufs_{};
  std::array<iovec, kBatch> iov_{};
  std::array<iovec, kBatch> send_iov_{};
  std::array<sockaddr_in, kBatch> peers_{};
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<mmsghdr, kBatch> send_msgs_{};
};

/// The connected upstream socket of forwarding mode ("ADDR:PORT", IPv4).
int connectUpstream(const Options& o) {
  const size_t colon = o.forward.rfind(':');
  Options up = o;
  if (colon == std::string::npos) {
    std::fprintf(stderr, "reflector: -f wants ADDR:PORT\n");
    std::exit(2);
  }
  up.address = o.forward.substr(0, colon);
  long p = std::strtol(o.forward.c_str() + colon + 1, nullptr, 10);
  if (p <= 0 || p > 65535) {
    std::fprintf(stderr, "reflector: bad upstream port\n");
    std::exit(2);
  }
  up.port = static_cast<uint16_t>(p);
  sockaddr_in sa = makeAddr(up);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o.rcvbuf, sizeof o.rcvbuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, sizeof o.rcvbuf);
  }
  if (connect(fd, static_cast<sockaddr*>(static_cast<void*>(&sa)), sizeof sa) != 0) die("connect");
  return fd;
}

/// One TCP connection: accumulates input, reflects every complete length-prefixed message.
struct TcpConn {
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;
  bool want_out = false;  // EPOLLOUT in the registered mask
};

/// Reads what is available and reflects complete messages. Returns false to close.
bool serviceTcp(int fd, TcpConn& c, std::vector<uint8_t>& chunk) {
  for (;;) {
    ssize_t r = read(fd, chunk.data(), chunk.size());
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return false;
    }
    c.in.insert(c.in.end(), chunk.begin(), chunk.begin() + r);
    // A short read drained the socket: stop without the read that would return EAGAIN
    // (level-triggered epoll reports whatever comes later; node-cache does the same).
    if (static_cast<size_t>(r) < chunk.size()) break;
  }
  size_t pos = 0;
  while (c.in.size() - pos >= 2) {
    size_t len = (size_t{c.in[pos]} << 8) | c.in[pos + 1];
    if (c.in.size() - pos - 2 < len) break;
    size_t start = c.out.size();
    c.out.insert(c.out.end(), c.in.begin() + static_cast<ptrdiff_t>(pos),
                 c.in.begin() + static_cast<ptrdiff_t>(pos + 2 + len));
    if (len >= 12) c.out[start + 4] ^= kQrBit;
    pos += 2 + len;
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<ptrdiff_t>(pos));
  size_t done = 0;
  while (done < c.out.size()) {
    ssize_t w = write(fd, c.out.data() + done, c.out.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    done += static_cast<size_t>(w);
  }
  c.out.erase(c.out.begin(), c.out.begin() + static_cast<ptrdiff_t>(done));
  // A client that does not read its answers is not worth buffering for without bound.
  return c.out.size() < (16u << 20);
}

int run(const Options& o) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");

  int udp = bindSocket(o, SOCK_DGRAM);
  int tcp = o.tcp ? bindSocket(o, SOCK_STREAM) : -1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  auto add = [ep](int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  };
  add(sfd, EPOLLIN);
  add(udp, EPOLLIN);
  if (tcp >= 0) add(tcp, EPOLLIN);
  const int upstream = o.forward.empty() ? -1 : connectUpstream(o);
  if (upstream >= 0) add(upstream, EPOLLIN);

  auto reflector = std::make_unique<UdpReflector>(udp);
  auto forwarder = upstream >= 0 ? std::make_unique<UdpForwarder>(udp, upstream) : nullptr;
  std::unordered_map<int, TcpConn> conns;
  std::vector<uint8_t> chunk(kTcpReadChunk);
  std::printf("ready\n");
  std::fflush(stdout);

  std::array<epoll_event, 64> events{};
  for (;;) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == sfd) {
        close(ep);
        return 0;
      }
      if (forwarder && (fd == udp || fd == upstream)) {
        if (!forwarder->drain(fd == udp)) die("recvmmsg");
      } else if (fd == udp) {
        if (!reflector->drain()) die("recvmmsg");
      } else if (fd == tcp) {
        for (;;) {
          int c = accept4(tcp, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          add(c, EPOLLIN | EPOLLRDHUP);
          conns.emplace(c, TcpConn{});
        }
      } else {
        auto it = conns.find(fd);
        if (it == conns.end()) continue;
        if (!serviceTcp(fd, it->second, chunk)) {
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          close(fd);
          conns.erase(it);
          continue;
        }
        // Unsent answers: wait for room (EPOLLOUT) as well as for more queries. The mask changes
        // only when that state does (one epoll_ctl per change, not per event, as node-cache
        // does), so the reflector stays the ceiling for TCP too.
        const bool want_out = !it->second.out.empty();
        if (want_out != it->second.want_out) {
          it->second.want_out = want_out;
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP | (want_out ? uint32_t{EPOLLOUT} : 0u);
          ev.data.fd = fd;
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
      }
    }
  }
}

}  // namespace
}  // namespace nld::bench

int main(int argc, char** argv) { return nld::bench::run(nld::bench::parseArgs(argc, argv)); }
