#include "observability/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/inherited_sockets.h"
#include "common/log.h"
#include "net/address.h"
#include "net/event_loop.h"
#include "observability/http_request.h"

namespace nld::observability {

namespace {

constexpr auto kProbeInterval = std::chrono::seconds(1);
constexpr time_t kProbeTimeoutSeconds = 3;
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string keyOf(const ListenAddress& a) { return a.host + "|" + std::to_string(a.port); }

}  // namespace

ListenAddress parseListenAddress(std::string_view address) {
  const std::string quoted = "listen address \"" + std::string(address) + "\"";
  ListenAddress out;
  std::string_view port_text;
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      throw std::invalid_argument(quoted + ": expected [IPv6]:port");
    }
    out.host = std::string(address.substr(1, close - 1));
    if (out.host.empty()) {
      throw std::invalid_argument(quoted + ": empty IPv6 address");
    }
    port_text = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument(quoted + ": missing port (expected host:port or :port)");
    }
    out.host = std::string(address.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      throw std::invalid_argument(quoted + ": IPv6 addresses must be in brackets");
    }
    port_text = address.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) {
    throw std::invalid_argument(quoted + ": invalid port");
  }
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') {
      throw std::invalid_argument(quoted + ": invalid port");
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) {
    throw std::invalid_argument(quoted + ": port out of range");
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sockets
//
// Hand-written rather than cpp-httplib: these endpoints answer two fixed GET paths a few times a
// minute, and Debian's libcpp-httplib is built against OpenSSL, whose 3.4 MiB of mapped library
// alone is half of node-cache's idle RSS budget (issue 6; see docs/benchmarks.md).

namespace {

void setTimeouts(int fd, time_t seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool sendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// Resolves a listen host to socket addresses to try in order.
std::vector<net::SockAddr> listenAddresses(const std::string& host, uint16_t port,
                                           std::string* err) {
  std::vector<net::SockAddr> out;
  if (host.empty()) {
    out.push_back(net::makeSockAddr("::", port));       // all addresses, dual-stack
    out.push_back(net::makeSockAddr("0.0.0.0", port));  // IPv4 only where IPv6 is unavailable
    return out;
  }
  if (host == "localhost") {
    // Go resolves localhost to the IPv4 loopback for listeners.
    out.push_back(net::makeSockAddr("127.0.0.1", port));
    return out;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) {
    *err = std::string("address not resolvable or not available (") + gai_strerror(rc) + ")";
    return out;
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    net::SockAddr a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.len = ai->ai_addrlen;
    out.push_back(a);
  }
  ::freeaddrinfo(res);
  return out;
}

}  // namespace

net::Fd listenHttp(const std::string& address) {
  const ListenAddress listen = parseListenAddress(address);
  std::string err;
  const auto addrs = listenAddresses(listen.host, listen.port, &err);
  for (const auto& a : addrs) {
    net::Fd owned(::socket(a.af(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!owned) {
      err = std::strerror(errno);
      continue;
    }
    const int fd = owned.get();
    int yes = 1;
    int no = 0;
    // No SO_REUSEPORT: a port already in use must be a clear bind error, not a silent share.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (a.af() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof(no));
    // Backlog 128: a burst of probes and scrapes waits in the kernel while the loop accepts.
    if (::bind(fd, a.get(), a.len) == 0 && ::listen(fd, 128) == 0) return owned;
    err = std::strerror(errno);
  }
  throw std::runtime_error("cannot listen on " + address + ": " +
                           (err.empty() ? std::string("no usable address") : err));
}

// ---------------------------------------------------------------------------------------------
// HttpServer::Loop
//
// The listener thread's state. Connections move through phases, each with one deadline:
//
//   accept ─► kRequest ──head complete──► kWrite ──written, keep-alive──► kIdle ─first byte─►
//   kRequest
//                │                           │    └─written, close: unread input? kLinger : closed
//                └─ request_timeout           └─ write_timeout                └─ idle_timeout
//
// kLinger half-closes (FIN after the response) and discards input for up to linger_timeout, so
// that closing a socket with unread bytes does not turn into an RST that destroys the response
// on its way (what Go's closeWriteAndWait does). Deadline timers are lazy: a connection has at
// most one EventLoop timer, armed for its earliest pending deadline; when it fires early (the
// deadline moved later) it re-arms itself. So a busy keep-alive client does not grow the timer
// queue. Closed connections are destroyed one loop round later (EventLoop::remove's contract).

class HttpServer::Loop final : public net::IoHandler {
 public:
  Loop(HttpServer& owner, net::Fd listen_fd)
      : owner_(owner), limits_(owner.limits_), listen_fd_(std::move(listen_fd)) {
    loop_.add(listen_fd_.get(), EPOLLIN, this);
  }

  ~Loop() override {  // the connections' and the listener's sockets close with the members
    owner_.stats_.connections.store(0, std::memory_order_relaxed);
  }

  void run() { loop_.run(); }
  void stop() { loop_.stop(); }

  // The listener is readable: accept what is queued (bounded per round).
  void onEvents(uint32_t) override {
    for (int i = 0; i < 64; ++i) {
      net::Fd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // EMFILE, ENFILE, ENOBUFS, ENOMEM (or anything unexpected): the connection stays in the
        // backlog and the level-triggered listener would fire again at once. Pause instead.
        pauseAccept(errno);
        return;
      }
      accept_failing_ = false;
      addConnection(std::move(fd));
    }
  }

 private:
  enum class Phase : uint8_t { kRequest, kWrite, kIdle, kLinger, kClosed };
  // How a connection ends after its response: kNow when nothing unread can be pending, kLinger
  // when unread input may follow (a body, a malformed request).
  enum class Close : uint8_t { kNo, kNow, kLinger };

  struct Conn final : net::IoHandler {
    Loop* loop = nullptr;
    net::Fd fd;
    uint64_t id = 0;
    Phase phase = Phase::kRequest;
    uint32_t events = 0;                      // current epoll mask
    Close close = Close::kNo;                 // what follows the response being written
    net::Clock::time_point since;             // start of the phase: eviction order
    net::Clock::time_point deadline;          // end of the phase
    net::Clock::time_point timer_at;          // deadline the armed timer fires at
    net::EventLoop::TimerId timer = 0;        // 0: none armed
    std::string in;                           // unparsed request bytes (empty capacity when idle)
    std::string head;                         // response status line and headers
    std::shared_ptr<const std::string> body;  // response body (shared for /metrics)
    size_t sent = 0;                          // bytes of head+body written

    void onEvents(uint32_t ev) override { loop->onConnEvents(*this, ev); }
  };

  net::Clock::time_point now() const { return loop_.now(); }

  void pauseAccept(int err) {
    owner_.stats_.accept_backoffs.fetch_add(1, std::memory_order_relaxed);
    owner_.counters_.accept_backoffs.inc();
    if (!accept_failing_) {  // one line per episode, not ten a second
      log::warn(
          "HTTP listener {}: accept failed: {}; pausing it for {} ms at a time until it "
          "succeeds ({} connections open)",
          owner_.address_, std::strerror(err), limits_.accept_backoff.count(), conns_.size());
      accept_failing_ = true;
    }
    loop_.remove(listen_fd_.get());
    loop_.addTimer(limits_.accept_backoff, [this] {
      try {
        loop_.add(listen_fd_.get(), EPOLLIN, this);
      } catch (const std::exception&) {
        pauseAccept(errno);  // still out of memory: try again later
      }
    });
  }

  void addConnection(net::Fd fd) {
    auto c = std::make_unique<Conn>();
    c->loop = this;
    c->fd = std::move(fd);
    c->id = next_id_++;
    c->since = now();
    c->deadline = c->since + limits_.request_timeout;
    c->events = EPOLLIN;
    try {
      loop_.add(c->fd.get(), EPOLLIN, c.get());
    } catch (const std::exception&) {
      return;  // c and its socket go
    }
    Conn& ref = *c;
    conns_.emplace(ref.id, std::move(c));
    owner_.stats_.accepted.fetch_add(1, std::memory_order_relaxed);
    owner_.stats_.connections.store(conns_.size(), std::memory_order_relaxed);
    armTimer(ref);
    if (conns_.size() > limits_.max_connections) evictFor(ref.id);
  }

  // Closes the connection that matters least, never `keep` (the one just accepted): lingering
  // ones first, then idle keep-alive ones, then the oldest still sending its request, then the
  // oldest being written; oldest first within a phase.
  void evictFor(uint64_t keep) {
    auto rank = [](Phase p) {
      switch (p) {
        case Phase::kLinger:
          return 0;
        case Phase::kIdle:
          return 1;
        case Phase::kRequest:
          return 2;
        default:
          return 3;
      }
    };
    Conn* victim = nullptr;
    for (auto& [id, c] : conns_) {
      if (id == keep) continue;
      // Ties on `since` (accepted in the same loop round) go by accept order (id).
      if (victim == nullptr || std::tuple(rank(c->phase), c->since, c->id) <
                                   std::tuple(rank(victim->phase), victim->since, victim->id)) {
        victim = c.get();
      }
    }
    if (victim == nullptr) return;
    if (victim->phase != Phase::kLinger && victim->phase != Phase::kIdle) {
      owner_.stats_.evicted.fetch_add(1, std::memory_order_relaxed);
      owner_.counters_.evicted.inc();
    }
    closeConn(*victim);
  }

  void armTimer(Conn& c) {
    if (c.timer != 0 && c.timer_at <= c.deadline) return;  // fires early enough; re-arms then
    if (c.timer != 0) loop_.cancelTimer(c.timer);
    c.timer_at = c.deadline;
    const uint64_t id = c.id;
    c.timer = loop_.addTimer(c.deadline - now(), [this, id] { onTimer(id); });
  }

  void onTimer(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    c.timer = 0;
    if (now() < c.deadline) {
      armTimer(c);
      return;
    }
    switch (c.phase) {
      case Phase::kRequest:
        owner_.stats_.request_timeouts.fetch_add(1, std::memory_order_relaxed);
        owner_.counters_.request_timeout.inc();
        break;
      case Phase::kWrite:
        owner_.stats_.write_timeouts.fetch_add(1, std::memory_order_relaxed);
        owner_.counters_.write_timeout.inc();
        break;
      case Phase::kIdle:
        owner_.stats_.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      default:
        break;
    }
    closeConn(c);
  }

  void setEvents(Conn& c, uint32_t events) {
    if (c.events == events) return;
    try {
      loop_.modify(c.fd.get(), events, &c);
      c.events = events;
    } catch (const std::exception&) {
      closeConn(c);
    }
  }

  void closeConn(Conn& c) {
    if (c.phase == Phase::kClosed) return;
    if (c.timer != 0) loop_.cancelTimer(c.timer);
    c.timer = 0;
    loop_.remove(c.fd.get());
    net::Fd fd = std::move(c.fd);
    c.phase = Phase::kClosed;
    auto it = conns_.find(c.id);
    // Events of this round may still name the handler: destroy it after the round.
    if (dead_.empty()) loop_.post([this] { dead_.clear(); });
    dead_.push_back(std::move(it->second));
    conns_.erase(it);
    // Counted before the peer can see the close.
    owner_.stats_.connections.store(conns_.size(), std::memory_order_relaxed);
    fd.reset();
  }

  static void release(std::string& s) { std::string().swap(s); }

  void onConnEvents(Conn& c, uint32_t ev) {
    switch (c.phase) {
      case Phase::kRequest:
      case Phase::kIdle:
        readRequest(c);
        break;
      case Phase::kWrite:
        if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && writeResponse(c))
          serveBuffered(c, false);
        break;
      case Phase::kLinger:
        drain(c);
        break;
      case Phase::kClosed:
        break;
    }
  }

  void readRequest(Conn& c) {
    char buf[4096];
    bool eof = false;
    // Stop reading once the buffer exceeds the head limit: the parser then answers 431.
    while (c.in.size() <= limits_.max_head_bytes) {
      const ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
      if (n > 0) {
        if (c.phase == Phase::kIdle) {  // a keep-alive request starts: its own deadline
          c.phase = Phase::kRequest;
          c.since = now();
          c.deadline = c.since + limits_.request_timeout;
          armTimer(c);
        }
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      closeConn(c);  // reset by the peer or failed
      return;
    }
    serveBuffered(c, eof);
  }

  // Answers the requests buffered in c.in (several when pipelined) until one is incomplete, a
  // response has to wait for the socket, or the connection closes. `eof`: the peer has shut
  // down its sending side (it may still read our answer).
  void serveBuffered(Conn& c, bool eof) {
    while (c.phase == Phase::kRequest || c.phase == Phase::kIdle) {
      if (c.in.empty()) {
        if (eof) {
          closeConn(c);
        } else {
          release(c.in);
        }
        return;
      }
      HttpRequest req;
      size_t used = 0;
      switch (parseHttpRequest(c.in, limits_.max_head_bytes, &req, &used)) {
        case HttpParse::kIncomplete:
          if (eof) closeConn(c);  // gave up mid-request
          return;
        case HttpParse::kBad:
          owner_.stats_.bad_requests.fetch_add(1, std::memory_order_relaxed);
          owner_.counters_.bad_request.inc();
          release(c.in);
          respond(c, Response{400, "Bad Request", kTextPlain, bad_request_}, false, 1,
                  Close::kLinger);
          return;
        case HttpParse::kTooLarge:
          owner_.stats_.too_large.fetch_add(1, std::memory_order_relaxed);
          owner_.counters_.too_large.inc();
          release(c.in);
          respond(c, Response{431, "Request Header Fields Too Large", kTextPlain, too_large_},
                  false, 1, Close::kLinger);
          return;
        case HttpParse::kComplete: {
          // req's views point into c.in: route and copy what is needed before consuming it.
          Response r = route(req);
          const bool head = req.method == "HEAD";
          const int minor = req.version_minor;
          Close close = Close::kNo;
          if (req.has_body) {
            close = Close::kLinger;  // bodies are never read: answer, then drain and close
          } else if (!req.keep_alive || eof) {
            close = Close::kNow;
          }
          c.in.erase(0, used);
          if (close == Close::kLinger) release(c.in);
          respond(c, std::move(r), head, minor, close);
          // Loops only if the response was written at once and the connection stays open.
          break;
        }
      }
    }
  }

  static constexpr const char* kTextPlain = "text/plain; charset=utf-8";

  static std::shared_ptr<const std::string> staticBody(const char* text) {
    return std::make_shared<const std::string>(text);
  }

  // The reason phrases of the statuses a handler() is expected to answer; RFC 9112 §4 lets the
  // phrase be empty, and clients ignore it.
  static const char* reasonPhrase(int status) {
    switch (status) {
      case 200:
        return "OK";
      case 404:
        return "Not Found";
      case 500:
        return "Internal Server Error";
      case 503:
        return "Service Unavailable";
      default:
        return "";
    }
  }

  struct Response {
    int status;
    const char* reason;
    const char* type;
    std::shared_ptr<const std::string> body;
  };

  Response route(const HttpRequest& req) {
    if (req.method != "GET" && req.method != "HEAD") {
      return {405, "Method Not Allowed", kTextPlain, not_allowed_};
    }
    if (owner_.health_ && req.path == "/health") {
      if (owner_.lameduck()) return {503, "Service Unavailable", kTextPlain, lameduck_};
      return {200, "OK", kTextPlain, ok_};
    }
    if (owner_.metrics_ != nullptr && req.path == "/metrics") {
      return {200, "OK", kMetricsContentType, metricsBody()};
    }
    if (auto it = owner_.handlers_.find(req.path); it != owner_.handlers_.end()) {
      HttpResponse r = it->second();
      return {r.status, reasonPhrase(r.status), kTextPlain,
              std::make_shared<const std::string>(std::move(r.body))};
    }
    return {404, "Not Found", kTextPlain, not_found_};
  }

  // One render serves every response started within a second while an earlier one is still
  // being written: N slow scrapers cost one copy per second of write_timeout, not N copies.
  std::shared_ptr<const std::string> metricsBody() {
    if (auto last = last_metrics_.lock();
        last && now() - last_metrics_at_ < std::chrono::seconds(1)) {
      return last;
    }
    auto body = std::make_shared<const std::string>(owner_.metrics_->render());
    last_metrics_ = body;
    last_metrics_at_ = now();
    return body;
  }

  // Starts writing a response (HEAD: headers only). The request has been removed from c.in.
  void respond(Conn& c, Response r, bool head, int minor, Close close) {
    c.head = "HTTP/1.1 " + std::to_string(r.status) + " " + r.reason +
             "\r\nContent-Type: " + r.type +
             "\r\nContent-Length: " + std::to_string(r.body->size()) + "\r\n";
    if (close != Close::kNo) {
      c.head += "Connection: close\r\n";
    } else if (minor == 0) {
      c.head += "Connection: keep-alive\r\n";
    }
    c.head += "\r\n";
    c.body = head ? nullptr : std::move(r.body);
    c.sent = 0;
    c.close = close;
    c.phase = Phase::kWrite;
    c.since = now();
    c.deadline = c.since + limits_.write_timeout;
    writeResponse(c);
  }

  // Writes what the socket takes. Returns true when the response is complete and the
  // connection is back to reading requests.
  bool writeResponse(Conn& c) {
    const size_t body_size = c.body ? c.body->size() : 0;
    const size_t total = c.head.size() + body_size;
    while (c.sent < total) {
      iovec iov[2];
      int n = 0;
      if (c.sent < c.head.size()) {
        iov[n++] = {c.head.data() + c.sent, c.head.size() - c.sent};
        if (body_size > 0) iov[n++] = {const_cast<char*>(c.body->data()), body_size};
      } else {
        const size_t off = c.sent - c.head.size();
        iov[n++] = {const_cast<char*>(c.body->data()) + off, body_size - off};
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(n);
      const ssize_t w = ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          setEvents(c, EPOLLOUT);
          if (c.phase == Phase::kWrite) armTimer(c);
          return false;
        }
        closeConn(c);
        return false;
      }
      c.sent += static_cast<size_t>(w);
    }
    owner_.stats_.answered.fetch_add(1, std::memory_order_relaxed);
    release(c.head);
    c.body.reset();
    if (c.close == Close::kNow) {
      closeConn(c);
      return false;
    }
    if (c.close == Close::kLinger) {
      startLinger(c);
      return false;
    }
    c.phase = c.in.empty() ? Phase::kIdle : Phase::kRequest;
    c.since = now();
    c.deadline =
        c.since + (c.phase == Phase::kIdle ? limits_.idle_timeout : limits_.request_timeout);
    setEvents(c, EPOLLIN);
    if (c.phase == Phase::kClosed) return false;
    armTimer(c);
    return true;
  }

  void startLinger(Conn& c) {
    ::shutdown(c.fd.get(), SHUT_WR);
    release(c.in);
    c.phase = Phase::kLinger;
    c.since = now();
    c.deadline = c.since + limits_.linger_timeout;
    setEvents(c, EPOLLIN);
    if (c.phase == Phase::kClosed) return;
    armTimer(c);
    drain(c);
  }

  void drain(Conn& c) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      closeConn(c);  // EOF or error: done
      return;
    }
  }

  HttpServer& owner_;
  const HttpLimits limits_;
  const net::Fd listen_fd_;
  net::EventLoop loop_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;
  uint64_t next_id_ = 1;
  bool accept_failing_ = false;
  std::weak_ptr<const std::string> last_metrics_;
  net::Clock::time_point last_metrics_at_;
  const std::shared_ptr<const std::string> ok_ = staticBody("OK");
  const std::shared_ptr<const std::string> lameduck_ = staticBody("lameduck");
  const std::shared_ptr<const std::string> not_found_ = staticBody("404 page not found\n");
  const std::shared_ptr<const std::string> not_allowed_ = staticBody("method not allowed\n");
  const std::shared_ptr<const std::string> bad_request_ = staticBody("400 Bad Request");
  const std::shared_ptr<const std::string> too_large_ =
      staticBody("431 Request Header Fields Too Large");
};

// ---------------------------------------------------------------------------------------------
// HttpServer

HttpServer::HttpServer(std::string address, HttpLimits limits)
    : address_(std::move(address)), listen_(parseListenAddress(address_)), limits_(limits) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::enableHealth() { health_ = true; }

void HttpServer::enableMetrics(Registry& registry) {
  if (metrics_ != nullptr && metrics_ != &registry) {
    throw std::invalid_argument("metrics on " + address_ + ": already serving another registry");
  }
  metrics_ = &registry;
}

void HttpServer::handle(std::string path, std::function<HttpResponse()> handler) {
  if (path.empty() || path.front() != '/') {
    throw std::invalid_argument("HTTP listener " + address_ + ": path \"" + path +
                                "\" does not start with '/'");
  }
  if ((health_ && path == "/health") || (metrics_ != nullptr && path == "/metrics") ||
      handlers_.contains(path)) {
    throw std::invalid_argument("HTTP listener " + address_ + ": " + path + " is already served");
  }
  handlers_.emplace(std::move(path), std::move(handler));
}

void HttpServer::countLimitsInto(Registry& registry) {
  if (counted_) return;
  auto& dropped = registry.counter(
      "nodelocaldns_http_connections_dropped_total",
      "Connections of the health and metrics listeners closed at a limit: evicted for a new "
      "connection, request or write deadline passed, malformed or oversized request.",
      {"address", "reason"});
  counters_.evicted = dropped.with({address_, "evicted"});
  counters_.request_timeout = dropped.with({address_, "request_timeout"});
  counters_.write_timeout = dropped.with({address_, "write_timeout"});
  counters_.bad_request = dropped.with({address_, "bad_request"});
  counters_.too_large = dropped.with({address_, "too_large"});
  counters_.accept_backoffs =
      registry
          .counter("nodelocaldns_http_accept_backoffs_total",
                   "Times a health or metrics listener paused accepting because accept failed "
                   "(out of file descriptors or memory).",
                   {"address"})
          .with({address_});
  counted_ = true;
}

void HttpServer::enableHealthProbe(Histogram duration, Counter failures) {
  probe_ = true;
  probe_duration_ = duration;
  probe_failures_ = failures;
}

HttpStats HttpServer::stats() const {
  HttpStats s;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  s.accepted = stats_.accepted.load(kRelaxed);
  s.answered = stats_.answered.load(kRelaxed);
  s.evicted = stats_.evicted.load(kRelaxed);
  s.request_timeouts = stats_.request_timeouts.load(kRelaxed);
  s.write_timeouts = stats_.write_timeouts.load(kRelaxed);
  s.idle_timeouts = stats_.idle_timeouts.load(kRelaxed);
  s.bad_requests = stats_.bad_requests.load(kRelaxed);
  s.too_large = stats_.too_large.load(kRelaxed);
  s.accept_backoffs = stats_.accept_backoffs.load(kRelaxed);
  s.connections = stats_.connections.load(kRelaxed);
  return s;
}

void HttpServer::start() {
  if (started_) {
    return;
  }
  // A listener handed over by a predecessor process (node/handover.h) is the same socket, with
  // its accept queue: take it instead of binding (the port is still the predecessor's).
  const int inherited = inheritedSockets().take(SocketKind::kHttp, address_, 0);
  startOn(inherited >= 0 ? net::Fd(inherited) : listenHttp(address_));
}

void HttpServer::startOn(net::Fd owned) {
  const int fd = owned.get();  // borrowed for the checks; owned closes on every throw below
  if (started_) {
    throw std::runtime_error("HTTP listener " + address_ + ": already started");
  }
  int accepting = 0;
  int type = 0;
  socklen_t len = sizeof(accepting);
  socklen_t tlen = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || accepting == 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) {
    throw std::runtime_error("HTTP listener " + address_ + ": fd " + std::to_string(fd) +
                             " is not a listening stream socket");
  }
  // An inherited socket may be blocking: accept must never block the loop.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  const uint16_t port = bound.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  try {
    loop_ = std::make_unique<Loop>(*this, std::move(owned));  // owns fd from here
  } catch (const std::exception& e) {
    throw std::runtime_error("HTTP listener " + address_ + ": " + e.what());
  }
  bound_port_.store(port);
  fd_.store(fd);
  thread_ = std::thread([this] { loop_->run(); });
  started_ = true;
  if (probe_ && health_) {
    {
      std::lock_guard lock(probe_mu_);
      probe_stop_ = false;
    }
    probe_thread_ = std::thread([this] { probeLoop(); });
  }
}

void HttpServer::stop() {
  if (!started_) {
    return;
  }
  if (probe_thread_.joinable()) {
    {
      std::lock_guard lock(probe_mu_);
      probe_stop_ = true;
    }
    probe_cv_.notify_all();
    probe_thread_.join();
  }
  loop_->stop();
  if (thread_.joinable()) {
    thread_.join();
  }
  fd_.store(-1);
  loop_.reset();  // closes the connections and the listening socket
  bound_port_.store(0);
  started_ = false;
}

namespace {

// GET /health on host:port with a total timeout; true for a 200 answer.
bool probeOnce(const std::string& host, uint16_t port) {
  std::string err;
  auto addrs = listenAddresses(host, port, &err);
  if (addrs.empty()) return false;
  const net::SockAddr& to = addrs.front();
  const net::Fd owned(::socket(to.af(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!owned) return false;
  const int fd = owned.get();
  bool ok = false;
  int rc = ::connect(fd, to.get(), to.len);
  pollfd p{fd, POLLOUT, 0};
  if (rc == 0 || (errno == EINPROGRESS && ::poll(&p, 1, kProbeTimeoutSeconds * 1000) == 1)) {
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr == 0) {
      ::fcntl(fd, F_SETFL, 0);  // blocking, bounded by the timeouts below
      setTimeouts(fd, kProbeTimeoutSeconds);
      const std::string host_header = host.find(':') != std::string::npos ? "[" + host + "]" : host;
      if (sendAll(fd, "GET /health HTTP/1.1\r\nHost: " + host_header + ":" + std::to_string(port) +
                          "\r\nConnection: close\r\n\r\n")) {
        char buf[64];
        std::string got;
        while (got.size() < 12) {
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
        }
        ok = got.size() >= 12 && got.compare(0, 9, "HTTP/1.1 ") == 0 &&
             got.compare(9, 3, "200") == 0;
      }
    }
  }
  return ok;
}

}  // namespace

void HttpServer::probeLoop() {
  // CoreDNS uses "localhost" when the address has no host.
  std::string host =
      listen_.host.empty() || listen_.host == "localhost" ? "127.0.0.1" : listen_.host;
  const uint16_t p = port();
  const std::string url = "http://" +
                          (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                          std::to_string(p) + "/health";
  std::unique_lock lock(probe_mu_);
  while (!probe_cv_.wait_for(lock, kProbeInterval, [this] { return probe_stop_; })) {
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = probeOnce(host, p);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
    if (!ok) {
      probe_failures_.inc();
    }
    probe_duration_.observe(took.count());
    if (took > std::chrono::seconds(1)) {
      log::warn("plugin/health: Local health request to \"{}\" took more than 1s: {:.3f}s", url,
                took.count());
    }
    lock.lock();
  }
}

// ---------------------------------------------------------------------------------------------
// HttpEndpoints

HttpServer& HttpEndpoints::serverFor(const std::string& address) {
  const std::string key = keyOf(parseListenAddress(address));
  auto& slot = servers_[key];
  if (!slot) {
    slot = std::make_unique<HttpServer>(address);
  }
  return *slot;
}

HttpServer& HttpEndpoints::addHealth(const std::string& address) {
  HttpServer& s = serverFor(address);
  s.enableHealth();
  return s;
}

HttpServer& HttpEndpoints::addMetrics(const std::string& address, Registry& registry) {
  HttpServer& s = serverFor(address);
  s.enableMetrics(registry);
  return s;
}

HttpServer* HttpEndpoints::find(const std::string& address) {
  auto it = servers_.find(keyOf(parseListenAddress(address)));
  return it == servers_.end() ? nullptr : it->second.get();
}

Registry* HttpEndpoints::limitRegistry() const {
  Registry* registry = nullptr;
  for (const auto& [key, s] : servers_) {
    if (s->metrics_ != nullptr) registry = s->metrics_;
  }
  return registry;
}

size_t HttpEndpoints::keepRunning(HttpEndpoints& old) {
  // A server is kept only if it would be configured exactly as the new one: the counters of a
  // running server cannot be attached later (its loop thread reads them), so whether it counts
  // limit events is part of its role.
  const bool counting = limitRegistry() != nullptr;
  size_t kept = 0;
  for (auto& [key, s] : servers_) {
    auto it = old.servers_.find(key);
    if (it == old.servers_.end() || !it->second->started_) continue;
    const HttpServer& o = *it->second;
    if (o.health_ != s->health_ || o.metrics_ != s->metrics_ || o.probe_ != s->probe_ ||
        o.counted_ != counting) {
      continue;
    }
    s = std::move(it->second);
    old.servers_.erase(it);
    ++kept;
  }
  old.stop();
  return kept;
}

void HttpEndpoints::start() {
  // The Corefile's listeners count their limit events into the registry they serve (health-only
  // listeners into that of a metrics listener of the same set).
  if (Registry* registry = limitRegistry(); registry != nullptr) {
    for (auto& [key, s] : servers_) s->countLimitsInto(*registry);
  }
  try {
    for (auto& [key, s] : servers_) {
      s->start();
    }
  } catch (...) {
    stop();
    throw;
  }
}

std::vector<PassedSocket> HttpEndpoints::listeningSockets() const {
  std::vector<PassedSocket> out;
  for (const auto& [key, s] : servers_) {
    if (int fd = s->listeningFd(); fd >= 0) out.push_back({SocketKind::kHttp, s->address(), 0, fd});
  }
  return out;
}

void HttpEndpoints::stop() {
  for (auto& [key, s] : servers_) {
    s->stop();
  }
}

void HttpEndpoints::setLameduck(bool on) {
  for (auto& [key, s] : servers_) {
    s->setLameduck(on);
  }
}

}  // namespace nld::observability
