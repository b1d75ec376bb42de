#include "observability/http_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

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
constexpr size_t kWorkerThreads = 2;  // scrapes and probes are rare; do not spawn a big pool
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
  server_ = std::make_unique<httplib::Server>();
  auto& s = *server_;
  s.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  s.set_read_timeout(kIoTimeoutSeconds, 0);
  s.set_write_timeout(kIoTimeoutSeconds, 0);
  s.set_keep_alive_timeout(kIoTimeoutSeconds);
  // httplib's default sets SO_REUSEPORT, which would let two servers (or another process)
  // silently share a port; we want a clear bind error instead. IPv6 sockets are dual-stack.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    int no = 0;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof(no));  // fails harmlessly on IPv4
  });
  if (health_) {
    s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (lameduck()) {
        res.status = 503;
        res.set_content("lameduck", "text/plain; charset=utf-8");
      } else {
        res.status = 200;
        res.set_content("OK", "text/plain; charset=utf-8");
      }
    });
  }
  if (metrics_ != nullptr) {
    const Registry* registry = metrics_;
    s.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content(registry->render(), kMetricsContentType);
    });
  }

  std::vector<std::string> hosts;
  if (listen_.host.empty()) {
    hosts = {"::", "0.0.0.0"};  // all addresses: dual-stack, or IPv4 only without IPv6
  } else if (listen_.host == "localhost") {
    hosts = {"127.0.0.1"};  // Go resolves localhost to the IPv4 loopback for listeners
  } else {
    hosts = {listen_.host};
  }
  int bound = -1;
  int err = 0;
  for (const auto& h : hosts) {
    errno = 0;
    if (listen_.port == 0) {
      bound = s.bind_to_any_port(h);
    } else {
      bound = s.bind_to_port(h, listen_.port) ? listen_.port : -1;
    }
    err = errno;
    if (bound > 0) {
      break;
    }
  }
  if (bound <= 0) {
    server_.reset();
    throw std::runtime_error("cannot listen on " + address_ + ": " +
                             (err != 0 ? std::string(std::strerror(err))
                                       : std::string("address not resolvable or not available")));
  }
  boundPort_.store(static_cast<uint16_t>(bound));
  thread_ = std::thread([&s] { s.listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs: wait for it (bounded).
  for (int i = 0; i < 5000 && !s.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  started_ = true;
  if (probe_ && health_) {
    {
      std::lock_guard lock(probeMu_);
      probeStop_ = false;
    }
    probeThread_ = std::thread([this] { probeLoop(); });
  }
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
  server_->stop();
  if (thread_.joinable()) {
    thread_.join();
  }
  server_.reset();
  boundPort_.store(0);
  started_ = false;
}

void HttpServer::probeLoop() {
  // CoreDNS uses "localhost" when the address has no host.
  std::string host = listen_.host.empty() || listen_.host == "localhost" ? "127.0.0.1"
                                                                           : listen_.host;
  const uint16_t p = port();
  httplib::Client client(host, p);
  client.set_connection_timeout(kProbeTimeoutSeconds, 0);
  client.set_read_timeout(kProbeTimeoutSeconds, 0);
  client.set_write_timeout(kProbeTimeoutSeconds, 0);
  const std::string url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                          ":" + std::to_string(p) + "/health";
  std::unique_lock lock(probeMu_);
  while (!probeCv_.wait_for(lock, kProbeInterval, [this] { return probeStop_; })) {
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    auto res = client.Get("/health");
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
    if (!res || res->status != 200) {
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
