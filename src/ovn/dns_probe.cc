#include "ovn/dns_probe.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/random.h"
#include "net/address.h"
#include "net/fd.h"

namespace nld::ovn {

namespace {

using Clock = std::chrono::steady_clock;

bool validReply(const uint8_t* p, std::size_t n, uint16_t id) {
  return n >= 12 && p[0] == uint8_t(id >> 8) && p[1] == uint8_t(id) && (p[2] & 0x80) != 0;
}

// One UDP or TCP exchange, advanced by the round's poll loop.
struct Exchange {
  bool tcp = false;
  net::Fd fd;
  uint16_t id = 0;
  bool done = false;
  bool ok = false;
  bool connecting = false;  // tcp: waiting for the non-blocking connect
  std::string why;
  std::vector<uint8_t> out;  // bytes still to send (tcp)
  std::vector<uint8_t> in;   // bytes received (tcp)

  void fail(const std::string& reason) {
    done = true;
    why = reason;
  }
};

void start(Exchange& x, const net::SockAddr& to) {
  x.fd.reset(
      ::socket(to.af(), (x.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!x.fd) return x.fail(std::strerror(errno));
  auto msg = DnsProber::message(x.id);
  if (::connect(x.fd.get(), to.get(), to.len) != 0) {
    if (!(x.tcp && errno == EINPROGRESS)) return x.fail(std::strerror(errno));
    x.connecting = true;
  }
  if (x.tcp) {
    x.out = {uint8_t(msg.size() >> 8), uint8_t(msg.size())};
    x.out.insert(x.out.end(), msg.begin(), msg.end());
    return;
  }
  if (::send(x.fd.get(), msg.data(), msg.size(), 0) != ssize_t(msg.size()))
    x.fail(std::strerror(errno));
}

void advance(Exchange& x, short revents) {
  if (x.tcp && x.connecting && (revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
    int err = 0;
    socklen_t el = sizeof(err);
    ::getsockopt(x.fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return x.fail(std::strerror(err));
    x.connecting = false;
  }
  if (x.tcp && !x.connecting && !x.out.empty()) {
    ssize_t n = ::send(x.fd.get(), x.out.data(), x.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return x.fail(std::strerror(errno));
    if (n > 0) x.out.erase(x.out.begin(), x.out.begin() + n);
  }
  if ((revents & (POLLIN | POLLERR | POLLHUP)) == 0) return;
  uint8_t buf[4096];
  ssize_t n = ::recv(x.fd.get(), buf, sizeof(buf), 0);
  if (n < 0) {
    if (errno != EAGAIN) x.fail(std::strerror(errno));  // e.g. ECONNREFUSED from an ICMP error
    return;
  }
  if (!x.tcp) {
    if (validReply(buf, std::size_t(n), x.id)) {
      x.done = x.ok = true;
    }  // else: a stray datagram; keep waiting
    return;
  }
  if (n == 0) return x.fail("connection closed without an answer");
  x.in.insert(x.in.end(), buf, buf + n);
  if (x.in.size() >= 2) {
    const std::size_t want = (std::size_t(x.in[0]) << 8) | x.in[1];
    if (x.in.size() >= 2 + std::min<std::size_t>(want, 12)) {
      if (validReply(x.in.data() + 2, x.in.size() - 2, x.id)) {
        x.done = x.ok = true;
      } else {
        x.fail("malformed answer");
      }
    }
  }
}

}  // namespace

DnsProber::DnsProber(std::vector<std::string> ips, uint16_t port, std::chrono::milliseconds timeout)
    : ips_(std::move(ips)), port_(port), timeout_(timeout) {}

std::vector<uint8_t> DnsProber::message(uint16_t id) {
  // Header: ID, flags = opcode STATUS (2) << 3, QDCOUNT 1; question ". IN NS".
  return {uint8_t(id >> 8),
          uint8_t(id),
          uint8_t(2 << 3),
          0x00,
          0,
          1,
          0,
          0,
          0,
          0,
          0,
          0,
          0x00,
          0x00,
          0x02,
          0x00,
          0x01};
}

std::vector<ProbeResult> DnsProber::probe() {
  std::vector<Exchange> xs(ips_.size() * 2);
  for (std::size_t i = 0; i < ips_.size(); ++i) {
    const auto to = net::parseSockAddr(ips_[i], port_);
    for (int t = 0; t < 2; ++t) {
      Exchange& x = xs[i * 2 + t];
      x.tcp = t == 1;
      x.id = static_cast<uint16_t>(random64());
      if (!to) {
        x.fail("not an IP address");
        continue;
      }
      start(x, *to);
    }
  }
  const auto deadline = Clock::now() + timeout_;
  while (true) {
    std::vector<pollfd> fds;
    std::vector<Exchange*> owners;
    for (auto& x : xs) {
      if (x.done) continue;
      short events = POLLIN;
      if (x.tcp && (x.connecting || !x.out.empty())) events |= POLLOUT;
      fds.push_back(pollfd{x.fd.get(), events, 0});
      owners.push_back(&x);
    }
    if (fds.empty()) break;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    const int r = ::poll(fds.data(), fds.size(), static_cast<int>(left));
    if (r < 0 && errno != EINTR) break;
    for (std::size_t i = 0; r > 0 && i < fds.size(); ++i) {
      if (fds[i].revents != 0) advance(*owners[i], fds[i].revents);
    }
  }
  std::vector<ProbeResult> out(ips_.size());
  const std::string timeout_text = "no answer within " + std::to_string(timeout_.count()) + " ms";
  for (std::size_t i = 0; i < ips_.size(); ++i) {
    const Exchange& u = xs[i * 2];
    const Exchange& t = xs[i * 2 + 1];
    out[i].ok = u.ok && t.ok;
    if (!u.ok) out[i].why += "udp: " + (u.done ? u.why : timeout_text);
    if (!t.ok)
      out[i].why +=
          std::string(out[i].why.empty() ? "" : "; ") + "tcp: " + (t.done ? t.why : timeout_text);
  }
  return out;  // the exchanges' sockets close with xs
}

}  // namespace nld::ovn
