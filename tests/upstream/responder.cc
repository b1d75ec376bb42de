#include "upstream/responder.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "support/eventually.h"

namespace nld::upstream::testing {
namespace {

using Clock = std::chrono::steady_clock;

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Offset just past QTYPE/QCLASS of the (uncompressed) first question, 0 if malformed.
size_t questionEnd(const uint8_t* q, size_t n, std::string* name) {
  size_t pos = 12;
  while (pos < n && q[pos] != 0) {
    if (q[pos] > 63) return 0;
    if (name) {
      if (!name->empty()) name->push_back('.');
      name->append(reinterpret_cast<const char*>(q + pos + 1),
                   std::min<size_t>(q[pos], n - pos - 1));
    }
    pos += 1 + q[pos];
  }
  pos += 1 + 4;
  return pos <= n ? pos : 0;
}

std::vector<uint8_t> reply(const uint8_t* q, size_t qend, uint8_t tag, uint16_t extra_flags,
                           bool answer) {
  const uint16_t qtype = rd16(q + qend - 4);
  const bool a = answer && qtype == 1;
  const auto flags = static_cast<uint16_t>(0x8000 | (rd16(q + 2) & 0x0100) | 0x0080 | extra_flags);
  std::vector<uint8_t> r = {q[0],
                            q[1],
                            static_cast<uint8_t>(flags >> 8),
                            static_cast<uint8_t>(flags & 0xff),
                            0,
                            1,
                            0,
                            a ? uint8_t{1} : uint8_t{0},
                            0,
                            0,
                            0,
                            0};
  r.insert(r.end(), q + 12, q + qend);
  if (a) {
    const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 10, 0, tag, 1};
    r.insert(r.end(), rr, rr + sizeof(rr));
  }
  return r;
}

}  // namespace

uint16_t closedPort() {
  // A port that was free for both UDP and TCP a moment ago; nothing listens on it afterwards.
  for (int i = 0; i < 50; ++i) {
    const net::Fd u(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof(a);
    if (::bind(u.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(u.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      continue;
    }
    const net::Fd t(::socket(AF_INET, SOCK_STREAM, 0));
    bool ok = ::bind(t.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    if (ok) return ntohs(a.sin_port);
  }
  throw std::runtime_error("closedPort: no free port");
}

Responder::Responder(uint8_t tag) : tag_(tag) {
  for (int i = 0; i < 50 && !listen_fd_; ++i) {
    udp_fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback(0);
    if (::bind(udp_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      throw std::runtime_error("responder: bind udp");
    }
    socklen_t len = sizeof(a);
    ::getsockname(udp_fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    net::Fd t(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(t.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(t.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::listen(t.get(), 64) == 0) {
      listen_fd_ = std::move(t);
      port_ = ntohs(a.sin_port);
    } else {
      udp_fd_.reset();
    }
  }
  if (!listen_fd_) throw std::runtime_error("responder: no port free for UDP and TCP");
  thread_ = std::thread([this] { run(); });
}

Responder::~Responder() {
  stop_ = true;
  thread_.join();  // the sockets (members) close after the thread that uses them stopped
}

void Responder::setMode(Mode m) {
  std::lock_guard<std::mutex> lock(mu_);
  mode_ = m;
}
void Responder::setDelay(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  delay_ = d;
}
void Responder::setSplitTcp(bool on) { split_tcp_ = on; }
void Responder::setHoldTcp(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_ = n;
}
std::vector<SeenQuery> Responder::queries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}
size_t Responder::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.size();
}
bool Responder::waitForQueries(size_t n, std::chrono::milliseconds timeout) const {
  return test::eventually([&] { return count() >= n; }, timeout);
}

void Responder::run() {
  std::vector<pollfd> pfds;
  while (!stop_) {
    pfds.clear();
    pfds.push_back({udp_fd_.get(), POLLIN, 0});
    pfds.push_back({listen_fd_.get(), POLLIN, 0});
    for (auto& c : conns_) pfds.push_back({c.fd.get(), POLLIN, 0});
    ::poll(pfds.data(), pfds.size(), 10);
    if (pfds[0].revents) onUdp();
    if (pfds[1].revents) onAccept();
    std::vector<int> dead;
    for (size_t i = 2; i < pfds.size(); ++i) {
      if (!pfds[i].revents) continue;
      auto it = std::find_if(conns_.begin(), conns_.end(),
                             [&](const Conn& c) { return c.fd.get() == pfds[i].fd; });
      if (it != conns_.end() && !onTcpReadable(*it)) dead.push_back(it->fd.get());
    }
    for (int fd : dead) {
      auto it = std::find_if(conns_.begin(), conns_.end(),
                             [&](const Conn& c) { return c.fd.get() == fd; });
      if (it != conns_.end()) conns_.erase(it);  // closes the connection
    }
    const auto now = Clock::now();
    for (size_t i = 0; i < delayed_.size();) {
      if (delayed_[i].due <= now) {
        sendNow(delayed_[i]);
        delayed_.erase(delayed_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    flushHeld(false);
  }
}

void Responder::onUdp() {
  uint8_t buf[65536];
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n =
        ::recvfrom(udp_fd_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    handle(buf, static_cast<size_t>(n), false, nullptr, &from);
  }
}

void Responder::onAccept() {
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    net::Fd fd(::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&from), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    Conn c;
    c.fd = std::move(fd);
    c.number = static_cast<int>(accepts_.fetch_add(1));
    c.peer_port = ntohs(from.sin_port);
    conns_.push_back(std::move(c));
  }
}

bool Responder::onTcpReadable(Conn& c) {
  uint8_t buf[65536];
  ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
  if (n == 0) {
    ++peer_closes_;
    return false;
  }
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  c.buf.insert(c.buf.end(), buf, buf + n);
  size_t pos = 0;
  while (c.buf.size() - pos >= 2) {
    size_t len = rd16(c.buf.data() + pos);
    if (c.buf.size() - pos - 2 < len) break;
    std::vector<uint8_t> msg(c.buf.begin() + static_cast<std::ptrdiff_t>(pos + 2),
                             c.buf.begin() + static_cast<std::ptrdiff_t>(pos + 2 + len));
    pos += 2 + len;
    ++c.queries;
    Mode m;
    {
      std::lock_guard<std::mutex> lock(mu_);
      m = mode_;
    }
    handle(msg.data(), msg.size(), true, &c, nullptr);
    if (m == Mode::kCloseTcp || (m == Mode::kCloseSecondOnConn && c.queries >= 2)) {
      return false;
    }
  }
  c.buf.erase(c.buf.begin(), c.buf.begin() + static_cast<std::ptrdiff_t>(pos));
  return true;
}

void Responder::handle(const uint8_t* q, size_t n, bool tcp, Conn* c, const sockaddr_in* from) {
  if (n < 12) return;
  SeenQuery s;
  s.tcp = tcp;
  s.id = rd16(q);
  s.flags = rd16(q + 2);
  s.arcount = rd16(q + 10);
  s.conn = c ? c->number : -1;
  s.src_port = c ? c->peer_port : ntohs(from->sin_port);
  s.raw.assign(q, q + n);
  const size_t qend = questionEnd(q, n, &s.qname);
  Mode m;
  std::chrono::milliseconds delay;
  size_t hold;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(s);
    m = mode_;
    delay = delay_;
    hold = hold_;
  }
  if (qend == 0) return;

  std::vector<std::vector<uint8_t>> out;
  switch (m) {
    case Mode::kAnswer:
      out.push_back(reply(q, qend, tag_, 0, true));
      break;
    case Mode::kDrop:
      break;
    case Mode::kWrongIdFirst: {
      auto good = reply(q, qend, tag_, 0, true);
      if (!tcp && good.size() > 14) {
        std::vector<uint8_t> wrong_id(good);
        wrong_id[1] = static_cast<uint8_t>(wrong_id[1] + 1);
        std::vector<uint8_t> wrong_q(good);
        wrong_q[13] = wrong_q[13] == 'z' ? 'y' : 'z';
        std::vector<uint8_t> not_reply(good);
        not_reply[2] &= 0x7f;                                           // QR=0
        std::vector<uint8_t> garbage(good.begin(), good.begin() + 14);  // right ID, cut short
        out = {wrong_id, wrong_q, not_reply, garbage};
      }
      out.push_back(good);
      break;
    }
    case Mode::kWrongQuestion: {
      auto r = reply(q, qend, tag_, 0, true);
      r[13] = r[13] == 'z' ? 'y' : 'z';
      out.push_back(r);
      break;
    }
    case Mode::kTruncate:
      out.push_back(tcp ? reply(q, qend, tag_, 0, true) : reply(q, qend, tag_, 0x0200, false));
      break;
    case Mode::kCloseTcp:
      break;
    case Mode::kCloseSecondOnConn:
      if (!tcp || c->queries < 2) out.push_back(reply(q, qend, tag_, 0, true));
      break;
  }
  for (auto& msg : out) {
    Pending p;
    p.due = Clock::now() + delay;
    p.tcp = tcp;
    p.conn_number = c ? c->number : -1;
    if (from) p.to = *from;
    p.msg = std::move(msg);
    if (tcp && hold > 0) {
      if (held_.empty()) held_since_ = Clock::now();
      held_.push_back(std::move(p));
    } else if (delay.count() > 0) {
      delayed_.push_back(std::move(p));
    } else {
      sendNow(p);
    }
  }
  flushHeld(false);
}

void Responder::flushHeld(bool force) {
  if (held_.empty()) return;
  size_t hold;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hold = hold_;
  }
  if (!force && held_.size() < hold && Clock::now() - held_since_ < std::chrono::seconds(2)) return;
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) sendNow(*it);  // out of order
  held_.clear();
}

void Responder::sendNow(const Pending& p) {
  if (!p.tcp) {
    ::sendto(udp_fd_.get(), p.msg.data(), p.msg.size(), 0, reinterpret_cast<const sockaddr*>(&p.to),
             sizeof(p.to));
    return;
  }
  auto it = std::find_if(conns_.begin(), conns_.end(),
                         [&](const Conn& c) { return c.number == p.conn_number; });
  if (it == conns_.end()) return;
  std::vector<uint8_t> framed;
  framed.push_back(static_cast<uint8_t>(p.msg.size() >> 8));
  framed.push_back(static_cast<uint8_t>(p.msg.size() & 0xff));
  framed.insert(framed.end(), p.msg.begin(), p.msg.end());
  size_t off = 0;
  const bool split = split_tcp_.load();
  for (int tries = 0; off < framed.size() && tries < 1000; ++tries) {
    if (split && off > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ssize_t w =
        ::send(it->fd.get(), framed.data() + off, split ? 1 : framed.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      return;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace nld::upstream::testing
