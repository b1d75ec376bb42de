#include "cmd/node-cache/ready_probe.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/random.h"
#include "dns/message.h"
#include "net/address.h"
#include "net/fd.h"

namespace nld::cmd {

namespace {

// Two tries of 1 s stay inside the manifest's timeoutSeconds (3): the kubelet kills an exec
// probe that overruns it and counts a failure without our message.
constexpr int kTries = 2;
constexpr std::chrono::milliseconds kTryTimeout{1000};

// "ip:port" or "[v6]:port" → a socket address. Throws std::runtime_error with the reason.
net::SockAddr parseAddress(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    throw std::runtime_error("invalid address " + text + ": want ip:port");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw std::runtime_error("invalid address " + text + ": an IPv6 address needs brackets");
  }
  unsigned port = 0;
  const std::string_view p = std::string_view(text).substr(colon + 1);
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port == 0 || port > 65535) {
    throw std::runtime_error("invalid address " + text + ": bad port");
  }
  return net::makeSockAddr(host, static_cast<uint16_t>(port));
}

// The TXT of an identity answer (all its strings joined), or why there is none.
bool identityOf(dns::ByteView pkt, std::string* txt, std::string* why) {
  dns::Response r;
  if (dns::parseResponse(pkt, r) != dns::Error::kNone) {
    *why = "malformed answer";
    return false;
  }
  if (r.header.rcode() != dns::rcode::NoError) {
    *why = "rcode " + std::to_string(r.header.rcode()) +
           " (not a node-cache that answers id.server itself)";
    return false;
  }
  for (const dns::RrInfo& rr : r.rrs) {
    if (rr.section != 0 || rr.type != dns::type::TXT) continue;
    // RDATA follows TTL (4) and RDLENGTH (2); parseResponse checked it lies inside the packet.
    const size_t rdlen = dns::load16(pkt.data() + rr.ttl_offset + 4);
    size_t p = rr.ttl_offset + 6;
    const size_t end = p + rdlen;
    txt->clear();
    while (p < end) {
      const size_t n = pkt[p];
      if (p + 1 + n > end) break;
      txt->append(reinterpret_cast<const char*>(pkt.data() + p + 1), n);
      p += 1 + n;
    }
    return true;
  }
  *why = "no TXT record in the answer";
  return false;
}

}  // namespace

std::string processIdentity() {
  if (const char* uid = std::getenv("POD_UID"); uid != nullptr && *uid != '\0') return uid;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return {};
  return host;
}

int probeReady(const std::string& address) {
  const std::string me = processIdentity();
  net::SockAddr to;
  try {
    to = parseAddress(address);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not ready: %s\n", e.what());
    return 1;
  }
  if (me.empty()) {
    std::fprintf(stderr, "not ready: no identity (POD_UID unset and no hostname)\n");
    return 1;
  }
  const net::Fd fd(::socket(to.get()->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), to.get(), to.len) != 0) {
    std::fprintf(stderr, "not ready: socket to %s: %s\n", address.c_str(), std::strerror(errno));
    return 1;
  }
  static const dns::Name kIdServer = *dns::Name::fromString("id.server.");
  std::string why = "no answer";
  std::vector<uint16_t> ids;  // a late answer to an earlier try counts too
  std::vector<uint8_t> buf(dns::kMaxMessageSize);
  for (int t = 0; t < kTries; ++t) {
    ids.push_back(static_cast<uint16_t>(random64()));
    std::vector<uint8_t> q(dns::kHeaderSize + kIdServer.len + 4);
    q.resize(dns::buildQuery(ids.back(), kIdServer, dns::type::TXT, dns::cls::CH, 0, false, 0,
                             false, dns::MutableBytes(q)));
    if (::send(fd.get(), q.data(), q.size(), 0) < 0) {
      why = std::string("send: ") + std::strerror(errno);  // e.g. ICMP refused of the last try
    }
    const auto deadline = std::chrono::steady_clock::now() + kTryTimeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{fd.get(), POLLIN, 0};
      if (::poll(&pfd, 1, int(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
      if (n < 0) {
        why = std::string("recv: ") + std::strerror(errno);  // ECONNREFUSED: nobody listens
        break;
      }
      if (size_t(n) < dns::kHeaderSize) continue;
      const uint16_t id = dns::load16(buf.data());
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
      std::string txt;
      if (!identityOf(dns::ByteView(buf.data(), size_t(n)), &txt, &why)) continue;
      if (txt == me) {
        std::printf("ready: %s answers as %s\n", address.c_str(), me.c_str());
        return 0;
      }
      why =
          "answered by another node-cache (id.server \"" + txt + "\", this pod is \"" + me + "\")";
    }
  }
  std::fprintf(stderr, "not ready: %s: %s\n", address.c_str(), why.c_str());
  return 1;
}

}  // namespace nld::cmd
