#include "ovsdb/stream.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "net/address.h"
#include "net/fd.h"

namespace nld::ovsdb {

namespace {

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::string sslErrorText(const char* what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  if (e == 0) return std::string(what) + ": " + std::strerror(errno);
  ERR_error_string_n(e, buf, sizeof buf);
  return std::string(what) + ": " + buf;
}

bool waitFd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

// Opens a non-blocking connected socket.
Result<net::Fd> connectSocket(const Remote& remote, int timeout_ms) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (remote.kind == Remote::Kind::kUnix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (remote.path.size() >= sizeof un.sun_path) {
      return fail("unix socket path too long: " + remote.path);
    }
    std::memcpy(un.sun_path, remote.path.data(), remote.path.size());
    std::memcpy(&ss, &un, sizeof un);
    len = sizeof un;
  } else {
    const auto ip = net::parseSockAddr(remote.host, remote.port);
    if (!ip) {
      return fail("not an IP address: " + remote.host);
    }
    family = ip->af();
    ss = ip->storage;
    len = ip->len;
  }
  net::Fd owned(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!owned) {
    return fail(errnoText("socket"));
  }
  const int fd = owned.get();
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  sockaddr* sa = static_cast<sockaddr*>(static_cast<void*>(&ss));
  if (::connect(fd, sa, len) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      return fail(errnoText(("connect " + remote.toString()).c_str()));
    }
    if (!waitFd(fd, POLLOUT, timeout_ms)) {
      return fail("connect " + remote.toString() + ": timed out");
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr != 0) {
      return fail("connect " + remote.toString() + ": " + std::strerror(soerr));
    }
  }
  return owned;
}

class SocketStream : public Stream {
 public:
  explicit SocketStream(net::Fd fd) : fd_(std::move(fd)) {}
  ~SocketStream() override = default;
  SocketStream(const SocketStream&) = delete;
  SocketStream& operator=(const SocketStream&) = delete;

  int fd() const override { return fd_.get(); }

  Result<std::size_t> read(char* buf, std::size_t len) override {
    ssize_t n;
    do {
      n = ::recv(fd_.get(), buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) return fail("connection closed by server");
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return fail(errnoText("recv"));
  }

  Result<void> writeAll(std::string_view data, int timeout_ms) override {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!waitFd(fd_.get(), POLLOUT, timeout_ms)) return fail("send: timed out");
        continue;
      }
      return fail(errnoText("send"));
    }
    return {};
  }

 private:
  net::Fd fd_;
};

// TLS over a connected socket with OpenSSL (the OVS/OVN ssl: transport is plain TLS with
// mutual certificate authentication; OpenSSL is what ovsdb-server itself uses).
class SslStream : public Stream {
 public:
  SslStream(net::Fd fd, SSL_CTX* ctx, SSL* ssl) : fd_(std::move(fd)), ctx_(ctx), ssl_(ssl) {}
  ~SslStream() override {  // fd_ closes after the TLS objects are freed
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  SslStream(const SslStream&) = delete;
  SslStream& operator=(const SslStream&) = delete;

  int fd() const override { return fd_.get(); }
  bool hasBufferedData() const override { return SSL_pending(ssl_) > 0; }

  Result<std::size_t> read(char* buf, std::size_t len) override {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, static_cast<int>(len > 1u << 20 ? 1u << 20 : len));
    if (n > 0) return static_cast<std::size_t>(n);
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    if (e == SSL_ERROR_ZERO_RETURN) return fail("connection closed by server");
    return fail(sslErrorText("SSL_read"));
  }

  Result<void> writeAll(std::string_view data, int timeout_ms) override {
    while (!data.empty()) {
      ERR_clear_error();
      int n = SSL_write(ssl_, data.data(),
                        static_cast<int>(data.size() > 1u << 20 ? 1u << 20 : data.size()));
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      int e = SSL_get_error(ssl_, n);
      short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (ev == 0) return fail(sslErrorText("SSL_write"));
      if (!waitFd(fd_.get(), ev, timeout_ms)) return fail("SSL_write: timed out");
    }
    return {};
  }

 private:
  net::Fd fd_;
  SSL_CTX* ctx_;
  SSL* ssl_;
};

Result<std::unique_ptr<Stream>> openSsl(net::Fd owned, const Remote& remote, const SslOptions& opts,
                                        int timeout_ms) {
  if (opts.private_key.empty() || opts.certificate.empty() || opts.ca_cert.empty()) {
    return fail("ssl remote " + remote.toString() +
                " needs --ovn-nb-ssl-key, --ovn-nb-ssl-cert and --ovn-nb-ssl-ca");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return fail(sslErrorText("SSL_CTX_new"));
  auto fail_ctx = [&](const char* what) -> Result<std::unique_ptr<Stream>> {
    std::string why = sslErrorText(what);
    SSL_CTX_free(ctx);
    return fail(std::move(why));
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, opts.certificate.c_str()) != 1)
    return fail_ctx("certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, opts.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail_ctx("private key");
  if (SSL_CTX_load_verify_locations(ctx, opts.ca_cert.c_str(), nullptr) != 1)
    return fail_ctx("CA certificate");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return fail_ctx("SSL_new");
  const int fd = owned.get();
  SSL_set_fd(ssl, fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r == 1) break;
    int e = SSL_get_error(ssl, r);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (ev == 0 || left <= 0 || !waitFd(fd, ev, static_cast<int>(left))) {
      std::string why = ev == 0 ? sslErrorText(("TLS handshake with " + remote.toString()).c_str())
                                : "TLS handshake with " + remote.toString() + ": timed out";
      SSL_free(ssl);
      SSL_CTX_free(ctx);
      return fail(std::move(why));
    }
  }
  return std::unique_ptr<Stream>(std::make_unique<SslStream>(std::move(owned), ctx, ssl));
}

}  // namespace

Result<std::unique_ptr<Stream>> Stream::open(const Remote& remote, const SslOptions& ssl,
                                             int timeout_ms) {
  auto fd = connectSocket(remote, timeout_ms);
  if (!fd) return fail(std::move(fd).error());
  if (remote.kind == Remote::Kind::kSsl) return openSsl(std::move(*fd), remote, ssl, timeout_ms);
  return std::unique_ptr<Stream>(std::make_unique<SocketStream>(std::move(*fd)));
}

}  // namespace nld::ovsdb
