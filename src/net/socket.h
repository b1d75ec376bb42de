#pragma once
// Socket set-up for listeners: SO_REUSEPORT (one UDP and one TCP socket per worker per listener,
// the kernel spreads packets and connections across them), large buffers, packet-info for
// wildcard sockets so replies leave from the address the query was sent to. Addresses are parsed
// by net/address.h.
#include <cstdint>
#include <string>

#include "net/fd.h"

namespace nld::net {

/// Creates a bound, non-blocking UDP socket with SO_REUSEPORT. `ip` empty = wildcard (dual-stack
/// [::], with packet info enabled). Throws std::runtime_error with the address and errno text.
Fd bindUdp(const std::string& ip, uint16_t port, int rcvbuf_bytes, int sndbuf_bytes);
/// Creates a listening, non-blocking TCP socket with SO_REUSEPORT.
Fd listenTcp(const std::string& ip, uint16_t port);

/// Steers UDP queries among the `workers` SO_REUSEPORT sockets of one listener by a hash of the
/// lower-cased first bytes of the query name (a classic BPF program, SO_ATTACH_REUSEPORT_CBPF),
/// instead of by the client's address and port. Every worker has its own cache partition, so
/// without this a client's retry from a new source port could land on another worker and miss.
/// Call on the first socket of the group after all `workers` sockets are bound. Returns false
/// (and leaves the kernel's default 4-tuple hashing) if the kernel refuses the program.
bool attachQueryNameSteering(int fd, unsigned workers);

}  // namespace nld::net
