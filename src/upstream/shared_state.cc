#include "upstream/shared_state.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "common/log.h"
#include "common/random.h"
#include "dns/message.h"
#include "net/fd.h"

namespace nld::upstream {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kPolicyNames[] = {"random", "round_robin", "sequential"};

// The constructor's checks throw std::invalid_argument: a constructor has no Result, and the
// Corefile parser has already refused these settings with file:line, so reaching them is a bug.
net::SockAddr parseAddr(const Upstream& u) {
  if (auto a = net::parseSockAddr(u.ip, u.port)) return *a;
  throw std::invalid_argument("forward: not an IP address: '" + u.ip + "'");
}

/// Waits for `events` on fd until `deadline`. False on timeout or poll error.
bool waitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    return true;  // readiness or error: the following syscall reports which
  }
}

bool sendAll(int fd, const uint8_t* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!waitFd(fd, POLLOUT, deadline)) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool recvAll(int fd, uint8_t* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!waitFd(fd, POLLIN, deadline)) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool isReplyTo(const uint8_t* p, size_t n, uint16_t id) {
  if (n < dns::kHeaderSize) return false;
  dns::Header h = dns::Header::read(dns::ByteView(p, n));
  return h.id == id && h.qr();
}

}  // namespace

std::string_view policyName(Settings::Policy p) { return kPolicyNames[static_cast<int>(p)]; }

SharedForwardState::SharedForwardState(Settings s, ForwardObserver* health_observer)
    : settings_(std::move(s)), observer_(health_observer) {
  if (settings_.max_concurrent != 0) {
    limit_ = std::make_unique<ConcurrencyLimit>(settings_.max_concurrent);
  }
  if (settings_.to.empty()) throw std::invalid_argument("forward: no upstream servers");
  for (const auto& u : settings_.to) addrs_.push_back(parseAddr(u));
  if (settings_.health_check_name.len == 0) {
    settings_.health_check_name.len = 1;  // the root: a single zero label
    settings_.health_check_name.data[0] = 0;
  }
  if (settings_.attempt_timeout.count() <= 0 || settings_.overall_timeout.count() <= 0) {
    throw std::invalid_argument("forward: timeouts must be positive");
  }
  if (settings_.udp_queries_per_socket == 0 ||
      settings_.udp_queries_per_socket > kMaxUdpQueriesPerSocket) {
    throw std::invalid_argument("forward: udp_queries_per_socket must be 1.." +
                                std::to_string(kMaxUdpQueriesPerSocket));
  }
  health_ = std::make_unique<Health[]>(addrs_.size());
  max_attempts_ = settings_.max_connect_attempts != 0 ? settings_.max_connect_attempts
                                                      : static_cast<uint32_t>(2 * addrs_.size());
  if (settings_.max_fails != 0) thread_ = std::thread([this] { healthLoop(); });
}

SharedForwardState::~SharedForwardState() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SharedForwardState::isDown(size_t i) const {
  return settings_.max_fails != 0 &&
         health_[i].fails.load(std::memory_order_relaxed) > settings_.max_fails;
}

uint32_t SharedForwardState::failures(size_t i) const {
  return health_[i].fails.load(std::memory_order_relaxed);
}

bool SharedForwardState::probing(size_t i) const {
  return health_[i].probing.load(std::memory_order_relaxed);
}

void SharedForwardState::recordFailure(size_t i) {
  health_[i].fails.fetch_add(1, std::memory_order_relaxed);
  if (settings_.max_fails == 0) return;           // never down, never probed
  if (health_[i].probing.exchange(true)) return;  // a probe loop is already running
  {
    std::lock_guard<std::mutex> lock(mu_);
    wakeup_ = true;
  }
  cv_.notify_one();
}

void SharedForwardState::healthLoop() {
  const size_t n = addrs_.size();
  std::vector<Clock::time_point> next(n, Clock::time_point::min());
  std::vector<size_t> due;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wakeup_ = false;
    auto now = Clock::now();
    auto earliest = Clock::time_point::max();
    due.clear();
    for (size_t i = 0; i < n; ++i) {
      if (!health_[i].probing.load()) {
        next[i] = Clock::time_point::min();  // a new failure is probed right away
        continue;
      }
      if (next[i] <= now) {
        due.push_back(i);
      } else {
        earliest = std::min(earliest, next[i]);
      }
    }
    if (due.empty()) {
      auto pred = [this] { return stop_ || wakeup_; };
      if (earliest == Clock::time_point::max()) {
        cv_.wait(lock, pred);
      } else {
        cv_.wait_until(lock, earliest, pred);
      }
      continue;
    }
    lock.unlock();
    for (size_t i : due) {
      if (stopping_.load()) break;
      bool ok = probe(i);
      probes_sent_.fetch_add(1, std::memory_order_relaxed);
      if (ok) {
        health_[i].fails.store(0);
        health_[i].probing.store(false);
      } else {
        health_[i].fails.fetch_add(1);
        if (observer_) observer_->onHealthcheckFailure(static_cast<int>(i));
      }
      next[i] = Clock::now() + settings_.health_check;
    }
    lock.lock();
  }
}

// Blocking sockets with poll() timeouts: this runs on the stanza's own health thread, never on a
// worker loop, and a probe is one small exchange, so an event-driven version would buy nothing.
bool SharedForwardState::probe(size_t i) {
  const net::SockAddr& a = addrs_[i];
  const bool tcp = settings_.force_tcp;
  const auto deadline = Clock::now() + settings_.health_check_timeout;
  const net::Fd owned(
      ::socket(a.af(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!owned) return false;
  const int fd = owned.get();

  uint8_t buf[2 + 512];
  const auto id = static_cast<uint16_t>(random64());
  size_t len = dns::buildQuery(id, settings_.health_check_name, dns::type::NS, dns::cls::IN,
                               settings_.health_check_rd ? dns::flag::RD : 0, false, 0, false,
                               dns::MutableBytes(buf + 2, sizeof(buf) - 2));
  if (len == 0) return false;
  dns::store16(buf, static_cast<uint16_t>(len));

  if (::connect(fd, a.get(), a.len) < 0) {
    if (errno != EINPROGRESS) return false;
    if (!waitFd(fd, POLLOUT, deadline)) return false;
    int err = 0;
    socklen_t elen = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) return false;
  }
  if (tcp) {
    if (!sendAll(fd, buf, len + 2, deadline)) return false;
    uint8_t lenbuf[2];
    if (!recvAll(fd, lenbuf, 2, deadline)) return false;
    size_t rlen = dns::load16(lenbuf);
    std::vector<uint8_t> reply(rlen);
    if (!recvAll(fd, reply.data(), rlen, deadline)) return false;
    return isReplyTo(reply.data(), rlen, id);
  }
  if (!sendAll(fd, buf + 2, len, deadline)) return false;
  std::vector<uint8_t> reply(dns::kMaxMessageSize);
  for (;;) {
    ssize_t r = ::recv(fd, reply.data(), reply.size(), 0);
    if (r >= 0) {
      if (isReplyTo(reply.data(), static_cast<size_t>(r), id)) return true;
      continue;  // a stray datagram: keep waiting
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;  // e.g. ECONNREFUSED (ICMP)
    if (!waitFd(fd, POLLIN, deadline)) return false;
  }
}

std::shared_ptr<SharedForwardState> makeSharedState(Settings s, ForwardObserver* health_observer) {
  return std::make_shared<SharedForwardState>(std::move(s), health_observer);
}

}  // namespace nld::upstream
