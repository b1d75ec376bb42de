#pragma once
// TCP front end (RFC 7766) of one worker for one listener. Queries pipelined on a connection are
// processed concurrently and answered as they complete (out of order allowed, matched by the
// client through the ID).
//
// Built to stay bounded when any pod on the node misbehaves (issue 11):
//  - Memory on demand. A connection holds no buffer while it is idle: bytes are read into the
//    stack, complete frames are handled from there, and only a partial frame is copied, into a
//    buffer sized for that frame (TcpFramer). The answer buffer is freed once every answer is
//    written. The answer scratch is one per listener, not one per connection.
//  - A full table evicts, it does not refuse. The connection table is capped; a new connection
//    over the cap closes the quiescent connection (nothing in flight, nothing to write) that has
//    been quiescent longest, as unbound and dnsdist do, so a fresh client always gets in while
//    thousands of idle ones are held open. Only when every connection is busy is the new one
//    refused.
//  - Deadlines are per query. A frame must be complete `frame` after its first byte arrived (a
//    client sending a byte a second is closed after 3 s, not kept forever by resetting a timer
//    on each byte); a connection waiting for its first query is closed after `first_read`, one
//    waiting for a further query after `idle`, a busy one that makes no progress after `idle`.
//  - Descriptors for the rest. Client connections of the whole process use at most the soft
//    RLIMIT_NOFILE less a reserve (a quarter, at least 64): over it the table counts as full,
//    so upstream sockets, listeners and the health/metrics servers still get descriptors.
//  - Out of descriptors anyway. accept() failing with EMFILE/ENFILE (or ENOBUFS/ENOMEM) first
//  evicts
//    the idlest connection to free a descriptor; if there is none, the listening socket leaves
//    epoll for `accept_backoff` (level-triggered epoll would report it again at once: a busy
//    loop on every core) and comes back after it. Counted in
//    nodelocaldns_tcp_accept_paused_total.
//  - Output: a client that does not read stops being read (no new queries taken) while answers
//    wait for it; over `max_write_buffer` it is closed. All connections of a listener together
//    hold at most `max_buffered` bytes of buffers; the connection that would go over is closed.
//
// Worst case per listener and worker: max_buffered + max_connections * (< 1 KiB of connection
// state), plus the 64 KiB answer scratch (docs/operator-guide.md).
#include <chrono>
#include <functional>
#include <memory>
#include <unordered_map>

#include "net/event_loop.h"
#include "net/fd.h"
#include "server/pipeline.h"

namespace nld::server {

class ServerMetrics;

struct TcpLimits {
  size_t max_connections = 1024;               // per worker and listener; over it the idlest goes
  size_t max_inflight_per_conn = 64;           // reading pauses above this
  std::chrono::milliseconds first_read{3000};  // new connection: its first query starts by then
  std::chrono::milliseconds idle{10000};       // between queries; busy without progress
  std::chrono::milliseconds frame{3000};       // first byte of a frame → the whole frame
  std::chrono::milliseconds accept_backoff{100};  // listener out of epoll after EMFILE & co.
  size_t max_write_buffer = 256u << 10;           // answers a client does not read: over it, closed
  size_t max_buffered = 8u << 20;                 // all buffers of all connections of the listener
};

class TcpConnection;

class TcpListener final : public net::IoHandler {
 public:
  /// Takes ownership of fd (a listening TCP socket). `metrics` may be null (tests).
  TcpListener(net::EventLoop& loop, Pipeline& pipeline, net::Fd fd, TcpLimits limits,
              ServerMetrics* metrics = nullptr);
  ~TcpListener() override;
  void start();
  void stop();  // stops accepting and closes every connection
  void setListener(size_t index) { listener_ = index; }
  /// The `timeouts` plugin's deadlines for this listener (loop thread): `read` for a new
  /// connection's first query and for a frame, `idle` between queries. Existing connections use
  /// them from their next deadline on.
  void setDeadlines(std::chrono::milliseconds first_read, std::chrono::milliseconds frame,
                    std::chrono::milliseconds idle) {
    limits_.first_read = first_read;
    limits_.frame = frame;
    limits_.idle = idle;
  }
  size_t listener() const { return listener_; }
  size_t connections() const { return conns_.size(); }
  int fd() const { return fd_.get(); }

  /// Handover (zero loss): stops accepting — the listening socket leaves epoll but stays open,
  /// another process may accept on the same socket — and closes each established connection as
  /// soon as it is idle (nothing in flight, nothing to write, no partial frame, nothing more to
  /// read), serving it until then. Loop thread only. `on_drained` (optional) runs on the loop
  /// thread once the last connection is closed (at once if there is none).
  void drain(std::function<void()> on_drained = {});
  /// True once drain() was called and no connection is left.
  bool drained() const { return draining_ && conns_.empty(); }
  /// Undoes drain(): accepting again (the successor that took over died). Loop thread only.
  void undrain();
  /// The listening socket is in epoll (false while draining, stopped or backing off).
  bool accepting() const { return registered_; }
  /// Bytes of connection buffers currently held (memory budget; tests and metrics).
  size_t bufferedBytes() const { return buffered_; }

  // net::IoHandler
  void onEvents(uint32_t events) override;

 private:
  friend class TcpConnection;
  void closed(TcpConnection* c);
  /// Takes the listening socket out of epoll (it stays open) and cancels an accept back-off.
  void stopAccepting();
  /// A copy of the open connections (closing one edits conns_).
  std::vector<std::shared_ptr<TcpConnection>> connectionList() const;
  /// Closes the connection that has been quiescent longest; false if none is.
  bool evictIdlest();
  void pauseAccepting();
  // Quiescent connections, oldest first (intrusive list through the connections).
  void quiescentPush(TcpConnection* c);
  void quiescentRemove(TcpConnection* c);

  net::EventLoop& loop_;
  Pipeline& pipeline_;
  net::Fd fd_;
  TcpLimits limits_;
  ServerMetrics* metrics_;
  size_t listener_ = 0;
  bool registered_ = false;  // the listening fd is in epoll
  bool started_ = false;     // start() called and not stopped
  bool draining_ = false;
  net::EventLoop::TimerId backoff_timer_ = 0;
  net::Clock::time_point last_backoff_log_{};
  std::function<void()> on_drained_;
  std::unordered_map<TcpConnection*, std::shared_ptr<TcpConnection>> conns_;
  TcpConnection* quiet_head_ = nullptr;
  TcpConnection* quiet_tail_ = nullptr;
  size_t buffered_ = 0;
  // Synchronous answers are written here and copied out at once: one per listener.
  std::unique_ptr<uint8_t[]> scratch_;
};

}  // namespace nld::server
