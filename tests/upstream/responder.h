#pragma once
// A scripted DNS responder for forwarder tests: UDP and TCP on 127.0.0.1 (same port), served by
// its own thread with poll(). Hand-written rather than using a Debian DNS server because the
// tests need misbehaviour on demand (stray IDs, wrong questions, TC=1, closed connections,
// out-of-order pipelined replies) and per-query observations (IDs, source ports).
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/fd.h"

namespace nld::upstream::testing {

enum class Mode {
  kAnswer,             // answer every query (A queries get 10.0.<tag>.1)
  kDrop,               // never answer
  kWrongIdFirst,       // UDP: wrong-ID, wrong-question and QR=0 packets first, then the answer
  kWrongQuestion,      // answer with a different QNAME
  kTruncate,           // UDP: TC=1 with an empty answer; TCP: answer
  kCloseTcp,           // TCP: close the connection on every query; UDP: drop
  kCloseSecondOnConn,  // TCP: answer the first query of a connection, close on the second
};

struct SeenQuery {
  bool tcp = false;
  uint16_t id = 0;
  uint16_t src_port = 0;
  uint16_t flags = 0;
  uint16_t arcount = 0;
  int conn = -1;      // TCP connection number (accept order)
  std::string qname;  // wire-form labels rendered as "a.b.c" (case preserved)
  std::vector<uint8_t> raw;
};

class Responder {
 public:
  explicit Responder(uint8_t tag = 1);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  uint16_t port() const { return port_; }
  void setMode(Mode m);
  void setDelay(std::chrono::milliseconds d);
  /// TCP: hold replies until `n` are pending (or 2 s passed), then send them in reverse order.
  void setHoldTcp(size_t n);
  /// TCP: write replies one byte per send() (exercises the client's partial-read handling).
  void setSplitTcp(bool on);

  std::vector<SeenQuery> queries() const;
  size_t count() const;
  size_t tcpAccepts() const { return accepts_.load(); }
  /// TCP connections the client closed (EOF seen by the responder).
  size_t tcpPeerCloses() const { return peer_closes_.load(); }
  /// Waits (bounded) until at least n queries were seen.
  bool waitForQueries(size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Conn {
    net::Fd fd;
    int number = 0;
    uint16_t peer_port = 0;
    size_t queries = 0;
    std::vector<uint8_t> buf;
  };
  struct Pending {
    std::chrono::steady_clock::time_point due;
    bool tcp = false;
    int conn_number = -1;
    sockaddr_in to{};
    std::vector<uint8_t> msg;
  };

  void run();
  void onUdp();
  void onAccept();
  bool onTcpReadable(Conn& c);  // false: close it
  void handle(const uint8_t* q, size_t n, bool tcp, Conn* c, const sockaddr_in* from);
  void sendNow(const Pending& p);
  void flushHeld(bool force);

  uint8_t tag_;
  uint16_t port_ = 0;
  net::Fd udp_fd_;
  net::Fd listen_fd_;
  std::vector<Conn> conns_;  // responder thread only
  std::vector<Pending> delayed_;
  std::vector<Pending> held_;
  std::chrono::steady_clock::time_point held_since_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> accepts_{0};
  std::atomic<size_t> peer_closes_{0};
  std::atomic<bool> split_tcp_{false};
  mutable std::mutex mu_;
  Mode mode_ = Mode::kAnswer;
  std::chrono::milliseconds delay_{0};
  size_t hold_ = 0;
  std::vector<SeenQuery> seen_;
  std::thread thread_;
};

/// A loopback port with nothing listening on UDP or TCP (bound, then closed).
uint16_t closedPort();

}  // namespace nld::upstream::testing
