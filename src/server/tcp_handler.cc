#include "server/tcp_handler.h"

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nld::server {

class TcpConnection final : public net::IoHandler,
                            public ReplyFactory,
                            public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(TcpListener& owner, int fd, SockAddr peer)
      : owner_(owner), loop_(owner.loop_), fd_(fd), peer_(peer),
        scratch_(dns::kMaxMessageSize) {}
  ~TcpConnection() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void start() {
    loop_.add(fd_, EPOLLIN, this);
    armIdle(owner_.limits_.first_read);
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    loop_.remove(fd_);
    if (timer_) loop_.cancelTimer(timer_);
    timer_ = 0;
    ::shutdown(fd_, SHUT_RDWR);
    // Deferred destruction: events for this fd may still be queued in this dispatch round.
    auto self = shared_from_this();
    owner_.closed(this);
    loop_.post([self] {});
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
  void armIdle(std::chrono::milliseconds d) {
    if (timer_) loop_.cancelTimer(timer_);
    std::weak_ptr<TcpConnection> weak = weak_from_this();
    timer_ = loop_.addTimer(d, [weak] {
      auto c = weak.lock();
      if (!c) return;
      c->timer_ = 0;
      // Idle: nothing in flight and nothing to write.
      if (c->inflight_ == 0 && c->out_.empty()) {
        c->close();
      } else {
        c->armIdle(c->owner_.limits_.idle);
      }
    });
  }

  void readSome() {
    // Answers produced synchronously while draining the input (cache hits) are written with
    // one send() after the batch instead of one per answer.
    batching_ = true;
    readLoop();
    batching_ = false;
    if (!closed_ && !out_.empty()) flush();
  }

  void readLoop() {
    for (;;) {
      if (inflight_ >= owner_.limits_.max_inflight_per_conn) {
        pauseReading(true);
        return;
      }
      // Process every complete frame already buffered before reading more.
      if (processFrames()) continue;
      if (closed_) return;
      uint8_t buf[16384];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n == 0) {
        // Client half-closed: answer what is in flight, then close.
        peer_closed_ = true;
        pauseReading(true);
        if (inflight_ == 0 && out_.empty()) close();
        return;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        close();
        return;
      }
      in_.insert(in_.end(), buf, buf + n);
      armIdle(owner_.limits_.idle);
    }
  }

  // Handles one complete length-prefixed message if buffered. Returns true if it did.
  bool processFrames() {
    if (in_.size() - in_pos_ < 2) {
      compactInput();
      return false;
    }
    const size_t len = dns::load16(in_.data() + in_pos_);
    if (in_.size() - in_pos_ < 2 + len) {
      compactInput();
      return false;
    }
    const dns::ByteView pkt(in_.data() + in_pos_ + 2, len);
    size_t n = owner_.pipeline_.handle(pkt, peer_, owner_.listener_, Proto::Tcp,
                                       dns::MutableBytes(scratch_), *this);
    in_pos_ += 2 + len;
    if (n == Pipeline::kPending) return true;
    if (n == 0) {
      // Malformed beyond answering: close the connection (RFC 7766 §6.2.4 allows it).
      close();
      return false;
    }
    enqueue(dns::ByteView(scratch_.data(), n));
    return true;
  }

  void compactInput() {
    if (in_pos_ == 0) return;
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
    in_pos_ = 0;
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
    enqueue(answer);
    if (!closed_ && reading_paused_ && !peer_closed_ &&
        inflight_ < owner_.limits_.max_inflight_per_conn) {
      pauseReading(false);
      readSome();
    }
    if (!closed_ && peer_closed_ && inflight_ == 0 && out_.empty()) close();
  }

  void enqueue(dns::ByteView answer) {
    uint8_t lenbuf[2];
    dns::store16(lenbuf, static_cast<uint16_t>(answer.size()));
    out_.insert(out_.end(), lenbuf, lenbuf + 2);
    out_.insert(out_.end(), answer.begin(), answer.end());
    if (out_.size() > owner_.limits_.max_write_buffer) {
      close();
      return;
    }
    if (!batching_) flush();
  }

  void flush() {
    while (out_pos_ < out_.size()) {
      ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_,
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
    }
    out_.clear();
    out_pos_ = 0;
    setWriteInterest(false);
    if (peer_closed_ && inflight_ == 0) close();
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
    uint32_t ev = (reading_paused_ ? 0u : uint32_t(EPOLLIN)) | (want_write_ ? uint32_t(EPOLLOUT) : 0u);
    loop_.modify(fd_, ev, this);
  }

  TcpListener& owner_;
  net::EventLoop& loop_;
  int fd_;
  SockAddr peer_;
  std::vector<uint8_t> in_;
  size_t in_pos_ = 0;
  std::vector<uint8_t> out_;
  size_t out_pos_ = 0;
  std::vector<uint8_t> scratch_;
  size_t inflight_ = 0;
  bool closed_ = false;
  bool peer_closed_ = false;
  bool want_write_ = false;
  bool reading_paused_ = false;
  bool batching_ = false;
  net::EventLoop::TimerId timer_ = 0;
};

TcpListener::TcpListener(net::EventLoop& loop, Pipeline& pipeline, int fd, TcpLimits limits)
    : loop_(loop), pipeline_(pipeline), fd_(fd), limits_(limits) {}

TcpListener::~TcpListener() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

void TcpListener::start() {
  if (!registered_) {
    loop_.add(fd_, EPOLLIN, this);
    registered_ = true;
  }
}

void TcpListener::stop() {
  if (registered_) {
    loop_.remove(fd_);
    registered_ = false;
  }
  auto conns = conns_;
  for (const auto& c : conns) c->close();
  conns_.clear();
}

void TcpListener::drain() {
  if (registered_) {
    loop_.remove(fd_);
    registered_ = false;
  }
}

void TcpListener::closed(TcpConnection* c) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == c) {
      conns_.erase(it);
      return;
    }
  }
}

void TcpListener::onEvents(uint32_t) {
  for (int i = 0; i < 64; ++i) {
    SockAddr peer;
    peer.len = sizeof(peer.storage);
    int cfd = ::accept4(fd_, peer.get(), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;  // EAGAIN, or EMFILE etc.: nothing more now
    if (conns_.size() >= limits_.max_connections) {
      ::close(cfd);
      continue;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_shared<TcpConnection>(*this, cfd, peer);
    conns_.insert(c);
    c->start();
  }
}

}  // namespace nld::server
