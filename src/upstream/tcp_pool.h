#pragma once
// Pipelined DNS-over-TCP connections to the upstreams of one Forwarder (RFC 7766 §6.2.1): per
// upstream a small pool of connections, each carrying up to kMaxPipelined outstanding queries
// whose replies are matched by ID (replies may come in any order), 2-byte length framing, partial
// reads/writes handled via EPOLLOUT, and an idle close after `expire`.
//
// Hand-written over epoll instead of using asio/libevent: it must live on the worker's own
// EventLoop (one loop per thread, no locks) and is a few hundred lines.
#include <cstdint>
#include <memory>
#include <vector>

#include "dns/name.h"
#include "net/event_loop.h"
#include "upstream/shared_state.h"

namespace nld::upstream {

inline constexpr size_t kMaxPipelined = 64;        // outstanding queries per connection
inline constexpr size_t kMaxConnsPerUpstream = 8;  // connections per upstream per worker

class TcpConn;

/// Receives the outcome of queries sent through a TcpPool. Called on the loop thread, from
/// inside the pool's event handling (never synchronously from TcpPool::send).
class TcpSink {
 public:
  virtual ~TcpSink() = default;
  /// The reply with the query's ID arrived; `msg` is valid only during the call.
  virtual void onTcpReply(uint64_t token, dns::ByteView msg) = 0;
  /// The connection carrying the query failed before its reply. `cached_close` means a reused
  /// connection was closed/reset by the peer: no failure was recorded for the upstream and the
  /// query may be retried once on a fresh connection. Otherwise the pool already recorded one
  /// failure for the upstream (once per broken connection, not per query).
  virtual void onTcpFailed(uint64_t token, bool cached_close) = 0;
};

/// Where a query went, for cancel().
struct TcpTicket {
  TcpConn* conn = nullptr;  // null: could not be sent (see TcpPool::send)
  uint16_t id = 0;          // the ID on the wire (may differ from the one passed in)
  bool reused = false;      // the connection existed before (conn cache hit)
  /// conn == null for a local reason (every connection full, epoll refused): not the
  /// upstream's fault, so no failure should be counted.
  bool exhausted = false;
};

/// All TCP connections of one Forwarder. Loop thread only.
class TcpPool {
 public:
  TcpPool(net::EventLoop& loop, SharedForwardState& shared, TcpSink& sink,
          ForwardObserver* observer);
  ~TcpPool();
  TcpPool(const TcpPool&) = delete;
  TcpPool& operator=(const TcpPool&) = delete;

  /// Queues `msg` (a complete DNS message without length prefix) to upstream `upstream` under
  /// `token`. If its ID collides with one outstanding on the chosen connection, a fresh random
  /// ID is written into msg. `fresh` forces a new connection. Returns a ticket with conn == null
  /// when nothing could be sent (socket/connect error, or every connection is full); the caller
  /// then treats the attempt as failed (the pool records nothing in that case).
  TcpTicket send(int upstream, uint64_t token, dns::MutableBytes msg, bool fresh);
  /// Forgets an outstanding query (its attempt timed out); a late reply is ignored.
  void cancel(const TcpTicket& t);
  /// Closes every connection without notifying the sink.
  void closeAll();
  /// Open (or connecting) connections to `upstream`.
  size_t connections(int upstream) const;

 private:
  friend class TcpConn;
  void release(TcpConn* c);  // unlink + deferred delete
  void onConnBroken(TcpConn* c, bool peer_closed);

  net::EventLoop& loop_;
  SharedForwardState& shared_;
  TcpSink& sink_;
  ForwardObserver* observer_;
  std::vector<std::vector<std::shared_ptr<TcpConn>>> pools_;
};

}  // namespace nld::upstream
