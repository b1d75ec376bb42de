// Fuzz target: DNS over TCP (RFC 7766 two-byte length framing, pipelining, half-close) as served
// by the real TcpListener (fuzz/tcp_framing covers the TcpFramer alone). The target
// drives it from the outside: one listener on 127.0.0.1 served by an event loop thread, and per
// input one client connection that writes the input in chunks, half-closes, and reads until the
// server closes. The Corefile forwards example.org to an in-process UDP responder on loopback
// that answers at once (the asynchronous path: pending queries, paused reading, answers out of
// order); every other query gets a synchronous answer (REFUSED, FORMERR, NOTIMP).
//
// Checked: the server closes the connection after the client's EOF (no hang), every answer is a
// complete length-prefixed frame holding at least a DNS header, there are never more answers than
// complete frames sent, and no connection is left open on the listener afterwards.
//
// Input layout: byte 0 selects the write size (1..256 bytes per send: frames split across
// reads); the rest is the client's byte stream.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "config/corefile.h"
#include "dns/message.h"
#include "dns/name.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/tcp_handler.h"

namespace {

using namespace nld;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "dns_tcp_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// Answers every query it receives at once with the same message flagged as a response.
struct Responder {
  int fd = -1;
  uint16_t port = 0;
  Responder() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    check(fd >= 0, "responder socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, "responder bind");
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    std::thread([this] {
      uint8_t buf[4096];
      for (;;) {
        sockaddr_storage from{};
        socklen_t fl = sizeof(from);
        ssize_t n = ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
        // A well-formed empty NOERROR answer to the question asked (ID, question kept; QR and RA
        // set; TC clear, or the forwarder would retry over TCP, where nothing listens). An echo
        // of odd queries (extra records, TC=1) would be refused by the forwarder's answer checks
        // and the query would wait out its 5 s upstream budget instead.
        dns::Query q;
        if (n < 12 || dns::parseQuery(dns::ByteView(buf, size_t(n)), q) != dns::QueryStatus::kOk)
          continue;
        n = static_cast<ssize_t>(q.question.end);
        buf[2] = static_cast<uint8_t>((buf[2] & 0x79) | 0x80);  // QR, opcode and RD kept, TC/AA off
        buf[3] = 0x80;                                          // RA, NOERROR
        dns::store16(buf + 6, 0);
        dns::store16(buf + 8, 0);
        dns::store16(buf + 10, 0);
        ::sendto(fd, buf, size_t(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
    }).detach();  // runs until the process exits
  }
};

// The server side, built once and kept for the whole run (the loop thread never stops).
struct Server {
  Responder responder;
  observability::Registry registry;
  observability::CorednsMetrics catalogue{registry};
  server::ServerMetrics metrics{catalogue, 1};
  net::EventLoop loop;
  server::Pipeline pipeline{loop, metrics, 0, "fuzz-identity"};  // id.server answered too
  std::unique_ptr<server::TcpListener> listener;
  uint16_t port = 0;
  std::thread thread;

  Server() {
    // Timeouts far above any run, so closing is always the protocol's doing, not a timer's.
    const std::string text =
        "example.org:53 {\n  forward . 127.0.0.1:" + std::to_string(responder.port) + "\n}\n";
    pipeline.setPlan(plan::buildPlan(config::parseCorefile(text, "fuzz"), 1, &metrics));
    net::Fd listening = net::listenTcp("127.0.0.1", 0);
    const int fd = listening.get();  // borrowed: the listener owns it
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    server::TcpLimits limits;
    limits.first_read = std::chrono::seconds(60);
    limits.idle = std::chrono::seconds(60);
    limits.frame = std::chrono::seconds(60);
    // Every frame of an input in flight at once (8 KiB holds at most ~600 frames): queries the
    // forwarder gives up on all end within one 5 s budget, so "closed after EOF" is checked
    // against one budget, not one per batch of 64 (a false report the CI fuzz run hit).
    limits.max_inflight_per_conn = 1024;
    listener = std::make_unique<server::TcpListener>(loop, pipeline, std::move(listening), limits);
    listener->start();
    thread = std::thread([this] { loop.run(); });
    thread.detach();  // runs until the process exits
  }

  size_t connections() {
    std::promise<size_t> p;
    auto f = p.get_future();
    loop.post([&] { p.set_value(listener->connections()); });
    return f.get();
  }
};

Server& theServer() {
  static Server* s = new Server();  // never destroyed: the loop thread outlives main's return
  return *s;
}

// Reads until EOF or reset; false if the server keeps the connection open for 12 s: longer than
// the forwarder's 5 s budget for a query (with margin for a loaded machine) (an answer the
// forwarder refuses ends as SERVFAIL after it), shorter than this target's per-input timeout
// (dns_tcp_fuzz.options), so the report names it..
bool readAll(int fd, std::vector<uint8_t>& in) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 12000) != 1) return false;
    uint8_t buf[16384];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    in.insert(in.end(), buf, buf + n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Server& s = theServer();
  const size_t chunk = 1 + data[0];
  const uint8_t* stream = data + 1;
  const size_t len = size - 1;

  // Complete frames in the input: an upper bound on the number of answers.
  size_t frames = 0;
  for (size_t off = 0; off + 2 <= len;) {
    const size_t flen = nld::dns::load16(stream + off);
    if (off + 2 + flen > len) break;
    ++frames;
    off += 2 + flen;
  }

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(fd >= 0, "client socket");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(s.port);
  check(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, "connect");
  // The server may close early (a malformed frame): later sends then fail, which is fine.
  for (size_t off = 0; off < len; off += chunk) {
    const size_t n = std::min(chunk, len - off);
    if (::send(fd, stream + off, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) break;
  }
  ::shutdown(fd, SHUT_WR);
  std::vector<uint8_t> in;
  check(readAll(fd, in), "server did not close the connection after the client's EOF");
  ::close(fd);

  size_t answers = 0;
  for (size_t off = 0; off < in.size();) {
    check(off + 2 <= in.size(), "answer stream ends inside a length prefix");
    const size_t alen = nld::dns::load16(in.data() + off);
    check(alen >= 12, "answer shorter than a DNS header");
    check(off + 2 + alen <= in.size(), "answer stream ends inside a frame");
    off += 2 + alen;
    ++answers;
  }
  // For writing seeds: DNS_TCP_FUZZ_VERBOSE=1 shows what each input got.
  static const bool kVerbose = std::getenv("DNS_TCP_FUZZ_VERBOSE") != nullptr;
  if (kVerbose)
    std::fprintf(stderr, "dns_tcp_fuzz: %zu frames sent, %zu answers\n", frames, answers);
  check(answers <= frames, "more answers than queries");
  check(s.connections() == 0, "connection left open after close");
  return 0;
}
