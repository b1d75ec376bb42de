#include "observability/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/log.h"

namespace nld::observability {

namespace {

constexpr time_t kIoTimeoutSeconds = 5;  // CoreDNS: 5 s read/write/idle
constexpr auto kProbeInterval = std::chrono::seconds(1);
constexpr time_t kProbeTimeoutSeconds = 3;
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string keyOf(const ListenAddress& a) { return a.host + "|" + std::to_string(a.port); }

}  // namespace

ListenAddress parseListenAddress(std::string_view address) {
  const std::string quoted = "listen address \"" + std::string(address) + "\"";
  ListenAddress out;
  std::string_view portText;
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
    portText = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument(quoted + ": missing port (expected host:port or :port)");
    }
    out.host = std::string(address.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      throw std::invalid_argument(quoted + ": IPv6 addresses must be in brackets");
    }
    portText = address.substr(colon + 1);
  }
  if (portText.empty() || portText.size() > 5) {
    throw std::invalid_argument(quoted + ": invalid port");
  }
  uint32_t port = 0;
  for (char c : portText) {
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
// HttpServer
//
// Hand-written rather than cpp-httplib: these endpoints answer two fixed GET paths a few times a
// minute, and Debian's libcpp-httplib is built against OpenSSL, whose 3.4 MiB of mapped library
// alone is half of node-cache's idle RSS budget (issue 6; see docs/benchmarks.md). One thread
// accepts and answers each request in turn with short socket timeouts; `Connection: close`.

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

std::string response(int status, const char* reason, const std::string& type,
                     const std::string& body, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  out += "Content-Type: " + type + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head) out += body;
  return out;
}

// Resolves a listen host to socket addresses to try in order.
std::vector<sockaddr_storage> listenAddresses(const std::string& host, uint16_t port,
                                              std::string* err) {
  std::vector<sockaddr_storage> out;
  auto add4 = [&](const char* ip) {
    sockaddr_storage ss{};
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
    out.push_back(ss);
  };
  if (host.empty()) {
    sockaddr_storage ss{};
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_any;
    out.push_back(ss);   // all addresses, dual-stack
    add4("0.0.0.0");     // IPv4 only where IPv6 is unavailable
    return out;
  }
  if (host == "localhost") {
    add4("127.0.0.1");   // Go resolves localhost to the IPv4 loopback for listeners
    return out;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string portText = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), portText.c_str(), &hints, &res);
  if (rc != 0) {
    *err = std::string("address not resolvable or not available (") + gai_strerror(rc) + ")";
    return out;
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    out.push_back(ss);
  }
  ::freeaddrinfo(res);
  return out;
}

socklen_t sockLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

HttpServer::HttpServer(std::string address)
    : address_(std::move(address)), listen_(parseListenAddress(address_)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::enableHealth() { health_ = true; }

void HttpServer::enableMetrics(const Registry& registry) {
  if (metrics_ != nullptr && metrics_ != &registry) {
    throw std::invalid_argument("metrics on " + address_ + ": already serving another registry");
  }
  metrics_ = &registry;
}

void HttpServer::enableHealthProbe(Histogram duration, Counter failures) {
  probe_ = true;
  probeDuration_ = duration;
  probeFailures_ = failures;
}

void HttpServer::start() {
  if (started_) {
    return;
  }
  std::string err;
  const auto addrs = listenAddresses(listen_.host, listen_.port, &err);
  int fd = -1;
  for (const auto& ss : addrs) {
    fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = std::strerror(errno);
      continue;
    }
    int yes = 1;
    int no = 0;
    // No SO_REUSEPORT: a port already in use must be a clear bind error, not a silent share.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof(no));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), sockLen(ss)) == 0 &&
        ::listen(fd, 64) == 0) {
      break;
    }
    err = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) {
    throw std::runtime_error("cannot listen on " + address_ + ": " +
                             (err.empty() ? std::string("no usable address") : err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  const uint16_t port = bound.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot listen on " + address_ + ": pipe: " + std::strerror(errno));
  }
  listenFd_ = fd;
  wakeRead_ = pipefd[0];
  wakeWrite_ = pipefd[1];
  boundPort_.store(port);
  thread_ = std::thread([this] { serveLoop(); });
  started_ = true;
  if (probe_ && health_) {
    {
      std::lock_guard lock(probeMu_);
      probeStop_ = false;
    }
    probeThread_ = std::thread([this] { probeLoop(); });
  }
}

void HttpServer::serveLoop() {
  for (;;) {
    pollfd p[2] = {{listenFd_, POLLIN, 0}, {wakeRead_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;  // stop()
    if ((p[0].revents & POLLIN) == 0) continue;
    int c = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    serveConnection(c);
    ::close(c);
  }
}

void HttpServer::serveConnection(int fd) {
  setTimeouts(fd, kIoTimeoutSeconds);
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    if (req.size() > 16384) {
      sendAll(fd, response(431, "Request Header Fields Too Large", "text/plain", "", false));
      return;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed, timed out or failed: nothing to answer
    req.append(buf, static_cast<size_t>(n));
  }
  // Request line: METHOD SP TARGET SP VERSION
  const size_t eol = req.find_first_of("\r\n");
  const std::string line = req.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    sendAll(fd, response(400, "Bad Request", "text/plain", "bad request\n", false));
    return;
  }
  const std::string method = line.substr(0, sp1);
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    sendAll(fd, response(405, "Method Not Allowed", "text/plain", "method not allowed\n", false));
    return;
  }
  if (health_ && path == "/health") {
    if (lameduck()) {
      sendAll(fd, response(503, "Service Unavailable", "text/plain; charset=utf-8", "lameduck",
                           head));
    } else {
      sendAll(fd, response(200, "OK", "text/plain; charset=utf-8", "OK", head));
    }
    return;
  }
  if (metrics_ != nullptr && path == "/metrics") {
    sendAll(fd, response(200, "OK", kMetricsContentType, metrics_->render(), head));
    return;
  }
  sendAll(fd, response(404, "Not Found", "text/plain; charset=utf-8", "404 page not found\n",
                       head));
}

void HttpServer::stop() {
  if (!started_) {
    return;
  }
  if (probeThread_.joinable()) {
    {
      std::lock_guard lock(probeMu_);
      probeStop_ = true;
    }
    probeCv_.notify_all();
    probeThread_.join();
  }
  const char x = 1;
  ssize_t w = ::write(wakeWrite_, &x, 1);
  (void)w;
  if (thread_.joinable()) {
    thread_.join();
  }
  ::close(listenFd_);
  ::close(wakeRead_);
  ::close(wakeWrite_);
  listenFd_ = wakeRead_ = wakeWrite_ = -1;
  boundPort_.store(0);
  started_ = false;
}

namespace {

// GET /health on host:port with a total timeout; true for a 200 answer.
bool probeOnce(const std::string& host, uint16_t port) {
  std::string err;
  auto addrs = listenAddresses(host, port, &err);
  if (addrs.empty()) return false;
  const sockaddr_storage& ss = addrs.front();
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  bool ok = false;
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&ss), sockLen(ss));
  pollfd p{fd, POLLOUT, 0};
  if (rc == 0 || (errno == EINPROGRESS && ::poll(&p, 1, kProbeTimeoutSeconds * 1000) == 1)) {
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr == 0) {
      ::fcntl(fd, F_SETFL, 0);  // blocking, bounded by the timeouts below
      setTimeouts(fd, kProbeTimeoutSeconds);
      const std::string hostHeader = host.find(':') != std::string::npos ? "[" + host + "]" : host;
      if (sendAll(fd, "GET /health HTTP/1.1\r\nHost: " + hostHeader + ":" + std::to_string(port) +
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
  ::close(fd);
  return ok;
}

}  // namespace

void HttpServer::probeLoop() {
  // CoreDNS uses "localhost" when the address has no host.
  std::string host = listen_.host.empty() || listen_.host == "localhost" ? "127.0.0.1"
                                                                           : listen_.host;
  const uint16_t p = port();
  const std::string url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                          ":" + std::to_string(p) + "/health";
  std::unique_lock lock(probeMu_);
  while (!probeCv_.wait_for(lock, kProbeInterval, [this] { return probeStop_; })) {
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = probeOnce(host, p);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
    if (!ok) {
      probeFailures_.inc();
    }
    probeDuration_.observe(took.count());
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

HttpServer& HttpEndpoints::addMetrics(const std::string& address, const Registry& registry) {
  HttpServer& s = serverFor(address);
  s.enableMetrics(registry);
  return s;
}

HttpServer* HttpEndpoints::find(const std::string& address) {
  auto it = servers_.find(keyOf(parseListenAddress(address)));
  return it == servers_.end() ? nullptr : it->second.get();
}

void HttpEndpoints::start() {
  try {
    for (auto& [key, s] : servers_) {
      s->start();
    }
  } catch (...) {
    stop();
    throw;
  }
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
