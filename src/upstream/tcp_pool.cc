#include "upstream/tcp_pool.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <unordered_map>

#include "common/log.h"
#include "common/random.h"
#include "dns/message.h"
#include "net/address.h"
#include "net/fd.h"

namespace nld::upstream {

/// One pipelined TCP connection. Owned by TcpPool (shared_ptr so deletion can be deferred
/// through EventLoop::post). Loop thread only.
class TcpConn final : public net::IoHandler {
 public:
  struct Outstanding {
    uint64_t token;
    bool reused;  // the connection had completed an exchange before this query was sent
  };

  TcpConn(TcpPool& pool, int upstream, net::Fd fd, bool connecting)
      : pool_(&pool), upstream_(upstream), fd_(std::move(fd)), connecting_(connecting) {}
  ~TcpConn() override = default;

  void onEvents(uint32_t ev) override;

  bool usable() const { return fd_ && !draining_ && outstanding_.size() < kMaxPipelined; }
  /// Appends one framed message; writes right away when possible. Never reports errors
  /// synchronously: a broken socket shows up as EPOLLERR/EPOLLHUP on the next loop round.
  void enqueue(dns::ByteView msg);
  void updateMask();
  void flush();
  bool readSome();  // false when the connection was broken (and released)
  void processFrames();
  void armIdle();
  void cancelIdle();

 private:
  // The pool drives its connections' state (queue, drain, release): it reads and writes these.
  friend class TcpPool;

  TcpPool* pool_;
  int upstream_;
  net::Fd fd_;
  bool connecting_;
  bool draining_ = false;  // an attempt timed out on it: no new queries, close once empty
  uint32_t mask_ = 0;
  uint64_t exchanges_ = 0;
  std::vector<uint8_t> wbuf_;
  size_t woff_ = 0;
  std::vector<uint8_t> rbuf_;
  size_t rlen_ = 0;
  std::unordered_map<uint16_t, Outstanding> outstanding_;
  net::EventLoop::TimerId idle_timer_ = 0;
};

namespace {
constexpr size_t kReadChunk = 16 * 1024;
}

void TcpConn::enqueue(dns::ByteView msg) {
  const size_t old = wbuf_.size();
  wbuf_.resize(old + 2 + msg.size());
  dns::store16(wbuf_.data() + old, static_cast<uint16_t>(msg.size()));
  std::memcpy(wbuf_.data() + old + 2, msg.data(), msg.size());
  if (!connecting_) flush();
  updateMask();
}

void TcpConn::flush() {
  while (fd_ && woff_ < wbuf_.size()) {
    ssize_t w = ::send(fd_.get(), wbuf_.data() + woff_, wbuf_.size() - woff_, MSG_NOSIGNAL);
    if (w > 0) {
      woff_ += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    break;  // EAGAIN: wait for EPOLLOUT; a hard error is reported by epoll (ERR/HUP)
  }
  if (woff_ == wbuf_.size()) {
    wbuf_.clear();
    woff_ = 0;
  }
}

void TcpConn::updateMask() {
  if (!fd_) return;
  uint32_t want = EPOLLIN | ((connecting_ || woff_ < wbuf_.size()) ? EPOLLOUT : 0u);
  if (want != mask_) {
    try {
      pool_->loop_.modify(fd_.get(), want, this);
      mask_ = want;
    } catch (const std::exception& e) {  // cannot happen for a registered fd; keep the old mask
      log::error("plugin/forward: epoll modify failed: {}", e.what());
    }
  }
}

void TcpConn::armIdle() {
  if (idle_timer_ != 0 || !fd_) return;
  TcpPool* pool = pool_;
  idle_timer_ = pool_->loop_.addTimer(pool_->shared_.settings().expire, [this, pool] {
    idle_timer_ = 0;
    pool->release(this);
  });
}

void TcpConn::cancelIdle() {
  if (idle_timer_ != 0) {
    pool_->loop_.cancelTimer(idle_timer_);
    idle_timer_ = 0;
  }
}

void TcpConn::onEvents(uint32_t ev) {
  if (!fd_) return;  // released; a stale event of the current dispatch round
  if (connecting_) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
      pool_->onConnBroken(this, false);
      return;
    }
    connecting_ = false;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    if (!readSome()) return;
  }
  if (!fd_) return;
  if (ev & EPOLLOUT) flush();
  updateMask();
}

bool TcpConn::readSome() {
  for (;;) {
    if (rbuf_.size() - rlen_ < kReadChunk) rbuf_.resize(rlen_ + kReadChunk);
    ssize_t r = ::recv(fd_.get(), rbuf_.data() + rlen_, rbuf_.size() - rlen_, 0);
    if (r > 0) {
      rlen_ += static_cast<size_t>(r);
      processFrames();
      if (!fd_) return false;
      continue;
    }
    if (r == 0) {
      pool_->onConnBroken(this, true);
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    pool_->onConnBroken(this, errno == ECONNRESET || errno == EPIPE);
    return false;
  }
}

void TcpConn::processFrames() {
  size_t pos = 0;
  while (fd_ && rlen_ - pos >= 2) {
    const size_t len = dns::load16(rbuf_.data() + pos);
    if (len < dns::kHeaderSize) {  // cannot be a DNS message: the stream is out of sync
      pool_->onConnBroken(this, false);
      return;
    }
    if (rlen_ - pos - 2 < len) break;
    const uint8_t* msg = rbuf_.data() + pos + 2;
    pos += 2 + len;
    auto it = outstanding_.find(dns::load16(msg));
    if (it == outstanding_.end()) continue;  // a late reply to a cancelled query
    const uint64_t token = it->second.token;
    outstanding_.erase(it);
    ++exchanges_;
    if (outstanding_.empty()) {
      if (draining_) {
        pool_->sink_.onTcpReply(token, dns::ByteView(msg, len));
        if (fd_) pool_->release(this);
        return;
      }
      armIdle();
    }
    // The sink may send more queries on this connection or even close every connection; the
    // buffer stays valid (deletion is deferred) and the loop re-checks fd_.get().
    pool_->sink_.onTcpReply(token, dns::ByteView(msg, len));
  }
  if (!fd_) return;
  if (pos > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + pos, rlen_ - pos);
    rlen_ -= pos;
  }
}

// ---- TcpPool ----

TcpPool::TcpPool(net::EventLoop& loop, SharedForwardState& shared, TcpSink& sink,
                 ForwardObserver* observer)
    : loop_(loop),
      shared_(shared),
      sink_(sink),
      observer_(observer),
      pools_(shared.upstreamCount()) {}

TcpPool::~TcpPool() { closeAll(); }

size_t TcpPool::connections(int upstream) const {
  return pools_[static_cast<size_t>(upstream)].size();
}

TcpTicket TcpPool::send(int upstream, uint64_t token, dns::MutableBytes msg, bool fresh) {
  auto& pool = pools_[static_cast<size_t>(upstream)];
  TcpConn* conn = nullptr;
  bool reused = false;
  if (!fresh) {
    for (auto& c : pool) {
      if (c->usable()) {
        conn = c.get();
        reused = true;
        break;
      }
    }
  }
  if (conn == nullptr) {
    if (pool.size() >= kMaxConnsPerUpstream) {
      // Every connection is full or draining: replace a draining one if there is one.
      for (auto& c : pool) {
        if (c->draining_) {
          release(c.get());
          break;
        }
      }
      if (pool.size() >= kMaxConnsPerUpstream) {
        TcpTicket t;
        t.exhausted = true;
        return t;
      }
    }
    const net::SockAddr& a = shared_.addr(static_cast<size_t>(upstream));
    net::Fd owned(::socket(a.af(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!owned) return {};
    const int fd = owned.get();  // borrowed: the connection owns it from here
    bool connecting = false;
    if (::connect(fd, a.get(), a.len) < 0) {
      if (errno != EINPROGRESS) return {};
      connecting = true;
    }
    auto c = std::make_shared<TcpConn>(*this, upstream, std::move(owned), connecting);
    c->mask_ = EPOLLIN | EPOLLOUT;
    try {
      loop_.add(fd, c->mask_, c.get());
    } catch (const std::exception& e) {  // EventLoop reports epoll_ctl failure by throwing
      log::error("plugin/forward: cannot register TCP socket: {}", e.what());
      TcpTicket t;
      t.exhausted = true;  // local resource problem: no upstream failure
      return t;
    }
    conn = c.get();
    pool.push_back(std::move(c));
  }
  if (observer_) observer_->onConnCache(upstream, "tcp", reused);

  uint16_t id = dns::load16(msg.data());
  for (int i = 0; i < 64 && conn->outstanding_.count(id) != 0; ++i) {
    id = static_cast<uint16_t>(random64());
  }
  if (conn->outstanding_.count(id) != 0) return {};
  dns::setId(msg.data(), id);
  conn->cancelIdle();
  conn->outstanding_.emplace(id, TcpConn::Outstanding{token, conn->exchanges_ > 0});
  conn->enqueue(msg);
  return TcpTicket{conn, id, reused};
}

void TcpPool::cancel(const TcpTicket& t) {
  if (t.conn == nullptr) return;
  TcpConn* c = t.conn;
  c->outstanding_.erase(t.id);
  if (!c->fd_) return;
  c->draining_ = true;  // it may be wedged: send nothing new on it
  if (c->outstanding_.empty()) release(c);
}

void TcpPool::release(TcpConn* c) {
  c->cancelIdle();
  if (c->fd_) {
    loop_.remove(c->fd_.get());
    c->fd_.reset();
  }
  auto& pool = pools_[static_cast<size_t>(c->upstream_)];
  for (auto it = pool.begin(); it != pool.end(); ++it) {
    if (it->get() == c) {
      std::shared_ptr<TcpConn> keep = std::move(*it);
      pool.erase(it);
      loop_.post([keep] {});  // deferred deletion: events of this round may still name it
      return;
    }
  }
}

void TcpPool::onConnBroken(TcpConn* c, bool peer_closed) {
  auto outstanding = std::move(c->outstanding_);
  c->outstanding_.clear();
  const int upstream = c->upstream_;
  release(c);
  bool counted = false;
  for (const auto& [id, o] : outstanding) {
    const bool cached_close = peer_closed && o.reused;
    if (!cached_close && !counted) {
      shared_.recordFailure(static_cast<size_t>(upstream));
      counted = true;
    }
  }
  for (const auto& [id, o] : outstanding) sink_.onTcpFailed(o.token, peer_closed && o.reused);
}

void TcpPool::closeAll() {
  for (auto& pool : pools_) {
    while (!pool.empty()) release(pool.back().get());
  }
}

}  // namespace nld::upstream
