#include "server/udp_handler.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace nld::server {

UdpHandler::UdpHandler(net::EventLoop& loop, Pipeline& pipeline, net::Fd fd, bool wildcard)
    : loop_(loop),
      pipeline_(pipeline),
      fd_(std::move(fd)),
      wildcard_(wildcard),
      rbuf_(std::make_unique_for_overwrite<uint8_t[]>(kBatch * kRecvSize)),
      sbuf_(std::make_unique_for_overwrite<uint8_t[]>(kBatch * kRecvSize)),
      scratch_(std::make_unique_for_overwrite<uint8_t[]>(dns::kMaxMessageSize)),
      alive_fd_(std::make_shared<int>(fd_.get())) {
  initReceive();
}

UdpHandler::~UdpHandler() {
  loop_.cancelRoundEnd(this);
  stop();
  *alive_fd_ = -1;  // fd_ closes after this body
}

void UdpHandler::initReceive() {
  for (int i = 0; i < kBatch; ++i) {
    riov_[i].iov_base = rbuf_.get() + size_t(i) * kRecvSize;
    riov_[i].iov_len = kRecvSize;
    std::memset(&rmsgs_[i], 0, sizeof(mmsghdr));
    rmsgs_[i].msg_hdr.msg_name = &raddr_[i].storage;
    rmsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    rmsgs_[i].msg_hdr.msg_iov = &riov_[i];
    rmsgs_[i].msg_hdr.msg_iovlen = 1;
    if (wildcard_) {
      rmsgs_[i].msg_hdr.msg_control = rctl_[i].buf;
      rmsgs_[i].msg_hdr.msg_controllen = sizeof(rctl_[i].buf);
    }
  }
  rfilled_ = 0;
}

void UdpHandler::start() {
  if (!registered_ && !paused_) {
    loop_.add(fd_.get(), EPOLLIN, this);
    registered_ = true;
  }
}

void UdpHandler::stop() {
  if (registered_) {
    loop_.remove(fd_.get());
    registered_ = false;
  }
}

void UdpHandler::pauseReading() {
  paused_ = true;
  stop();
}

void UdpHandler::resumeReading() {
  paused_ = false;
  start();
}

namespace {

// Copies the destination address of a received datagram into a control message for sending,
// so the reply leaves from the address the client used (wildcard sockets only).
size_t replyControl(const msghdr& in, char* out, size_t out_size) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&in); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&in), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      if (out_size < CMSG_SPACE(sizeof(in_pktinfo))) return 0;
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      pi.ipi_ifindex = 0;
      pi.ipi_spec_dst = pi.ipi_addr;
      auto* o = reinterpret_cast<cmsghdr*>(out);
      o->cmsg_level = IPPROTO_IP;
      o->cmsg_type = IP_PKTINFO;
      o->cmsg_len = CMSG_LEN(sizeof(pi));
      std::memcpy(CMSG_DATA(o), &pi, sizeof(pi));
      return CMSG_SPACE(sizeof(pi));
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      if (out_size < CMSG_SPACE(sizeof(in6_pktinfo))) return 0;
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      pi.ipi6_ifindex = 0;
      auto* o = reinterpret_cast<cmsghdr*>(out);
      o->cmsg_level = IPPROTO_IPV6;
      o->cmsg_type = IPV6_PKTINFO;
      o->cmsg_len = CMSG_LEN(sizeof(pi));
      std::memcpy(CMSG_DATA(o), &pi, sizeof(pi));
      return CMSG_SPACE(sizeof(pi));
    }
  }
  return 0;
}

}  // namespace

void UdpHandler::onEvents(uint32_t) {
  if (!registered_) return;  // fetched before stop()/pauseReading() in this round
  // Bounded work per wakeup so one busy socket cannot starve the loop's other sockets/timers.
  for (int round = 0; round < 8; ++round) {
    // The kernel rewrites only the lengths and flags of the entries it filled: reset those.
    for (int i = 0; i < rfilled_; ++i) {
      rmsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      rmsgs_[i].msg_hdr.msg_controllen = wildcard_ ? sizeof(rctl_[i].buf) : 0;
      rmsgs_[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd_.get(), rmsgs_, kBatch, MSG_DONTWAIT, nullptr);
    rfilled_ = n > 0 ? n : 0;
    if (n <= 0) return;  // EAGAIN (or an error we cannot act on): wait for the next event

    int nsend = 0;
    for (int i = 0; i < n; ++i) {
      raddr_[i].len = rmsgs_[i].msg_hdr.msg_namelen;
      if (rmsgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
        // Larger than any query we accept; count and drop.
        continue;
      }
      current_ = i;
      const dns::ByteView pkt(rbuf_.get() + size_t(i) * kRecvSize, rmsgs_[i].msg_len);
      size_t len = pipeline_.handle(pkt, raddr_[i], listener_, Proto::kUdp,
                                    dns::MutableBytes(scratch_.get(), dns::kMaxMessageSize), *this);
      current_ = -1;
      if (len == 0 || len == Pipeline::kPending) continue;
      if (len > kRecvSize) {
        // Rare: an answer bigger than a batch slot (client advertised a large EDNS size).
        size_t cl =
            wildcard_ ? replyControl(rmsgs_[i].msg_hdr, sctl_[0].buf, sizeof(sctl_[0].buf)) : 0;
        sendOne(raddr_[i], cl ? &sctl_[0] : nullptr, cl, dns::ByteView(scratch_.get(), len));
        continue;
      }
      uint8_t* slot = sbuf_.get() + size_t(nsend) * kRecvSize;
      std::memcpy(slot, scratch_.get(), len);
      siov_[nsend].iov_base = slot;
      siov_[nsend].iov_len = len;
      std::memset(&smsgs_[nsend].msg_hdr, 0, sizeof(msghdr));
      smsgs_[nsend].msg_hdr.msg_name = &raddr_[i].storage;
      smsgs_[nsend].msg_hdr.msg_namelen = raddr_[i].len;
      smsgs_[nsend].msg_hdr.msg_iov = &siov_[nsend];
      smsgs_[nsend].msg_hdr.msg_iovlen = 1;
      if (wildcard_) {
        size_t cl = replyControl(rmsgs_[i].msg_hdr, sctl_[nsend].buf, sizeof(sctl_[nsend].buf));
        if (cl) {
          smsgs_[nsend].msg_hdr.msg_control = sctl_[nsend].buf;
          smsgs_[nsend].msg_hdr.msg_controllen = cl;
        }
      }
      ++nsend;
    }
    int sent = 0;
    while (sent < nsend) {
      int r = sendmmsg(fd_.get(), smsgs_ + sent, unsigned(nsend - sent), MSG_DONTWAIT);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        // A full send buffer or an unreachable client: drop these answers (UDP semantics).
        ++sent;
        continue;
      }
      sent += r;
    }
    if (n < kBatch) return;
  }
}

void UdpHandler::sendOne(const net::SockAddr& to, const Control* ctl, size_t ctl_len,
                         dns::ByteView data) {
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  msghdr m{};
  m.msg_name = const_cast<sockaddr_storage*>(&to.storage);
  m.msg_namelen = to.len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (ctl != nullptr && ctl_len > 0) {
    m.msg_control = const_cast<char*>(ctl->buf);
    m.msg_controllen = ctl_len;
  }
  ::sendmsg(fd_.get(), &m, MSG_DONTWAIT);
}

Reply UdpHandler::make() {
  // Everything the answer needs after this batch is gone, held inside the Reply (104 bytes: no
  // allocation per miss). The peer is kept as a sockaddr_in6-sized copy, not a net::SockAddr
  // (sockaddr_storage, 128 bytes): UDP peers are IPv4 or IPv6.
  struct ReplyTo {
    UdpHandler* handler;
    std::weak_ptr<int> alive;  // expired or -1 once the handler is gone (reload)
    sockaddr_in6 peer;
    socklen_t peer_len;
    uint32_t ctl_len;
    Control ctl;
    void operator()(dns::ByteView answer) const {
      auto a = alive.lock();
      if (!a || *a < 0) return;    // the socket is gone (reload removed the listener)
      if (answer.empty()) return;  // dropped (malformed)
      net::SockAddr to;
      std::memcpy(&to.storage, &peer, peer_len);
      to.len = peer_len;
      handler->queueAsync(to, ctl_len != 0 ? &ctl : nullptr, ctl_len, answer);
    }
  };
  static_assert(sizeof(ReplyTo) <= kReplyInline, "a UDP reply must not allocate");
  const net::SockAddr& from = raddr_[current_];
  ReplyTo r{this, alive_fd_, {}, 0, 0, {}};
  r.peer_len = std::min<socklen_t>(from.len, sizeof(r.peer));
  std::memcpy(&r.peer, &from.storage, r.peer_len);
  if (wildcard_) {
    r.ctl_len =
        static_cast<uint32_t>(replyControl(rmsgs_[current_].msg_hdr, r.ctl.buf, sizeof(r.ctl.buf)));
  }
  return Reply(std::move(r));
}

void UdpHandler::queueAsync(const net::SockAddr& to, const Control* ctl, size_t ctl_len,
                            dns::ByteView data) {
  if (data.size() > kRecvSize) {  // rare: large EDNS answers go out on their own
    sendOne(to, ctl, ctl_len, data);
    return;
  }
  AsyncMsg& m = aq_.emplace_back();
  m.peer = to;
  m.ctl_len = ctl != nullptr ? ctl_len : 0;
  if (m.ctl_len > 0) std::memcpy(m.ctl.buf, ctl->buf, m.ctl_len);
  m.off = abuf_.size();
  m.len = data.size();
  abuf_.insert(abuf_.end(), data.begin(), data.end());
  if (flush_requested_) return;
  flush_requested_ = true;
  loop_.requestRoundEnd(this);
}

void UdpHandler::flushAsync() {
  flush_requested_ = false;
  size_t done = 0;
  while (done < aq_.size()) {
    const int m = static_cast<int>(std::min<size_t>(kBatch, aq_.size() - done));
    for (int i = 0; i < m; ++i) {
      AsyncMsg& a = aq_[done + size_t(i)];
      siov_[i].iov_base = abuf_.data() + a.off;
      siov_[i].iov_len = a.len;
      std::memset(&smsgs_[i].msg_hdr, 0, sizeof(msghdr));
      smsgs_[i].msg_hdr.msg_name = &a.peer.storage;
      smsgs_[i].msg_hdr.msg_namelen = a.peer.len;
      smsgs_[i].msg_hdr.msg_iov = &siov_[i];
      smsgs_[i].msg_hdr.msg_iovlen = 1;
      if (a.ctl_len > 0) {
        smsgs_[i].msg_hdr.msg_control = a.ctl.buf;
        smsgs_[i].msg_hdr.msg_controllen = a.ctl_len;
      }
    }
    int sent = 0;
    while (sent < m) {
      int r = sendmmsg(fd_.get(), smsgs_ + sent, unsigned(m - sent), MSG_DONTWAIT);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        ++sent;  // full send buffer or unreachable client: drop this answer (UDP semantics)
        continue;
      }
      sent += r;
    }
    done += size_t(m);
  }
  aq_.clear();
  abuf_.clear();  // capacities stay: no allocation once warm
}

}  // namespace nld::server
