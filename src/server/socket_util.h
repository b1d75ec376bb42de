#pragma once
// Socket set-up for listeners: SO_REUSEPORT (one UDP and one TCP socket per worker per listener,
// the kernel spreads packets and connections across them), large buffers, packet-info for
// wildcard sockets so replies leave from the address the query was sent to.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace nld::server {

/// A socket address that holds IPv4 or IPv6.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  /// 1 for IPv4 (including v4-mapped IPv6), 2 for IPv6: CoreDNS's `family` label.
  int family() const;
  std::string ip() const;
  uint16_t port() const;
  std::string toString() const;  // "1.2.3.4:53", "[::1]:53"
};

/// Parses an IP literal (IPv4 or IPv6, optional %zone) and port. Throws std::runtime_error.
SockAddr makeSockAddr(const std::string& ip, uint16_t port);

/// Creates a bound, non-blocking UDP socket with SO_REUSEPORT. `ip` empty = wildcard (dual-stack
/// [::], with packet info enabled). Throws std::runtime_error with the address and errno text.
int bindUdp(const std::string& ip, uint16_t port, int rcvbuf_bytes, int sndbuf_bytes);
/// Creates a listening, non-blocking TCP socket with SO_REUSEPORT.
int listenTcp(const std::string& ip, uint16_t port);

/// Steers UDP queries among the `workers` SO_REUSEPORT sockets of one listener by a hash of the
/// lower-cased first bytes of the query name (a classic BPF program, SO_ATTACH_REUSEPORT_CBPF),
/// instead of by the client's address and port. Every worker has its own cache partition, so
/// without this a client's retry from a new source port could land on another worker and miss.
/// Call on the first socket of the group after all `workers` sockets are bound. Returns false
/// (and leaves the kernel's default 4-tuple hashing) if the kernel refuses the program.
bool attachQueryNameSteering(int fd, unsigned workers);

/// True if `ip` is the wildcard listener address ("" / "0.0.0.0" / "::").
bool isWildcard(const std::string& ip);

}  // namespace nld::server
