#pragma once
// TCP front end (RFC 7766) of one worker for one listener. Queries pipelined on a connection are
// processed concurrently and answered as they complete (out of order allowed, matched by the
// client through the ID). Idle connections are closed after a timeout; the number of
// connections per worker and of outstanding queries per connection are capped.
#include <chrono>
#include <memory>
#include <unordered_set>
#include <vector>

#include "net/event_loop.h"
#include "server/pipeline.h"

namespace nld::server {

struct TcpLimits {
  size_t max_connections = 1024;         // per worker and listener
  size_t max_inflight_per_conn = 64;     // reading pauses above this
  std::chrono::milliseconds first_read{3000};
  std::chrono::milliseconds idle{10000};
  size_t max_write_buffer = 4u << 20;    // a client that never reads is dropped
};

class TcpConnection;

class TcpListener final : public net::IoHandler {
 public:
  TcpListener(net::EventLoop& loop, Pipeline& pipeline, int fd, TcpLimits limits);
  ~TcpListener() override;
  void start();
  void stop();  // stops accepting and closes every connection
  /// Stops accepting (the listening fd stays open: a successor may own the same socket) and
  /// keeps serving the connections already accepted until they close.
  void drain();
  void setListener(size_t index) { listener_ = index; }
  size_t listener() const { return listener_; }
  size_t connections() const { return conns_.size(); }

  // net::IoHandler
  void onEvents(uint32_t events) override;

 private:
  friend class TcpConnection;
  void closed(TcpConnection* c);

  net::EventLoop& loop_;
  Pipeline& pipeline_;
  int fd_;
  TcpLimits limits_;
  size_t listener_ = 0;
  bool registered_ = false;
  std::unordered_set<std::shared_ptr<TcpConnection>> conns_;
};

}  // namespace nld::server
