#include "upstream/forwarder.h"

#include <sys/socket.h>
#include <sys/uio.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <exception>

#include "common/log.h"
#include "common/random.h"
#include "net/address.h"
#include "net/fd.h"

namespace nld::upstream {

using Clock = net::Clock;

/// One upstream query and everyone waiting for it.
/// Records are pooled (Forwarder::flight_slots_) and reused with their vectors' capacity, so a
/// miss allocates nothing here once the pool has grown to the peak number of flights.
struct Forwarder::Flight {
  uint64_t id = 0;        // 0 while the record is free
  uint64_t key_hash = 0;  // coalescing key hash
  bool keyed = false;     // registered in by_key_ under key_hash
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
  net::EventLoop::TimerId timer = 0;  // a loop timer (clamped attempts only), or 0
  bool in_fifo = false;               // the attempt's deadline is in Forwarder::deadlines_
  UdpSocket* udp = nullptr;  // owned by Forwarder::udp_sockets_; valid while the slot is ours
  uint8_t udp_slot = 0;
  TcpTicket ticket;
  uint16_t qid = 0;
  Clock::time_point started;
  bool cached_retry_used = false;

  std::array<uint8_t, 512> query{};  // header + name (≤ 255) + 4 + OPT (11) fits easily
  size_t query_len = 0;
};

/// A connected UDP socket towards one upstream, shared by up to udp_queries_per_socket
/// exchanges (see forwarder.h). Slot i belongs to the i-th query sent on it; a slot is freed when
/// its exchange ends (reply, timeout, failure, cancellation).
class Forwarder::UdpSocket final : public net::IoHandler {
 public:
  struct Slot {
    uint64_t flight = 0;
    uint16_t qid = 0;
    bool used = false;
  };

  UdpSocket(Forwarder* fwd, int upstream, net::Fd fd, Clock::time_point opened)
      : fwd_(fwd), upstream_(upstream), fd_(std::move(fd)), opened_(opened) {}
  ~UdpSocket() override = default;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  void onEvents(uint32_t) override {
    if (fd_) fwd_->onUdpReadable(*this);
  }
  /// The outstanding slot waiting for `qid`, or nullptr.
  Slot* findSlot(uint16_t qid) {
    const int i = indexOf(qid);
    return i >= 0 && slots_[size_t(i)].used ? &slots_[size_t(i)] : nullptr;
  }
  /// Whether `qid` was sent on this socket (outstanding or not): udpSocketFor draws IDs until
  /// one is not, so the IDs of a socket's slots are all different and one reply matches at most
  /// one slot.
  bool idTaken(uint16_t qid) const { return indexOf(qid) >= 0; }
  void record(uint32_t slot, const Slot& sl) {
    slots_[slot] = sl;
    qids_[slot] = sl.qid;
  }

  /// Index of the slot sent with `qid`, or -1. Hand-written: two lookups per miss (the ID draw
  /// and the reply) over up to 64 IDs; compared 8 at a time with SSE2 (a scalar loop over the
  /// 16-byte slots cost ~250 instructions per miss).
  int indexOf(uint16_t qid) const {
    uint64_t m = 0;
#if defined(__SSE2__)
    const __m128i want = _mm_set1_epi16(static_cast<short>(qid));
    for (size_t i = 0; i < kMaxUdpQueriesPerSocket; i += 8) {
      const __m128i got = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&qids_[i]));
      const __m128i eq = _mm_cmpeq_epi16(got, want);  // 0xffff per equal 16-bit lane
      const auto bits = static_cast<uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(eq, eq))) & 0xffu;
      m |= uint64_t{bits} << i;
    }
#else
    for (size_t i = 0; i < kMaxUdpQueriesPerSocket; ++i) m |= uint64_t{qids_[i] == qid} << i;
#endif
    m &= sent_ >= 64 ? ~uint64_t{0} : (uint64_t{1} << sent_) - 1;  // only slots handed out
    return m == 0 ? -1 : std::countr_zero(m);
  }
  static_assert(kMaxUdpQueriesPerSocket % 8 == 0 && kMaxUdpQueriesPerSocket <= 64);

 private:
  // The forwarder hands out slots, retires and expires sockets: it reads and writes these.
  friend class Forwarder;

  Forwarder* fwd_;
  int upstream_;
  net::Fd fd_;
  Clock::time_point opened_;
  uint32_t sent_ = 0;         // slots handed out (never reused: a socket is retired when full)
  uint32_t outstanding_ = 0;  // slots in use
  std::array<Slot, kMaxUdpQueriesPerSocket> slots_{};
  std::array<uint16_t, kMaxUdpQueriesPerSocket> qids_{};  // slots_[i].qid, contiguous for indexOf
};

/// recvmmsg batch per wakeup of one upstream UDP socket.
constexpr size_t kUdpRecvBatch = 8;

Forwarder::Forwarder(net::EventLoop& loop, std::shared_ptr<SharedForwardState> shared,
                     ForwardObserver* obs)
    : loop_(loop),
      shared_(std::move(shared)),
      obs_(obs),
      tcp_(loop, *shared_, *this, obs),
      udp_current_(shared_->upstreamCount(), nullptr) {}

Forwarder::~Forwarder() { shutdown(); }

Forwarder::Flight* Forwarder::find(uint64_t flight_id) {
  const uint64_t index = flight_id & 0xffffffffu;
  if (index >= flight_slots_.size()) return nullptr;
  Flight* f = flight_slots_[index].get();
  return f != nullptr && f->id == flight_id ? f : nullptr;
}

Forwarder::Flight& Forwarder::allocFlight() {
  uint32_t index;
  if (!free_flights_.empty()) {
    index = free_flights_.back();
    free_flights_.pop_back();
    if (flight_slots_[index]) {
      --pooled_flights_;
    } else {
      flight_slots_[index] = std::make_unique<Flight>();
      ++flight_records_;
    }
  } else {
    index = static_cast<uint32_t>(flight_slots_.size());
    flight_slots_.push_back(std::make_unique<Flight>());
    ++flight_records_;
  }
  Flight& f = *flight_slots_[index];
  // Ids are (generation << 32 | slot): never 0, never reused while a stale one may be around.
  if (++flight_generation_ == 0) ++flight_generation_;
  f.id = (flight_generation_ << 32) | index;
  return f;
}

void Forwarder::releaseFlight(Flight& f, std::vector<Callback>&& waiters) {
  const auto index = static_cast<uint32_t>(f.id & 0xffffffffu);
  free_flights_.push_back(index);
  if (pooled_flights_ >= kFlightPoolMax) {
    // Past a burst: give the record back to the allocator instead of keeping the peak forever
    // (the slot index stays, 8 bytes, so ids of late events still resolve to nothing).
    flight_slots_[index].reset();
    --flight_records_;
    return;
  }
  ++pooled_flights_;
  waiters.clear();
  // A flight that had many coalesced waiters does not keep their capacity.
  if (waiters.capacity() > 8) std::vector<Callback>().swap(waiters);
  f.waiters = std::move(waiters);  // keep the capacity for the next flight
  f.id = 0;
  f.keyed = false;
  f.attempts = 0;
  f.next = 0;
  f.down_seen = 0;
  f.upstream = -1;
  f.cached_retry_used = false;
  f.udp = nullptr;
  f.ticket = {};
  f.timer = 0;
  f.in_fifo = false;
}

void Forwarder::resolve(dns::ByteView query_pkt, const dns::Query& q, uint64_t key_hash,
                        bool client_tcp, Callback done) {
  (void)query_pkt;  // the upstream query is rebuilt from `q` (own ID, own OPT)
  if (shut_down_) {
    Result r;
    r.status = Result::Status::kServFail;
    r.error = kErrShutdown;
    done(r);
    return;
  }
  if (!shared_->tryAcquireConcurrent()) {
    if (obs_) obs_->onMaxConcurrentReject();
    Result r;
    r.status = Result::Status::kRefused;
    r.error = kErrLimitExceeded;
    done(r);
    return;
  }
  ++inflight_;
  const bool dnssec_ok = q.edns.present && q.edns.dnssec_ok;
  const uint64_t key = key_hash;  // coalescing key = cache key (dns/key_hash.h)
  const uint64_t same = by_key_.find(key);
  Flight* other = same != 0 ? find(same) : nullptr;
  if (other != nullptr && other->question.qtype == q.question.qtype &&
      other->question.qclass == q.question.qclass && other->dnssec_ok == dnssec_ok &&
      ((other->flags & dns::flag::CD) != 0) == q.header.cd() &&
      other->question.name.equalsIgnoreCase(q.question.name)) {
    if (other->waiters.size() >= kMaxWaitersPerFlight) {
      --inflight_;
      shared_->releaseConcurrent();
      ++stats_.coalesce_rejects;
      if (obs_) obs_->onCoalesceReject();
      Result r;
      r.status = Result::Status::kRefused;
      r.error = kErrTooManyWaiters;
      done(r);
      return;
    }
    ++stats_.coalesced;
    other->waiters.push_back(std::move(done));
    return;
  }

  const Settings& s = shared_->settings();
  Flight& f = allocFlight();
  f.key_hash = key;
  // A hash collision with another in-flight question: this one simply is not coalesced.
  f.keyed = same == 0;
  f.waiters.push_back(std::move(done));
  f.question.name = q.question.name;
  f.question.qtype = q.question.qtype;
  f.question.qclass = q.question.qclass;
  f.flags = q.header.flags & (dns::flag::RD | dns::flag::CD | dns::flag::AD);
  f.edns = true;  // always our own OPT (1232): lets the upstream answer large over UDP
  f.dnssec_ok = dnssec_ok;
  f.client_tcp = client_tcp;
  f.deadline = loop_.clockNow() + s.overall_timeout;

  const size_t n = shared_->upstreamCount();
  f.order.resize(n);
  for (size_t i = 0; i < n; ++i) f.order[i] = static_cast<int>(i);
  switch (s.policy) {
    case Settings::Policy::kRandom:
      for (size_t i = n; i > 1; --i) std::swap(f.order[i - 1], f.order[randomBelow(i)]);
      break;
    case Settings::Policy::kRoundRobin:
      std::rotate(f.order.begin(),
                  f.order.begin() + static_cast<ptrdiff_t>(shared_->nextRoundRobin() % n),
                  f.order.end());
      break;
    case Settings::Policy::kSequential:
      break;
  }

  if (f.keyed) by_key_.insert(key, f.id);
  startNextAttempt(f);
}

void Forwarder::startNextAttempt(Flight& f) {
  const Settings& s = shared_->settings();
  const size_t n = f.order.size();
  // Bounded: every pass either starts an attempt (attempts grows, capped) or skips a down
  // upstream (at most n skips before the all-down branch starts one).
  for (;;) {
    if (f.attempts >= shared_->maxAttempts() || loop_.clockNow() >= f.deadline) {
      finish(f.id, Result::Status::kServFail, {}, nullptr, f.upstream);
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
        finish(f.id, Result::Status::kServFail, {}, nullptr, f.upstream);
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
  // One clock read per exchange: its start, the budget left and its deadline.
  const auto now = loop_.clockNow();
  f.started = now;
  const auto u = static_cast<size_t>(upstream);
  if (tcp) {
    f.qid = static_cast<uint16_t>(random64());  // the pool replaces it with one unique per conn
    if (!buildUpstreamQuery(f)) {  // cannot happen for a parsed question; fail loudly anyway
      shared_->recordFailure(u);
      return false;
    }
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
    UdpSocket* s = udpSocketFor(upstream, f.qid);
    if (s == nullptr) {
      shared_->recordFailure(u);
      return false;
    }
    if (!buildUpstreamQuery(f)) {
      shared_->recordFailure(u);
      return false;
    }
    const uint32_t slot = s->sent_++;
    s->record(slot, UdpSocket::Slot{f.id, f.qid, true});
    ++s->outstanding_;
    if (s->sent_ >= shared_->settings().udp_queries_per_socket) retireSocket(*s);
    f.udp = s;
    f.udp_slot = static_cast<uint8_t>(slot);
    // Sent at the end of the loop round, with the round's other queries to this socket in one
    // sendmmsg (flushSends).
    sends_.push_back(PendingSend{f.id, f.seq});
    if (!sends_requested_) {
      sends_requested_ = true;
      loop_.requestRoundEnd(this);
    }
  }
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(f.deadline - now);
  // The last attempt the cap allows waits for the rest of the budget: with one upstream (2
  // attempts) an upstream answering in 2 s would otherwise time out twice and the client get
  // SERVFAIL at 4 s with a fifth of the budget unused (CoreDNS's third attempt reads until ~6 s).
  const bool last = f.attempts >= shared_->maxAttempts();
  auto t =
      last ? left : std::min<std::chrono::nanoseconds>(shared_->settings().attempt_timeout, left);
  if (t.count() < 0) t = std::chrono::nanoseconds::zero();
  if (t == shared_->settings().attempt_timeout) {
    // The common case: every such deadline is now + the same timeout, so they expire in the
    // order they were queued (one FIFO and one loop timer instead of a timer per exchange).
    deadlines_.push_back(Deadline{now + t, f.id, f.seq});
    f.in_fifo = true;
    armDeadlineTimer();
  } else {
    // Clamped by the overall budget: a loop timer. Captures 16 bytes, which std::function keeps
    // inline. A cancelled timer never fires and endAttempt cancels it, so a firing timer is the
    // flight's current one.
    f.timer = loop_.addTimer(t, [this, id = f.id] { onAttemptTimeout(id); });
  }
  return true;
}

Forwarder::UdpSocket* Forwarder::udpSocketFor(int upstream, uint16_t& qid) {
  const auto u = static_cast<size_t>(upstream);
  UdpSocket* s = udp_current_[u];
  if (s != nullptr && loop_.now() - s->opened_ >= shared_->settings().expire) {
    retireSocket(*s);  // clears udp_current_[u]
    s = nullptr;
  }
  if (s == nullptr) {
    const net::SockAddr& a = shared_->addr(u);
    net::Fd owned(::socket(a.af(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!owned) return nullptr;
    const int fd = owned.get();
    // connect(): the kernel binds a random ephemeral port (RFC 5452 §9.2) and drops datagrams
    // from any other source address or port.
    if (::connect(fd, a.get(), a.len) < 0) return nullptr;
    auto sock = std::make_shared<UdpSocket>(this, upstream, std::move(owned), loop_.now());
    try {
      loop_.add(fd, EPOLLIN, sock.get());
    } catch (const std::exception& e) {  // EventLoop reports epoll_ctl failure by throwing
      log::error("plugin/forward: cannot register UDP socket: {}", e.what());
      return nullptr;
    }
    ++stats_.udp_sockets_opened;
    if (obs_) obs_->onConnCache(upstream, "udp", false);
    s = sock.get();
    udp_sockets_.push_back(std::move(sock));
    udp_current_[u] = s;
  } else if (obs_) {
    obs_->onConnCache(upstream, "udp", true);
  }
  // A random ID not yet sent on this socket (at most 63 others: a few draws at most).
  for (int i = 0; i < 16; ++i) {
    qid = static_cast<uint16_t>(random64());
    if (!s->idTaken(qid)) return s;
  }
  retireSocket(*s);  // astronomically unlikely; never reuse an outstanding ID
  return nullptr;
}

void Forwarder::flushSends() {
  sends_requested_ = false;
  sending_.swap(sends_);  // sends queued by failures below go to the next round
  constexpr size_t kMax = 32;
  // Not value-initialised (2 KiB of zeroing per flush otherwise): each used entry is filled.
  std::array<mmsghdr, kMax> msgs;
  std::array<iovec, kMax> iov;
  std::array<uint64_t, kMax> owner;
  // The socket of an entry is its flight's current one, found through the flight: the entry
  // holds no socket pointer (a socket failed and closed during this round is already gone).
  auto current = [this](const PendingSend& p) -> Flight* {
    Flight* f = find(p.flight);
    return f != nullptr && f->seq == p.seq && !f->tcp && f->udp != nullptr ? f : nullptr;
  };
  size_t i = 0;
  while (i < sending_.size()) {
    Flight* first = current(sending_[i]);
    if (first == nullptr) {
      ++i;
      continue;
    }
    UdpSocket* s = first->udp;
    size_t m = 0;
    for (; i < sending_.size() && m < kMax; ++i) {
      Flight* f = current(sending_[i]);
      if (f == nullptr) continue;  // the attempt ended meanwhile (failure, shutdown)
      if (f->udp != s) break;      // the next group
      iov[m].iov_base = f->query.data();
      iov[m].iov_len = f->query_len;
      msgs[m].msg_hdr = msghdr{};
      msgs[m].msg_hdr.msg_iov = &iov[m];
      msgs[m].msg_hdr.msg_iovlen = 1;
      owner[m] = f->id;
      ++m;
    }
    size_t sent = 0;
    while (sent < m) {
      const int r =
          ::sendmmsg(s->fd_.get(), msgs.data() + sent, static_cast<unsigned>(m - sent), 0);
      if (r > 0) {
        sent += static_cast<size_t>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == ECONNREFUSED) {
        // An ICMP error caused by an earlier query on this socket, reported to this send: it
        // condemns every query on the socket, sent or not.
        failSocket(*s);
        break;
      }
      // Any other error: the unsent ones fail (the sent ones wait for their answers).
      for (size_t k = sent; k < m; ++k) {
        Flight* f = find(owner[k]);
        if (f != nullptr && f->udp == s) attemptFailed(*f, true);
      }
      break;
    }
  }
  sending_.clear();
}

void Forwarder::retireSocket(UdpSocket& s) {
  // Retired = no longer the upstream's current socket: it takes no new queries.
  const auto u = static_cast<size_t>(s.upstream_);
  if (udp_current_[u] == &s) udp_current_[u] = nullptr;
  if (s.outstanding_ == 0) closeSocket(s);
}

void Forwarder::releaseSlot(UdpSocket& s, uint8_t slot) {
  UdpSocket::Slot& sl = s.slots_[slot];
  if (!sl.used) return;
  sl.used = false;
  --s.outstanding_;
  if (s.outstanding_ == 0 && udp_current_[static_cast<size_t>(s.upstream_)] != &s) closeSocket(s);
}

void Forwarder::closeSocket(UdpSocket& s) {
  if (!s.fd_) return;
  // close() also drops the epoll registration (the fd is never dup'ed): no EPOLL_CTL_DEL.
  s.fd_.reset();
  const auto u = static_cast<size_t>(s.upstream_);
  if (udp_current_[u] == &s) udp_current_[u] = nullptr;
  for (size_t i = 0; i < udp_sockets_.size(); ++i) {
    if (udp_sockets_[i].get() != &s) continue;
    // Deferred deletion: events of this round (and the caller's stack) may still refer to it.
    loop_.post([keep = std::move(udp_sockets_[i])] {});
    udp_sockets_[i] = std::move(udp_sockets_.back());
    udp_sockets_.pop_back();
    break;
  }
}

void Forwarder::failSocket(UdpSocket& s) {
  retireSocket(s);
  // Copy the owners first: failing an attempt may start another one (on another socket) and
  // release slots of this one.
  std::array<uint64_t, kMaxUdpQueriesPerSocket> ids{};
  size_t n = 0;
  for (uint32_t i = 0; i < s.sent_; ++i) {
    if (s.slots_[i].used) ids[n++] = s.slots_[i].flight;
  }
  for (size_t i = 0; i < n; ++i) {
    Flight* f = find(ids[i]);
    if (f != nullptr && f->udp == &s) attemptFailed(*f, true);
  }
}

void Forwarder::endAttempt(Flight& f) {
  if (f.timer != 0) {
    loop_.cancelTimer(f.timer);
    f.timer = 0;
  }
  if (f.in_fifo) {
    f.in_fifo = false;
    // Answers come back roughly in order: drop the dead entries at the head now, so the FIFO
    // stays as short as the number of attempts in flight.
    while (!deadlines_.empty() && deadlineIsStale(deadlines_.front())) deadlines_.pop_front();
  }
  if (f.udp != nullptr) {
    UdpSocket* s = f.udp;
    f.udp = nullptr;
    releaseSlot(*s, f.udp_slot);
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

void Forwarder::onAttemptTimeout(uint64_t flight_id) {
  Flight* f = find(flight_id);
  if (f == nullptr || f->timer == 0) return;
  f->timer = 0;
  attemptTimedOut(*f);
}

void Forwarder::attemptTimedOut(Flight& f) {
  // A lost exchange retires its socket: the retry goes out from another source port.
  if (f.udp != nullptr) retireSocket(*f.udp);
  attemptFailed(f, true);
}

bool Forwarder::deadlineIsStale(const Deadline& d) {
  const Flight* f = find(d.flight);
  return f == nullptr || !f->in_fifo || f->seq != d.seq;
}

void Forwarder::armDeadlineTimer() {
  if (deadline_timer_ != 0 || deadlines_.empty()) return;
  const auto delay = std::max<std::chrono::nanoseconds>(std::chrono::nanoseconds::zero(),
                                                        deadlines_.front().at - loop_.clockNow());
  deadline_timer_ = loop_.addTimer(delay, [this] { onDeadlineTimer(); });
}

void Forwarder::onDeadlineTimer() {
  deadline_timer_ = 0;
  const auto now = loop_.clockNow();
  // Bounded: every pass pops one entry; entries pushed meanwhile expire after `now`.
  while (!deadlines_.empty()) {
    const Deadline d = deadlines_.front();
    if (deadlineIsStale(d)) {
      deadlines_.pop_front();
      continue;
    }
    if (d.at > now) break;
    deadlines_.pop_front();
    Flight* f = find(d.flight);
    if (f == nullptr) continue;  // cannot happen: not stale
    f->in_fifo = false;
    attemptTimedOut(*f);
  }
  armDeadlineTimer();
}

void Forwarder::onUdpReadable(UdpSocket& s) {
  if (!udp_bufs_) {
    udp_bufs_ = std::make_unique_for_overwrite<uint8_t[]>(kUdpRecvBatch * dns::kMaxMessageSize);
  }
  std::array<mmsghdr, kUdpRecvBatch> msgs{};
  std::array<iovec, kUdpRecvBatch> iov{};
  for (size_t i = 0; i < kUdpRecvBatch; ++i) {
    iov[i].iov_base = udp_bufs_.get() + i * dns::kMaxMessageSize;
    iov[i].iov_len = dns::kMaxMessageSize;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  // Bounded per wakeup so a flood of strays cannot monopolise the loop (level-triggered epoll
  // brings us back).
  for (int round = 0; round < 4 && s.fd_; ++round) {
    int n = ::recvmmsg(s.fd_.get(), msgs.data(), kUdpRecvBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      failSocket(s);  // ECONNREFUSED: ICMP port unreachable on the connected socket
      return;
    }
    for (int i = 0; i < n; ++i) {
      const dns::ByteView msg(udp_bufs_.get() + size_t(i) * dns::kMaxMessageSize,
                              msgs[size_t(i)].msg_len);
      UdpSocket::Slot* slot =
          msg.size() >= dns::kHeaderSize ? s.findSlot(dns::Header::read(msg).id) : nullptr;
      Flight* f = slot != nullptr ? find(slot->flight) : nullptr;
      if (f == nullptr || f->udp != &s || !handleReply(*f, msg, false)) ++stats_.stray_replies;
    }
    if (size_t(n) < kUdpRecvBatch) return;
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
  if (dns::parseResponse(msg, resp_) != dns::Error::kNone) {
    if (!tcp) return false;
    attemptFailed(f, true);
    return true;
  }
  if (!dns::questionMatches(resp_.question, f.question)) {
    if (!tcp) return false;
    // On TCP it cannot be a spoofed stray: the upstream answered something else (CoreDNS: FORMERR).
    finish(f.id, Result::Status::kFormErr, {}, nullptr, f.upstream);
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
    const double secs = std::chrono::duration<double>(loop_.clockNow() - f.started).count();
    obs_->onExchange(f.upstream, h.rcode(), secs);
  }
  finish(f.id, Result::Status::kOk, msg, &resp_, f.upstream);
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
  Flight* fp = find(flight_id);
  if (fp == nullptr) return;
  Flight& f = *fp;
  if (f.keyed) by_key_.erase(f.key_hash);
  f.keyed = false;
  endAttempt(f);
  // The record stays out of the free list until every waiter ran: a callback may resolve()
  // again (a new flight gets another record) but cannot see this one (find() fails from here).
  f.id = 0;
  std::vector<Callback> waiters = std::move(f.waiters);

  Result r;
  r.status = status;
  r.packet = pkt;
  r.parsed = parsed;
  r.upstream = upstream;
  switch (status) {
    case Result::Status::kOk:
      break;
    case Result::Status::kServFail:
      r.error = shut_down_ ? kErrShutdown : kErrUpstreamsFailed;
      break;
    case Result::Status::kFormErr:
      r.error = kErrOtherQuestion;
      break;
    case Result::Status::kRefused:
      r.error = kErrLimitExceeded;
      break;
  }
  for (auto& done : waiters) {
    --inflight_;
    shared_->releaseConcurrent();
    done(r);
  }
  f.id = flight_id;  // for releaseFlight's index
  releaseFlight(f, std::move(waiters));
}

void Forwarder::shutdown() {
  shut_down_ = true;
  std::vector<uint64_t> ids;
  for (const auto& f : flight_slots_) {
    if (f && f->id != 0) ids.push_back(f->id);
  }
  for (uint64_t id : ids) {
    Flight* f = find(id);
    if (f != nullptr) finish(id, Result::Status::kServFail, {}, nullptr, f->upstream);
  }
  while (!udp_sockets_.empty()) closeSocket(*udp_sockets_.back());
  sends_.clear();
  loop_.cancelRoundEnd(this);
  sends_requested_ = false;
  if (deadline_timer_ != 0) loop_.cancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  deadlines_.clear();
  tcp_.closeAll();
}

}  // namespace nld::upstream
