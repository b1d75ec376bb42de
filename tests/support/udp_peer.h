#pragma once
// Test support: loopback UDP for tests that play the other side by hand — a socket the test reads
// and answers from (a listener that probes reach, an upstream that sends a query back: the daemon
// tests) — and free ports for listeners a test starts (UDP and TCP both free).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include "net/fd.h"

namespace nld::test {

/// A UDP socket bound to 127.0.0.1 (port 0: the kernel picks one).
class UdpPeer {
 public:
  explicit UdpPeer(uint16_t port = 0) {
    fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!fd_ || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      throw std::runtime_error("UdpPeer: bind failed");
    }
    socklen_t len = sizeof(a);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }

  uint16_t port() const { return port_; }
  /// The next datagram within `wait_ms` (0: only one already queued), and who sent it.
  std::optional<std::vector<uint8_t>> receive(int wait_ms = 0) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, wait_ms) != 1) return std::nullopt;
    std::vector<uint8_t> buf(65535);
    socklen_t len = sizeof(from_);
    const ssize_t n =
        ::recvfrom(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from_), &len);
    if (n < 0) return std::nullopt;
    buf.resize(size_t(n));
    return buf;
  }
  /// Sends `bytes` back to the sender of the last datagram received.
  void reply(const std::vector<uint8_t>& bytes) {
    ::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&from_),
             sizeof(from_));
  }
  /// Sends `bytes` to 127.0.0.1:port.
  void sendTo(uint16_t port, const std::vector<uint8_t>& bytes) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }

 private:
  net::Fd fd_;
  uint16_t port_ = 0;
  sockaddr_in from_{};
};

/// `n` distinct ports free for both UDP and TCP on 127.0.0.1 right now (the kernel's choice for
/// UDP, checked for TCP); a test binds them at once. All are held until all are picked, so two
/// calls' worth of ports cannot repeat one (separate freePort() calls can: the kernel may hand
/// out a just-released port again). `taken`: ports picked earlier that are not bound yet.
inline std::vector<uint16_t> freePorts(size_t n, const std::vector<uint16_t>& taken = {}) {
  std::vector<UdpPeer> held;
  std::vector<net::Fd> tcp;
  std::vector<uint16_t> ports;
  held.reserve(n + 20);
  for (size_t attempt = 0; ports.size() < n && attempt < n + 20; ++attempt) {
    UdpPeer& udp = held.emplace_back();
    if (std::find(taken.begin(), taken.end(), udp.port()) != taken.end()) continue;
    net::Fd t(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(udp.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(t.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      ports.push_back(udp.port());
      tcp.push_back(std::move(t));
    }
  }
  if (ports.size() < n) throw std::runtime_error("freePorts: not enough found");
  return ports;
}

/// One port free for both UDP and TCP on 127.0.0.1 right now; see freePorts() for several.
inline uint16_t freePort() { return freePorts(1).at(0); }

}  // namespace nld::test
