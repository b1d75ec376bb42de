#pragma once
// The upstream forwarder: the CoreDNS `forward` plugin for one stanza on one worker thread.
//
// Per client query: coalescing of identical in-flight queries, policy-ordered upstream selection
// skipping down upstreams, per-attempt and overall timeouts, a bounded number of attempts (CoreDNS
// v1.13 spins on a fast-failing upstream, coredns/coredns#7723), UDP over a small per-worker pool
// of connected sockets with kernel-random source ports and TC → TCP fallback, pipelined TCP
// (RFC 7766), our own OPT towards the upstream (RFC 6891: the client's OPT is never forwarded).
//
// UDP sockets (RFC 5452 trade-off): a socket per exchange (socket + connect + epoll_ctl + close,
// ~7 system calls and a kernel socket allocation per miss) cost more than half of a miss. A
// socket now carries up to Settings::udp_queries_per_socket (64) queries, each with a random ID
// unique on that socket, and takes no new query once it is `expire` (10 s) old, after an attempt
// on it timed out, or after an ICMP error; it is closed when its last query is done. The source
// port is still kernel-random per socket and every reply must match port, ID and question.
// CoreDNS itself reuses its UDP sockets for `expire` without a query bound; unbound picks a new
// port per query.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns/key_hash.h"
#include "dns/message.h"
#include "net/event_loop.h"
#include "upstream/settings.h"
#include "upstream/shared_state.h"
#include "upstream/tcp_pool.h"
#include "upstream/u64_map.h"

namespace nld::upstream {

/// Client queries that may wait on one upstream query (coalescing). One more is refused: a
/// single hot or attacked name cannot take the whole concurrency bound, and nothing queues
/// without bound behind one exchange.
inline constexpr size_t kMaxWaitersPerFlight = 1024;
/// Free flight records kept for reuse per Forwarder; records freed beyond this are deleted, so
/// the pool shrinks back after a burst (a record is ~1 KiB).
inline constexpr size_t kFlightPoolMax = 256;

/// Outcome of one forwarded query.
struct Result {
  enum class Status : uint8_t { kOk, kServFail, kFormErr, kRefused };
  Status status = Status::kServFail;
  /// The upstream reply (Ok only; valid only during the callback). Its ID and question are the
  /// ones sent upstream: the caller restores the client's ID (and, for coalesced queries, the
  /// client's question bytes, which have the same length).
  dns::ByteView packet;
  const dns::Response* parsed = nullptr;  // its parse (Ok only)
  /// Index into Settings::to: the upstream that answered (Ok, FormErr) or was tried last
  /// (ServFail); -1 if none was tried.
  int upstream = -1;
  /// Why it is not Ok, for the errors plugin's line (static text; empty for Ok).
  std::string_view error;
};

/// Result::error texts.
inline constexpr std::string_view kErrLimitExceeded = "concurrent queries exceeded maximum";
inline constexpr std::string_view kErrTooManyWaiters =
    "too many queries waiting for the same upstream answer";
inline constexpr std::string_view kErrUpstreamsFailed = "all upstreams failed or timed out";
inline constexpr std::string_view kErrShutdown = "forwarder shut down";
inline constexpr std::string_view kErrOtherQuestion = "upstream answered another question";
using Callback = std::function<void(const Result&)>;

/// Counters of one Forwarder (loop thread only; for tests and debugging).
struct ForwarderStats {
  uint64_t attempts = 0;  // exchanges started (TC→TCP redo and cached-close redo included)
  uint64_t udp_attempts = 0;
  uint64_t udp_sockets_opened = 0;  // upstream UDP sockets created (each a new source port)
  uint64_t tcp_attempts = 0;
  uint64_t coalesced = 0;         // client queries that joined an in-flight upstream query
  uint64_t coalesce_rejects = 0;  // refused: the flight they would join had kMaxWaitersPerFlight
  uint64_t stray_replies = 0;     // UDP datagrams ignored (wrong ID/question/unparseable)
};

/// One forward stanza on one worker. Lives on, and is used only from, its EventLoop's thread
/// (construct/destroy there too, or before the loop runs / after it stopped).
class Forwarder final : public TcpSink, public net::RoundEndHook {
 public:
  Forwarder(net::EventLoop& loop, std::shared_ptr<SharedForwardState> shared, ForwardObserver* obs);
  ~Forwarder() override;
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  /// Forwards the client's query. `done` runs exactly once, on the loop thread, possibly
  /// synchronously (e.g. Refused by max_concurrent or the default concurrency bound). Identical
  /// in-flight queries on this worker (key: lower-cased QNAME, QTYPE, QCLASS, DO, CD) are sent
  /// upstream once and all waiters get the same reply (coalescing), up to kMaxWaitersPerFlight
  /// waiters (more are Refused). `query_pkt` and `q` need to stay valid only during the call.
  /// Neither running `done` nor destroying it may destroy this Forwarder (the forwarder still
  /// uses its members after the callbacks; defer such destruction with EventLoop::post).
  /// `key_hash` is dns::keyHash(q), computed once per query by the pipeline (the cache uses
  /// the same value); the overload without it computes it.
  void resolve(dns::ByteView query_pkt, const dns::Query& q, uint64_t key_hash, bool client_tcp,
               Callback done);
  void resolve(dns::ByteView query_pkt, const dns::Query& q, bool client_tcp, Callback done) {
    resolve(query_pkt, q, dns::keyHash(q), client_tcp, std::move(done));
  }
  /// Fails pending queries with ServFail and closes sockets (loop thread). Later resolve() calls
  /// fail with ServFail right away.
  void shutdown();
  /// Client queries waiting for a result on this worker.
  size_t inflight() const { return inflight_; }
  const ForwarderStats& stats() const { return stats_; }
  /// Flight records allocated right now, in use or pooled (loop thread; for tests).
  size_t flightRecords() const { return flight_records_; }
  /// Upstream UDP sockets open right now (loop thread; for tests).
  size_t udpSocketsOpen() const { return udp_sockets_.size(); }
  const SharedForwardState& shared() const { return *shared_; }

  // net::RoundEndHook: sends the UDP queries queued during this loop round.
  void onRoundEnd() override { flushSends(); }

  // TcpSink (called by the TCP pool)
  void onTcpReply(uint64_t token, dns::ByteView msg) override;
  void onTcpFailed(uint64_t token, bool cached_close) override;

 private:
  struct Flight;
  class UdpSocket;
  friend class UdpSocket;

  void startNextAttempt(Flight& f);
  /// Starts one exchange; false if it failed synchronously (a failure is recorded for the
  /// upstream unless the cause was local, e.g. the TCP pool is full).
  bool startExchange(Flight& f, int upstream, bool tcp, bool fresh_conn);
  bool buildUpstreamQuery(Flight& f);
  void endAttempt(Flight& f);
  void attemptFailed(Flight& f, bool record_failure);
  void onAttemptTimeout(uint64_t flight_id);
  void attemptTimedOut(Flight& f);
  /// An attempt deadline with the full attempt timeout (see startExchange).
  struct Deadline {
    net::Clock::time_point at;
    uint64_t flight;
    uint64_t seq;
  };
  bool deadlineIsStale(const Deadline& d);
  void armDeadlineTimer();
  void onDeadlineTimer();
  void onUdpReadable(UdpSocket& s);
  /// The socket new UDP queries to `upstream` go out on (opened on demand); nullptr if none can
  /// be opened or it has no free ID.
  UdpSocket* udpSocketFor(int upstream, uint16_t& qid);
  /// No new queries on `s`; closed now if it has none outstanding, else when the last one ends.
  void retireSocket(UdpSocket& s);
  void releaseSlot(UdpSocket& s, uint8_t slot);
  void closeSocket(UdpSocket& s);
  /// Fails every attempt outstanding on `s` (ICMP error on the connected socket).
  void failSocket(UdpSocket& s);
  void flushSends();
  struct PendingSend {
    uint64_t flight;
    uint64_t seq;  // the attempt (Flight::seq) whose query is to be sent
  };
  /// Validates and delivers a reply to flight f. On UDP a mismatch is ignored (returns false).
  bool handleReply(Flight& f, dns::ByteView msg, bool tcp);
  void finish(uint64_t flight_id, Result::Status status, dns::ByteView pkt,
              const dns::Response* parsed, int upstream);
  Flight* find(uint64_t flight_id);
  Flight& allocFlight();
  /// Returns a finished flight's record to the pool; `waiters` (emptied) gives back its capacity.
  void releaseFlight(Flight& f, std::vector<Callback>&& waiters);

  net::EventLoop& loop_;
  std::shared_ptr<SharedForwardState> shared_;
  ForwardObserver* obs_;
  TcpPool tcp_;
  std::vector<std::unique_ptr<Flight>> flight_slots_;  // index = low 32 bits of a flight id
  std::vector<uint32_t> free_flights_;  // free slots; their record may have been deleted
  size_t flight_records_ = 0;           // non-null entries of flight_slots_
  size_t pooled_flights_ = 0;           // free slots whose record is kept
  uint64_t flight_generation_ = 0;
  std::vector<PendingSend> sends_;    // UDP queries to send at the end of this round
  std::vector<PendingSend> sending_;  // the batch being sent (capacity kept)
  bool sends_requested_ = false;
  std::deque<Deadline> deadlines_;  // FIFO: equal timeouts expire in queue order
  net::EventLoop::TimerId deadline_timer_ = 0;
  U64Map by_key_;  // coalescing hash → flight id (in-flight, keyed flights only)
  size_t inflight_ = 0;
  bool shut_down_ = false;
  ForwarderStats stats_;
  std::vector<std::shared_ptr<UdpSocket>> udp_sockets_;  // every open upstream UDP socket
  std::vector<UdpSocket*> udp_current_;  // per upstream: the socket taking new queries, or null
  /// recvmmsg buffers shared by every UDP socket of this worker (allocated on first use).
  std::unique_ptr<uint8_t[]> udp_bufs_;
  dns::Response resp_;  // reused parse of upstream replies
};

}  // namespace nld::upstream
