#include "common/inherited_sockets.h"

#include <unistd.h>

#include <mutex>

namespace nld {

namespace {

struct Registry {
  std::mutex mu;
  std::vector<PassedSocket> sockets;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

const char* socketKindName(SocketKind kind) {
  switch (kind) {
    case SocketKind::kDnsUdp:
      return "dns-udp";
    case SocketKind::kDnsTcp:
      return "dns-tcp";
    case SocketKind::kHttp:
      return "http";
  }
  return "?";
}

bool parseSocketKind(const std::string& text, SocketKind* out) {
  for (SocketKind k : {SocketKind::kDnsUdp, SocketKind::kDnsTcp, SocketKind::kHttp}) {
    if (text == socketKindName(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

void InheritedSockets::add(std::vector<PassedSocket> sockets) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto& s : sockets) r.sockets.push_back(std::move(s));
}

std::vector<int> InheritedSockets::takeAll(SocketKind kind, const std::string& address,
                                           uint16_t port) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<int> out;
  for (auto it = r.sockets.begin(); it != r.sockets.end();) {
    if (it->kind == kind && it->address == address && it->port == port) {
      out.push_back(it->fd);
      it = r.sockets.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

int InheritedSockets::take(SocketKind kind, const std::string& address, uint16_t port) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto it = r.sockets.begin(); it != r.sockets.end(); ++it) {
    if (it->kind == kind && it->address == address && it->port == port) {
      int fd = it->fd;
      r.sockets.erase(it);
      return fd;
    }
  }
  return -1;
}

size_t InheritedSockets::closeUnclaimed() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  size_t n = r.sockets.size();
  // Raw close: fds handed over by SCM_RIGHTS that no binder adopted; common/ is below net::Fd.
  for (const auto& s : r.sockets) ::close(s.fd);
  r.sockets.clear();
  return n;
}

size_t InheritedSockets::size() const {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.sockets.size();
}

InheritedSockets& inheritedSockets() {
  static InheritedSockets s;
  return s;
}

}  // namespace nld
