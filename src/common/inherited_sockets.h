#pragma once
// Listening sockets a process received from its predecessor (zero-loss handover, see
// node/handover.h and docs/availability.md), waiting to be adopted by the code that would
// otherwise bind them: the DNS server (UDP and TCP, one SO_REUSEPORT group per listener) and the
// HTTP listeners (/health, /metrics).
//
// A process-wide registry rather than a parameter threaded through every binder: the sockets are
// received once, before anything binds, and every binder (server, observability) already depends
// on `common`. What no binder takes after startup is closed by closeUnclaimed().
//
// Thread affinity: any thread (one mutex); binders run on the control thread in practice.
#include <cstdint>
#include <string>
#include <vector>

namespace nld {

/// What a passed socket is; part of the handover protocol (the text is sent on the wire).
enum class SocketKind : uint8_t { kDnsUdp, kDnsTcp, kHttp };
const char* socketKindName(SocketKind kind);
/// Parses socketKindName()'s text. Returns false for anything else.
bool parseSocketKind(const std::string& text, SocketKind* out);

/// One listening socket. `address` is the configured address text ("" for the wildcard) and
/// `port` the port, exactly as the binder names them, so the successor finds its own listeners.
struct PassedSocket {
  SocketKind kind = SocketKind::kDnsUdp;
  std::string address;
  uint16_t port = 0;
  int fd = -1;
};

class InheritedSockets {
 public:
  /// Adds sockets received from the predecessor. For a DNS listener the order is the order of
  /// the kernel's SO_REUSEPORT group (which the query-name steering program indexes).
  void add(std::vector<PassedSocket> sockets);
  /// Removes and returns every inherited socket of this kind on address:port, in the order they
  /// were added. The caller owns the fds.
  std::vector<int> takeAll(SocketKind kind, const std::string& address, uint16_t port);
  /// Removes and returns the first one, or -1.
  int take(SocketKind kind, const std::string& address, uint16_t port);
  /// Closes every socket nobody took (the new configuration dropped that listener). Returns
  /// how many.
  size_t closeUnclaimed();
  size_t size() const;
};

/// The process's registry.
InheritedSockets& inheritedSockets();

}  // namespace nld
