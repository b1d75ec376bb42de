#pragma once
// UDP front end of one worker for one listener: recvmmsg batches in, sendmmsg batches out.
// Buffers are allocated once; a cache hit is answered without any allocation.
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <vector>

#include "net/event_loop.h"
#include "net/fd.h"
#include "server/pipeline.h"

namespace nld::server {

class UdpHandler final : public net::IoHandler, public net::RoundEndHook, public ReplyFactory {
 public:
  static constexpr int kBatch = 32;
  static constexpr size_t kRecvSize = 4096;  // queries > 4096 bytes are dropped (MSG_TRUNC)

  /// Takes ownership of fd (a bound UDP socket). `wildcard` enables packet-info replies.
  UdpHandler(net::EventLoop& loop, Pipeline& pipeline, net::Fd fd, bool wildcard);
  ~UdpHandler() override;

  void start();
  void stop();
  /// Handover: stops reading the socket (it leaves epoll; another process may read the same
  /// socket) but keeps it open, so answers to queries already in flight are still sent from it.
  /// start() does not undo it (a reload re-applies the plan); resumeReading() does.
  /// Loop thread only.
  void pauseReading();
  void resumeReading();
  bool readingPaused() const { return paused_; }
  int fd() const { return fd_.get(); }
  void setListener(size_t index) { listener_ = index; }

  // net::IoHandler
  void onEvents(uint32_t events) override;
  // ReplyFactory: a reply to the datagram currently being handled.
  Reply make() override;
  // net::RoundEndHook: sends the asynchronous answers queued during this round.
  void onRoundEnd() override { flushAsync(); }

 private:
  struct Control {
    alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(in6_pktinfo))];
  };
  void initReceive();
  void sendOne(const net::SockAddr& to, const Control* ctl, size_t ctl_len, dns::ByteView data);
  /// Queues an asynchronous answer (a cache miss answered later). Every answer queued while the
  /// loop handles one round of events goes out with one sendmmsg at the end of the round.
  void queueAsync(const net::SockAddr& to, const Control* ctl, size_t ctl_len, dns::ByteView data);
  void flushAsync();

  net::EventLoop& loop_;
  Pipeline& pipeline_;
  net::Fd fd_;
  bool wildcard_;
  size_t listener_ = 0;
  bool registered_ = false;
  bool paused_ = false;

  // Receive side. Buffers are not value-initialised: pages are touched only when used (RSS).
  std::unique_ptr<uint8_t[]> rbuf_;
  mmsghdr rmsgs_[kBatch];
  iovec riov_[kBatch];
  net::SockAddr raddr_[kBatch];
  Control rctl_[kBatch];
  int rfilled_ = 0;  // entries the last recvmmsg filled (their lengths need a reset)
  // Send side.
  std::unique_ptr<uint8_t[]> sbuf_;
  mmsghdr smsgs_[kBatch];
  iovec siov_[kBatch];
  Control sctl_[kBatch];
  std::unique_ptr<uint8_t[]> scratch_;
  // Asynchronous answers waiting for the flush task.
  struct AsyncMsg {
    net::SockAddr peer;
    Control ctl;
    size_t ctl_len = 0;
    size_t off = 0;  // in abuf_
    size_t len = 0;
  };
  std::vector<AsyncMsg> aq_;
  std::vector<uint8_t> abuf_;
  bool flush_requested_ = false;
  int current_ = -1;  // index of the datagram being handled (for make())
  // Shared flag so replies that outlive this handler (reload) do nothing.
  std::shared_ptr<int> alive_fd_;
};

}  // namespace nld::server
