#include "server/tcp_handler.h"

#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "server/metrics.h"
#include "server/tcp_framer.h"

namespace nld::server {

using net::Clock;

namespace {

// Client TCP connections of the whole process (every worker and listener).
std::atomic<size_t> g_connections{0};

// How many descriptors client TCP connections may use together: the soft RLIMIT_NOFILE less a
// reserve (a quarter, at least 64) for what must keep working when clients take the rest:
// upstream sockets (a miss needs one), the listeners, the health and metrics servers. The
// reserve never exceeds half: under a very low limit TCP still gets some connections (with a
// budget of 0 every connection, even one accepted after an eviction, would be refused).
size_t connectionFdBudget() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  const size_t cur = size_t(rl.rlim_cur);
  const size_t reserve = std::min(std::max<size_t>(64, cur / 4), cur / 2);
  return cur - reserve;
}

}  // namespace

class TcpConnection final : public net::IoHandler,
                            public net::RoundEndHook,
                            public ReplyFactory,
                            public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(TcpListener& owner, net::Fd fd, net::SockAddr peer)
      : owner_(owner),
        loop_(owner.loop_),
        limits_(owner.limits_),
        fd_(std::move(fd)),
        peer_(peer) {}
  ~TcpConnection() override {
    if (flush_requested_) loop_.cancelRoundEnd(this);
  }

  void start() {
    loop_.add(fd_.get(), EPOLLIN, this);
    quiet_since_ = last_progress_ = loop_.now();
    settle();
  }

  /// Closes at once (timeout, error, eviction, stop). The descriptor is closed here, not at
  /// destruction, so an eviction frees one for the accept() that needed it.
  void close() { closeNow(SHUT_RDWR); }

  // Quiescent-list links (TcpListener's intrusive list, oldest first).
  TcpConnection* quiet_prev = nullptr;
  TcpConnection* quiet_next = nullptr;
  bool in_quiet = false;

  /// Re-evaluates the connection's state after anything changed: the quiescent list, buffers
  /// to free, reading to resume, closing (peer half-closed, drain), the deadline timer.
  void settle() {
    for (int round = 0; round < 16 && !closed_; ++round) {
      const bool quiet = inflight_ == 0 && out_.empty();
      if (quiet && (!in_quiet || touched_)) {
        owner_.quiescentPush(this);  // (re)enters at the end: the most recently active
        quiet_since_ = loop_.now();
        touched_ = false;
      } else if (!quiet && in_quiet) {
        owner_.quiescentRemove(this);
      }
      if (quiet && out_.capacity() > 0) {
        std::vector<uint8_t>().swap(out_);  // nothing to write: hold no buffer
        out_pos_ = 0;
        account();
      }
      if (quiet && peer_closed_) {
        close();  // every answer written to a half-closed connection
        return;
      }
      if (in_read_) break;  // the read in progress carries on; it settles again at its end
      bool again = false;
      if (reading_paused_ && !peer_closed_ && canTake()) {
        pauseReading(false);
        if (in_.buffered() > 0) {  // complete frames kept while paused
          readSome();
          again = true;
        }
      } else if (owner_.draining_ && quiet && in_.buffered() == 0) {
        // Drain: a last look for queries the client has already sent; if none, close.
        readSome();
        if (closed_) return;
        if (inflight_ == 0 && out_.empty() && in_.buffered() == 0) {
          closeNow(SHUT_WR);  // FIN after the answers already written
          return;
        }
        again = true;
      }
      if (!again) break;
    }
    if (!closed_) schedule();
  }

  // net::IoHandler
  void onEvents(uint32_t events) override {
    if (closed_) return;
    auto self = shared_from_this();  // stay alive through this call
    if (events & (EPOLLERR | EPOLLHUP)) {
      close();
      return;
    }
    if (events & EPOLLOUT) flush();
    if (!closed_ && (events & EPOLLIN)) readSome();
    settle();
  }

  // ReplyFactory
  Reply make() override {
    ++inflight_;
    std::weak_ptr<TcpConnection> weak = weak_from_this();
    return [weak](dns::ByteView answer) {
      auto c = weak.lock();
      if (!c) return;
      c->answered(answer);
    };
  }

 private:
  void closeNow(int how) {
    if (closed_) return;
    closed_ = true;
    loop_.remove(fd_.get());
    if (flush_requested_) loop_.cancelRoundEnd(this);
    flush_requested_ = false;
    if (timer_) loop_.cancelTimer(timer_);
    timer_ = 0;
    ::shutdown(fd_.get(), how);
    fd_.reset();
    in_.release();
    std::vector<uint8_t>().swap(out_);
    account();
    if (in_quiet) owner_.quiescentRemove(this);
    // Deferred destruction: events for this handler may still be queued in this round.
    auto self = shared_from_this();
    owner_.closed(this);
    loop_.post([self] {});
  }

  bool canTake() const {
    return inflight_ < limits_.max_inflight_per_conn && !want_write_ && !peer_closed_;
  }

  /// When the connection is closed unless something happens first.
  Clock::time_point deadline() const {
    Clock::time_point d;
    if (inflight_ > 0 || !out_.empty()) {
      d = last_progress_ + limits_.idle;  // busy, but answers or writes must move
    } else {
      d = quiet_since_ + (served_any_ ? limits_.idle : limits_.first_read);
    }
    // A started frame must be complete in time, however slowly its bytes trickle in.
    if (in_.buffered() > 0 && !reading_paused_) d = std::min(d, frame_start_ + limits_.frame);
    return d;
  }

  /// One timer per connection, re-armed lazily: activity only moves the deadline (no timer
  /// churn per read); the timer re-checks when it fires.
  void schedule() {
    const Clock::time_point d = deadline();
    if (timer_ != 0 && timer_at_ <= d) return;
    if (timer_ != 0) loop_.cancelTimer(timer_);
    timer_at_ = d;
    const auto delay = std::max(d - loop_.now(), Clock::duration::zero());
    std::weak_ptr<TcpConnection> weak = weak_from_this();
    timer_ = loop_.addTimer(delay, [weak] {
      auto c = weak.lock();
      if (!c) return;
      c->timer_ = 0;
      if (c->closed_) return;
      if (c->loop_.now() >= c->deadline()) {
        c->close();
      } else {
        c->schedule();
      }
    });
  }

  void readSome() {
    // Answers produced synchronously while draining the input (cache hits) are written with
    // one send() after the batch instead of one per answer.
    in_read_ = true;
    batching_ = true;
    readLoop();
    batching_ = false;
    in_read_ = false;
    if (!closed_ && !out_.empty()) flush();
  }

  void readLoop() {
    // Complete frames kept while reading was paused come first.
    if (in_.buffered() > 0 && !takeFrames()) return;
    for (int reads = 0; reads < 4; ++reads) {  // bounded work per event (level-triggered)
      uint8_t buf[16384];
      ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
      if (n == 0) {
        // Client half-closed: answer what is in flight, then close (settle).
        peer_closed_ = true;
        pauseReading(true);
        return;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        close();
        return;
      }
      const bool was_mid_frame = in_.buffered() > 0;
      const uint64_t taken_before = frames_taken_;
      in_.feed(dns::ByteView(buf, size_t(n)));
      const bool go = takeFrames();
      if (closed_) return;
      in_.keep();  // only the unconsumed rest (normally part of one frame) is copied
      if (in_.buffered() > 0 && (!was_mid_frame || frames_taken_ != taken_before)) {
        frame_start_ = loop_.now();  // a new frame began in this read
      }
      account();
      if (closed_ || !go || size_t(n) < sizeof(buf)) return;
    }
  }

  /// Handles the complete frames buffered, while the connection may take more. Returns false
  /// when it stopped (closed, or paused: too many in flight or answers not read by the client).
  bool takeFrames() {
    dns::ByteView msg;
    for (;;) {
      if (!canTake()) {
        pauseReading(true);
        return false;
      }
      if (!in_.next(msg)) return true;
      ++frames_taken_;
      served_any_ = true;
      touched_ = true;  // active: back to the end of the quiescent list when quiet again
      last_progress_ = loop_.now();
      handleFrame(msg);
      if (closed_) return false;
    }
  }

  void handleFrame(dns::ByteView msg) {
    uint8_t* scratch = owner_.scratch_.get();
    size_t n = owner_.pipeline_.handle(msg, peer_, owner_.listener_, Proto::kTcp,
                                       dns::MutableBytes(scratch, dns::kMaxMessageSize), *this);
    if (n == Pipeline::kPending) return;
    if (n == 0) {
      // Malformed beyond answering: close the connection (RFC 7766 §6.2.4 allows it).
      close();
      return;
    }
    enqueue(dns::ByteView(scratch, n));
  }

  void answered(dns::ByteView answer) {
    if (inflight_ > 0) --inflight_;
    if (closed_) return;
    if (answer.empty()) {
      // The query was dropped as unanswerable (handed to its owner worker, which found it
      // malformed): close, exactly as when it is found malformed on this worker.
      close();
      return;
    }
    last_progress_ = loop_.now();
    if (in_read_) {
      enqueue(answer);  // answered synchronously inside a read: written at the read's end
      return;
    }
    // Answers that arrive later (from the upstream, or from the worker that owns the name) come
    // one posted task or upstream datagram at a time, often many in one loop round: they are
    // buffered and written with one send() at the end of the round, not one send() each.
    batching_ = true;
    enqueue(answer);
    batching_ = false;
    if (!closed_ && !flush_requested_) {
      flush_requested_ = true;
      loop_.requestRoundEnd(this);
    }
  }

  // net::RoundEndHook: the answers that arrived in this round, in one write.
  void onRoundEnd() override {
    flush_requested_ = false;
    if (closed_) return;
    auto self = shared_from_this();  // stay alive through this call
    if (!out_.empty()) flush();
    settle();
  }

  void enqueue(dns::ByteView answer) {
    if (out_.size() - out_pos_ + 2 + answer.size() > limits_.max_write_buffer) {
      close();  // the client does not read its answers
      return;
    }
    if (out_pos_ > 0) {
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_pos_));
      out_pos_ = 0;
    }
    uint8_t lenbuf[2];
    dns::store16(lenbuf, static_cast<uint16_t>(answer.size()));
    out_.insert(out_.end(), lenbuf, lenbuf + 2);
    out_.insert(out_.end(), answer.begin(), answer.end());
    account();
    if (!closed_ && !batching_) flush();
  }

  void flush() {
    while (out_pos_ < out_.size()) {
      ssize_t n = ::send(fd_.get(), out_.data() + out_pos_, out_.size() - out_pos_,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          setWriteInterest(true);
          return;
        }
        close();
        return;
      }
      out_pos_ += size_t(n);
      last_progress_ = loop_.now();
    }
    out_.clear();
    out_pos_ = 0;
    setWriteInterest(false);
  }

  /// Keeps the listener's total of buffer bytes; the connection whose growth takes the total
  /// over the budget is closed.
  void account() {
    const size_t now = in_.capacity() + out_.capacity();
    const bool grew = now > accounted_;
    owner_.buffered_ = owner_.buffered_ - accounted_ + now;
    accounted_ = now;
    if (grew && owner_.buffered_ > limits_.max_buffered) close();
  }

  void setWriteInterest(bool on) {
    if (closed_ || on == want_write_) return;
    want_write_ = on;
    updateMask();
  }
  void pauseReading(bool paused) {
    if (closed_ || paused == reading_paused_) return;
    reading_paused_ = paused;
    updateMask();
  }
  void updateMask() {
    uint32_t ev =
        (reading_paused_ ? 0u : uint32_t(EPOLLIN)) | (want_write_ ? uint32_t(EPOLLOUT) : 0u);
    loop_.modify(fd_.get(), ev, this);
  }

  TcpListener& owner_;
  net::EventLoop& loop_;
  const TcpLimits& limits_;
  net::Fd fd_;
  net::SockAddr peer_;
  TcpFramer in_;
  std::vector<uint8_t> out_;
  size_t out_pos_ = 0;
  size_t accounted_ = 0;  // bytes of buffers counted in owner_.buffered_
  size_t inflight_ = 0;
  uint64_t frames_taken_ = 0;
  Clock::time_point quiet_since_{};    // nothing in flight and nothing to write since then
  Clock::time_point last_progress_{};  // last query taken, answer produced or bytes written
  Clock::time_point frame_start_{};    // first byte of the partial frame buffered
  Clock::time_point timer_at_{};
  net::EventLoop::TimerId timer_ = 0;
  bool closed_ = false;
  bool peer_closed_ = false;
  bool want_write_ = false;
  bool reading_paused_ = false;
  bool batching_ = false;
  bool flush_requested_ = false;  // a round-end write of later answers is pending
  bool in_read_ = false;
  bool served_any_ = false;
  bool touched_ = false;  // a query was taken since the connection was last put in the list
};

TcpListener::TcpListener(net::EventLoop& loop, Pipeline& pipeline, net::Fd fd, TcpLimits limits,
                         ServerMetrics* metrics)
    : loop_(loop),
      pipeline_(pipeline),
      fd_(std::move(fd)),
      limits_(limits),
      metrics_(metrics),
      scratch_(std::make_unique_for_overwrite<uint8_t[]>(dns::kMaxMessageSize)) {}

TcpListener::~TcpListener() { stop(); }

void TcpListener::start() {
  started_ = true;
  // Not while draining (a reload re-applies the plan) nor while backing off after EMFILE.
  if (!registered_ && !draining_ && backoff_timer_ == 0) {
    loop_.add(fd_.get(), EPOLLIN, this);
    registered_ = true;
  }
}

void TcpListener::undrain() {
  draining_ = false;
  on_drained_ = nullptr;
  if (started_) start();
}

void TcpListener::stopAccepting() {
  if (registered_) {
    loop_.remove(fd_.get());  // the socket stays open (closed by the destructor)
    registered_ = false;
  }
  if (backoff_timer_ != 0) loop_.cancelTimer(backoff_timer_);
  backoff_timer_ = 0;
}

std::vector<std::shared_ptr<TcpConnection>> TcpListener::connectionList() const {
  std::vector<std::shared_ptr<TcpConnection>> conns;
  conns.reserve(conns_.size());
  for (const auto& [p, c] : conns_) conns.push_back(c);
  return conns;
}

void TcpListener::stop() {
  started_ = false;
  stopAccepting();
  for (const auto& c : connectionList()) c->close();
  conns_.clear();
}

void TcpListener::drain(std::function<void()> on_drained) {
  draining_ = true;
  on_drained_ = std::move(on_drained);
  stopAccepting();  // another process may accept on the same socket meanwhile
  for (const auto& c : connectionList()) c->settle();  // idle ones close now, the others when idle
  if (conns_.empty() && on_drained_) {
    loop_.post(std::move(on_drained_));
    on_drained_ = nullptr;
  }
}

void TcpListener::closed(TcpConnection* c) {
  if (conns_.erase(c) > 0) g_connections.fetch_sub(1, std::memory_order_relaxed);
  if (draining_ && conns_.empty() && on_drained_) {
    loop_.post(std::move(on_drained_));  // not from inside the connection's own call
    on_drained_ = nullptr;
  }
}

void TcpListener::quiescentPush(TcpConnection* c) {
  if (c->in_quiet) quiescentRemove(c);
  c->in_quiet = true;
  c->quiet_prev = quiet_tail_;
  c->quiet_next = nullptr;
  if (quiet_tail_ != nullptr) {
    quiet_tail_->quiet_next = c;
  } else {
    quiet_head_ = c;
  }
  quiet_tail_ = c;
}

void TcpListener::quiescentRemove(TcpConnection* c) {
  if (!c->in_quiet) return;
  if (c->quiet_prev != nullptr) {
    c->quiet_prev->quiet_next = c->quiet_next;
  } else {
    quiet_head_ = c->quiet_next;
  }
  if (c->quiet_next != nullptr) {
    c->quiet_next->quiet_prev = c->quiet_prev;
  } else {
    quiet_tail_ = c->quiet_prev;
  }
  c->quiet_prev = c->quiet_next = nullptr;
  c->in_quiet = false;
}

bool TcpListener::evictIdlest() {
  if (quiet_head_ == nullptr) return false;
  auto it = conns_.find(quiet_head_);
  if (it == conns_.end()) return false;
  auto victim = it->second;  // alive through close()
  victim->close();
  if (metrics_ != nullptr) metrics_->onTcpEvicted();
  return true;
}

void TcpListener::pauseAccepting() {
  const int err = errno;
  if (registered_) {
    loop_.remove(fd_.get());
    registered_ = false;
  }
  if (metrics_ != nullptr) metrics_->onTcpAcceptPaused();
  // One line a minute at most: the condition lasts as long as the descriptors are used up.
  const auto now = loop_.now();
  if (last_backoff_log_ == Clock::time_point{} ||
      now - last_backoff_log_ >= std::chrono::minutes(1)) {
    last_backoff_log_ = now;
    log::warn(
        "DNS over TCP: accept failed ({}), not accepting for {} ms "
        "(nodelocaldns_tcp_accept_paused_total)",
        std::strerror(err), limits_.accept_backoff.count());
  }
  if (backoff_timer_ != 0) return;
  backoff_timer_ = loop_.addTimer(limits_.accept_backoff, [this] {
    backoff_timer_ = 0;
    if (started_ && !draining_ && !registered_) {
      loop_.add(fd_.get(), EPOLLIN, this);
      registered_ = true;
    }
  });
}

void TcpListener::onEvents(uint32_t) {
  if (!registered_) return;  // events fetched before the listener left epoll
  bool evicted_last = false;
  const size_t fd_budget = connectionFdBudget();  // follows a limit changed at run time
  for (int i = 0; i < 64; ++i) {
    net::SockAddr peer;
    peer.len = sizeof(peer.storage);
    net::Fd cfd(::accept4(fd_.get(), peer.get(), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!cfd) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // accept() takes a descriptor before it looks at the queue, so EMFILE does not mean a
        // connection is waiting: if none is, there is nothing to do (epoll reports the next).
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) != 1) return;
        // Out of descriptors (or kernel memory): free one by evicting the idlest connection
        // and try again; with nothing to evict, leave epoll for a while (level-triggered, the
        // listener would be reported again at once: a busy loop).
        // An eviction that did not help (another thread took the descriptor) backs off too.
        if (!evicted_last && evictIdlest()) {
          evicted_last = true;
          continue;
        }
        errno = err;
        pauseAccepting();
      }
      return;  // EAGAIN, or an error of this one connection attempt
    }
    evicted_last = false;
    const bool full = conns_.size() >= limits_.max_connections ||
                      g_connections.load(std::memory_order_relaxed) >= fd_budget;
    if (full && !evictIdlest()) {
      cfd.reset();  // every connection is busy
      if (metrics_ != nullptr) metrics_->onTcpRefused();
      continue;
    }
    int one = 1;
    setsockopt(cfd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_shared<TcpConnection>(*this, std::move(cfd), peer);
    conns_.emplace(c.get(), c);
    g_connections.fetch_add(1, std::memory_order_relaxed);
    c->start();
  }
}

}  // namespace nld::server
