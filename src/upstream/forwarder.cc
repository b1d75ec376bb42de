#include "upstream/forwarder.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <exception>

#include "common/log.h"
#include "common/random.h"

namespace nld::upstream {

using Clock = net::Clock;

/// One upstream query and everyone waiting for it.
struct Forwarder::Flight {
  uint64_t id = 0;
  std::string key;
  std::vector<Callback> waiters;

  // What to ask (from the first client query of the flight).
  dns::Question question;  // name (case as sent by the client), qtype, qclass
  uint16_t flags = 0;      // RD/CD/AD copied from the client
  bool edns = false;
  bool dnssec_ok = false;
  bool client_tcp = false;

  // Retry loop state.
  std::vector<int> order;
  size_t next = 0;
  size_t down_seen = 0;
  uint32_t attempts = 0;
  Clock::time_point deadline;

  // Current attempt.
  int upstream = -1;
  bool tcp = false;
  uint64_t seq = 0;
  net::EventLoop::TimerId timer = 0;
  std::shared_ptr<UdpSocket> udp;
  TcpTicket ticket;
  uint16_t qid = 0;
  Clock::time_point started;
  bool cached_retry_used = false;

  std::array<uint8_t, 512> query{};  // header + name (≤ 255) + 4 + OPT (11) fits easily
  size_t query_len = 0;
};

/// A connected UDP socket for one attempt (fresh per attempt: the kernel binds a random
/// ephemeral port, RFC 5452 §9.2, and filters datagrams from other sources).
class Forwarder::UdpSocket final : public net::IoHandler {
 public:
  UdpSocket(Forwarder* fwd, uint64_t flight, int fd) : fwd_(fwd), flight_(flight), fd_(fd) {}
  ~UdpSocket() override {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  void onEvents(uint32_t) override {
    if (fd_ >= 0) fwd_->onUdpReadable(*this);
  }

  Forwarder* fwd_;
  uint64_t flight_;
  int fd_;
};

namespace {

std::string coalescingKey(const dns::Query& q) {
  std::string key;
  const dns::Name& n = q.question.name;
  key.reserve(n.len + 5);
  for (size_t i = 0; i < n.len; ++i) key.push_back(static_cast<char>(dns::asciiLower(n.data[i])));
  key.push_back(static_cast<char>(q.question.qtype >> 8));
  key.push_back(static_cast<char>(q.question.qtype & 0xff));
  key.push_back(static_cast<char>(q.question.qclass >> 8));
  key.push_back(static_cast<char>(q.question.qclass & 0xff));
  key.push_back(
      static_cast<char>((q.edns.present && q.edns.dnssec_ok ? 1 : 0) | (q.header.cd() ? 2 : 0)));
  return key;
}

}  // namespace

Forwarder::Forwarder(net::EventLoop& loop, std::shared_ptr<SharedForwardState> shared,
                     ForwardObserver* obs)
    : loop_(loop),
      shared_(std::move(shared)),
      obs_(obs),
      tcp_(loop, *shared_, *this, obs),
      udp_buf_(dns::kMaxMessageSize) {}

Forwarder::~Forwarder() { shutdown(); }

Forwarder::Flight* Forwarder::find(uint64_t flight_id) {
  auto it = flights_.find(flight_id);
  return it == flights_.end() ? nullptr : it->second.get();
}

void Forwarder::resolve(dns::ByteView query_pkt, const dns::Query& q, bool client_tcp,
                        Callback done) {
  (void)query_pkt;  // the upstream query is rebuilt from `q` (own ID, own OPT)
  if (shut_down_) {
    Result r;
    r.status = Result::Status::ServFail;
    done(r);
    return;
  }
  if (!shared_->tryAcquireConcurrent()) {
    if (obs_) obs_->onMaxConcurrentReject();
    Result r;
    r.status = Result::Status::Refused;
    done(r);
    return;
  }
  ++inflight_;
  std::string key = coalescingKey(q);
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    ++stats_.coalesced;
    flights_.at(it->second)->waiters.push_back(std::move(done));
    return;
  }

  const Settings& s = shared_->settings();
  auto f = std::make_unique<Flight>();
  f->id = next_flight_++;
  f->key = key;
  f->waiters.push_back(std::move(done));
  f->question.name = q.question.name;
  f->question.qtype = q.question.qtype;
  f->question.qclass = q.question.qclass;
  f->flags = q.header.flags & (dns::flag::RD | dns::flag::CD | dns::flag::AD);
  f->edns = true;  // always our own OPT (1232): lets the upstream answer large over UDP
  f->dnssec_ok = q.edns.present && q.edns.dnssec_ok;
  f->client_tcp = client_tcp;
  f->deadline = Clock::now() + s.overall_timeout;

  const size_t n = shared_->upstreamCount();
  f->order.resize(n);
  for (size_t i = 0; i < n; ++i) f->order[i] = static_cast<int>(i);
  switch (s.policy) {
    case Settings::Policy::Random:
      for (size_t i = n; i > 1; --i) std::swap(f->order[i - 1], f->order[randomBelow(i)]);
      break;
    case Settings::Policy::RoundRobin:
      std::rotate(f->order.begin(),
                  f->order.begin() + static_cast<ptrdiff_t>(shared_->nextRoundRobin() % n),
                  f->order.end());
      break;
    case Settings::Policy::Sequential:
      break;
  }

  Flight& ref = *f;
  by_key_.emplace(std::move(key), f->id);
  flights_.emplace(f->id, std::move(f));
  startNextAttempt(ref);
}

void Forwarder::startNextAttempt(Flight& f) {
  const Settings& s = shared_->settings();
  const size_t n = f.order.size();
  // Bounded: every pass either starts an attempt (attempts grows, capped) or skips a down
  // upstream (at most n skips before the all-down branch starts one).
  for (;;) {
    if (f.attempts >= shared_->maxAttempts() || Clock::now() >= f.deadline) {
      finish(f.id, Result::Status::ServFail, {}, nullptr, f.upstream);
      return;
    }
    if (f.next >= n) {
      f.next = 0;
      f.down_seen = 0;
    }
    int u = f.order[f.next++];
    if (shared_->isDown(static_cast<size_t>(u))) {
      if (++f.down_seen < n) continue;
      if (obs_) obs_->onAllUpstreamsDown();
      if (s.failfast_all_unhealthy) {
        finish(f.id, Result::Status::ServFail, {}, nullptr, f.upstream);
        return;
      }
      u = static_cast<int>(randomBelow(n));
    }
    ++f.attempts;
    const bool tcp = s.force_tcp || (!s.prefer_udp && f.client_tcp);
    if (startExchange(f, u, tcp, false)) return;
    // Failed synchronously (already counted): next upstream.
  }
}

bool Forwarder::buildUpstreamQuery(Flight& f) {
  f.qid = static_cast<uint16_t>(random64());
  f.query_len = dns::buildQuery(f.qid, f.question.name, f.question.qtype, f.question.qclass,
                                f.flags, f.edns, dns::kOurUdpSize, f.dnssec_ok,
                                dns::MutableBytes(f.query.data(), f.query.size()));
  return f.query_len != 0;
}

bool Forwarder::startExchange(Flight& f, int upstream, bool tcp, bool fresh_conn) {
  f.upstream = upstream;
  f.tcp = tcp;
  ++f.seq;
  ++stats_.attempts;
  f.started = Clock::now();
  const auto u = static_cast<size_t>(upstream);
  if (!buildUpstreamQuery(f)) {  // cannot happen for a parsed question; fail loudly anyway
    shared_->recordFailure(u);
    return false;
  }
  if (tcp) {
    ++stats_.tcp_attempts;
    f.ticket =
        tcp_.send(upstream, f.id, dns::MutableBytes(f.query.data(), f.query_len), fresh_conn);
    if (f.ticket.conn == nullptr) {
      if (!f.ticket.exhausted) shared_->recordFailure(u);
      return false;
    }
    f.qid = f.ticket.id;
  } else {
    ++stats_.udp_attempts;
    if (obs_) obs_->onConnCache(upstream, "udp", false);
    const UpstreamAddr& a = shared_->addr(u);
    int fd = ::socket(a.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      shared_->recordFailure(u);
      return false;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) < 0 ||
        ::send(fd, f.query.data(), f.query_len, 0) < 0) {
      ::close(fd);
      shared_->recordFailure(u);
      return false;
    }
    auto sock = std::make_shared<UdpSocket>(this, f.id, fd);  // owns fd from here
    try {
      loop_.add(fd, EPOLLIN, sock.get());
    } catch (const std::exception& e) {  // EventLoop reports epoll_ctl failure by throwing
      log::error("plugin/forward: cannot register UDP socket: {}", e.what());
      return false;  // a local resource problem, not the upstream's fault
    }
    f.udp = std::move(sock);
  }
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(f.deadline - Clock::now());
  auto t = std::min<std::chrono::nanoseconds>(shared_->settings().attempt_timeout, left);
  if (t.count() < 0) t = std::chrono::nanoseconds::zero();
  f.timer = loop_.addTimer(t, [this, id = f.id, seq = f.seq] { onAttemptTimeout(id, seq); });
  return true;
}

void Forwarder::endAttempt(Flight& f) {
  if (f.timer != 0) {
    loop_.cancelTimer(f.timer);
    f.timer = 0;
  }
  if (f.udp) {
    // close() also drops the epoll registration (the fd is never dup'ed): no EPOLL_CTL_DEL.
    ::close(f.udp->fd_);
    f.udp->fd_ = -1;
    loop_.post([keep = std::move(f.udp)] {});  // deferred deletion (events of this round)
    f.udp.reset();
  }
  if (f.ticket.conn != nullptr) {
    tcp_.cancel(f.ticket);
    f.ticket = {};
  }
}

void Forwarder::attemptFailed(Flight& f, bool record_failure) {
  endAttempt(f);
  if (record_failure) shared_->recordFailure(static_cast<size_t>(f.upstream));
  startNextAttempt(f);
}

void Forwarder::onAttemptTimeout(uint64_t flight_id, uint64_t seq) {
  Flight* f = find(flight_id);
  if (f == nullptr || f->seq != seq) return;
  f->timer = 0;
  attemptFailed(*f, true);
}

void Forwarder::onUdpReadable(UdpSocket& s) {
  Flight* f = find(s.flight_);
  if (f == nullptr || f->udp.get() != &s) return;
  // Bounded per wakeup so a flood of strays cannot monopolise the loop (level-triggered epoll
  // brings us back).
  for (int i = 0; i < 32; ++i) {
    ssize_t r = ::recv(s.fd_, udp_buf_.data(), udp_buf_.size(), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      attemptFailed(*f, true);  // ECONNREFUSED: ICMP port unreachable on the connected socket
      return;
    }
    if (handleReply(*f, dns::ByteView(udp_buf_.data(), static_cast<size_t>(r)), false)) return;
    ++stats_.stray_replies;
  }
}

bool Forwarder::handleReply(Flight& f, dns::ByteView msg, bool tcp) {
  if (msg.size() < dns::kHeaderSize) {
    if (!tcp) return false;
    attemptFailed(f, true);
    return true;
  }
  const dns::Header h = dns::Header::read(msg);
  if (h.id != f.qid || !h.qr()) {
    if (!tcp) return false;  // RFC 5452: not our answer, keep waiting
    attemptFailed(f, true);
    return true;
  }
  if (dns::parseResponse(msg, resp_) != dns::Error::None) {
    if (!tcp) return false;
    attemptFailed(f, true);
    return true;
  }
  if (!dns::questionMatches(resp_.question, f.question)) {
    if (!tcp) return false;
    // On TCP it cannot be a spoofed stray: the upstream answered something else (CoreDNS: FORMERR).
    finish(f.id, Result::Status::FormErr, {}, nullptr, f.upstream);
    return true;
  }
  if (h.tc() && !f.tcp) {
    // Truncated over UDP: redo the exchange with the same upstream over TCP (not a new attempt).
    const int u = f.upstream;
    endAttempt(f);
    if (!startExchange(f, u, true, false)) startNextAttempt(f);
    return true;
  }
  if (obs_) {
    const double secs = std::chrono::duration<double>(Clock::now() - f.started).count();
    obs_->onExchange(f.upstream, h.rcode(), secs);
  }
  finish(f.id, Result::Status::Ok, msg, &resp_, f.upstream);
  return true;
}

void Forwarder::onTcpReply(uint64_t token, dns::ByteView msg) {
  Flight* f = find(token);
  if (f == nullptr || !f->tcp) return;
  f->ticket = {};  // the pool already forgot the query
  handleReply(*f, msg, true);
}

void Forwarder::onTcpFailed(uint64_t token, bool cached_close) {
  Flight* f = find(token);
  if (f == nullptr || !f->tcp) return;
  f->ticket = {};
  if (cached_close && !f->cached_retry_used) {
    // A reused connection was closed by the peer before answering: retry once on a new
    // connection without counting a failure (CoreDNS ErrCachedClosed).
    f->cached_retry_used = true;
    const int u = f->upstream;
    endAttempt(*f);
    if (!startExchange(*f, u, true, true)) startNextAttempt(*f);
    return;
  }
  attemptFailed(*f, cached_close);  // otherwise the pool has recorded the failure
}

void Forwarder::finish(uint64_t flight_id, Result::Status status, dns::ByteView pkt,
                       const dns::Response* parsed, int upstream) {
  auto it = flights_.find(flight_id);
  if (it == flights_.end()) return;
  std::unique_ptr<Flight> f = std::move(it->second);
  flights_.erase(it);
  by_key_.erase(f->key);
  endAttempt(*f);

  Result r;
  r.status = status;
  r.packet = pkt;
  r.parsed = parsed;
  r.upstream = upstream;
  for (auto& done : f->waiters) {
    --inflight_;
    shared_->releaseConcurrent();
    done(r);
  }
}

void Forwarder::shutdown() {
  shut_down_ = true;
  std::vector<uint64_t> ids;
  ids.reserve(flights_.size());
  for (const auto& [id, f] : flights_) ids.push_back(id);
  for (uint64_t id : ids) {
    Flight* f = find(id);
    if (f != nullptr) finish(id, Result::Status::ServFail, {}, nullptr, f->upstream);
  }
  tcp_.closeAll();
}

}  // namespace nld::upstream
