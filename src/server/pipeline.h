#pragma once
// The query path of one worker: parse → pick the server block → (metrics, errors, log) → cache →
// loop → template → hosts → forward, in CoreDNS's fixed plugin order. Runs on the worker's loop
// thread only.
//
// A query is answered either synchronously (errors, REFUSED, cache hits: the answer is written
// into the caller's buffer, nothing is allocated) or asynchronously (cache miss: the forwarder
// calls back later and the answer goes out through the Reply the transport provided).
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_function.h"
#include "dns/message.h"
#include "net/address.h"
#include "net/event_loop.h"
#include "plan/plan.h"
#include "server/errors.h"

namespace nld::server {

// The data path reads the compiled plan (src/plan) and asks its plugins (src/plugin) throughout;
// their names are brought in once here.
using plan::BlockPlan;
using plan::ForwardPlan;
using plan::ListenerPlan;
using plan::Plan;
using plan::ZoneTable;
using plugin::HostsPlugin;
using plugin::TemplatePlugin;

class ServerMetrics;
enum class AnswerPlugin : uint8_t;  // server/metrics.h

enum class Proto : uint8_t { kUdp = 0, kTcp = 1 };

/// How an asynchronous answer is delivered (UDP: sendto the client; TCP: write on the
/// connection if it is still open). Called on the loop thread. Move-only, with room inside for
/// a UDP reply's state (handler, liveness, peer, reply source: 104 bytes), so a miss allocates
/// nothing for it (std::function allocated twice per miss).
inline constexpr size_t kReplyInline = 112;
using Reply = UniqueFunction<void(dns::ByteView answer), kReplyInline>;
/// Builds a Reply on demand: only cache misses need one; hits never build one.
class ReplyFactory {
 public:
  virtual ~ReplyFactory() = default;
  virtual Reply make() = 0;
};

/// Per-worker runtime state of one block: its cache partition and forwarders.
struct BlockRuntime {
  /// Shared: other workers may look it up (PeerCaches), and a reload may hand it to the next
  /// generation's block with the same cache identity.
  std::shared_ptr<cache::Cache> cache;
  std::vector<std::unique_ptr<upstream::Forwarder>> forwarders;
  /// The entries this worker has reported to the coredns_cache_entries gauge for `cache`: the
  /// gauge is brought to the cache's own count after every change (Pipeline::syncCacheGauges).
  uint64_t reported_success = 0;
  uint64_t reported_denial = 0;
};

/// Every worker's cache partition of every block of one plan ([block][worker]; null where the
/// block has no cache). A worker that receives a query for a name another worker owns (TCP
/// lands on any worker) looks the owner's partition up itself (cache::Access::kPeer) and answers
/// a hit at once; only a miss is handed over. Built by the Server once every worker has installed
/// `plan`, immutable, shared by all workers; a worker uses it only while its own plan is `plan`
/// (until then, and for a miss, it hands over as before).
struct PeerCaches {
  std::shared_ptr<const Plan> plan;
  std::vector<std::vector<std::shared_ptr<cache::Cache>>> blocks;
};

/// A worker's instantiation of a Plan. Kept alive by in-flight queries after a reload.
struct WorkerPlan {
  std::shared_ptr<const Plan> plan;
  std::vector<BlockRuntime> blocks;
  ~WorkerPlan();
};

/// One worker's share of a cache snapshot being written, carried from slice to slice
/// (Pipeline::exportSlice). Created on the control thread, then used on the worker's loop only.
struct SnapshotExport {
  explicit SnapshotExport(size_t max_bytes) : buffer(max_bytes) {}
  std::shared_ptr<WorkerPlan> plan;  // the generation being exported, kept alive until done
  size_t block = 0;
  cache::Cache::ExportCursor cursor;
  cache::SnapshotBuffer buffer;
};

class Pipeline {
 public:
  static constexpr size_t kPending = static_cast<size_t>(-1);

  /// `identity`: the answer to the RFC 4892 identity queries (`id.server.` and `hostname.bind.`,
  /// class CH, type TXT), which node-cache answers itself before any server block, so a client
  /// (the readiness probe, `node-cache -probe-ready`) can tell WHICH process answered on an
  /// address that an old and a new process share during a handover. Empty: not answered (the
  /// query goes through the blocks like any other CH query).
  Pipeline(net::EventLoop& loop, ServerMetrics& metrics, size_t worker_index,
           std::string identity = {});
  ~Pipeline();

  /// Installs a new plan (loop thread). The previous one lives on while queries use it. A block
  /// whose cache_identity equals a block of the previous plan takes over that block's cache
  /// (entries, stats) instead of starting cold: a reload only empties the caches whose zones or
  /// settings changed.
  void setPlan(const std::shared_ptr<const Plan>& plan);
  const std::shared_ptr<WorkerPlan>& workerPlan() const { return current_; }

  /// Handles one query received on listener `listener` (index into the current plan).
  /// Returns the length of a synchronous answer written to `out` (which must hold 65535
  /// bytes), 0 to send nothing, or kPending if `replies.make()` was taken and will answer.
  size_t handle(dns::ByteView pkt, const net::SockAddr& peer, size_t listener, Proto proto,
                dns::MutableBytes out, ReplyFactory& replies, bool handed_off = false);

  /// Exports up to `max_entries` more cache entries of the current plan into `st` (group =
  /// block index). Returns true when every block is done (or the buffer is full); the caller
  /// re-posts it otherwise, so queries are answered between slices. Drops `st.plan` when done
  /// (here on the loop thread: the last reference to an old generation must die on its loop).
  bool exportSlice(SnapshotExport& st, size_t max_entries);
  /// Stores snapshot entries in the caches of the current plan: `block_of_group[e.group]` is
  /// the block index (or SIZE_MAX: no matching block). Updates the cache entries gauges.
  /// Returns how many were stored. Loop thread.
  size_t importSnapshot(const std::vector<const cache::SnapshotEntry*>& entries,
                        const std::vector<size_t>& block_of_group);

  /// Fails all queries waiting on upstreams (shutdown).
  void shutdown();

  /// All workers' pipelines, indexed by worker (set once before the loops run). Each query name
  /// has an owner worker (queryOwner): its cache partition and coalescing table are the ones
  /// that count. UDP queries reach the owner directly (the kernel steers them with a BPF
  /// program, see attachQueryNameSteering); TCP connections land anywhere, so a TCP query whose
  /// owner is another worker is handed over and answered back in batches: one EventLoop::post
  /// per loop round and peer in each direction (see handOff).
  void setPeers(std::vector<Pipeline*> peers);
  /// Also hand over UDP queries (when the kernel refused the steering program).
  void setHandOffUdp(bool on) { hand_off_udp_ = on; }
  /// The partitions of every worker for the current plan (loop thread; see PeerCaches).
  void setPeerCaches(std::shared_ptr<const PeerCaches> caches) { peer_caches_ = std::move(caches); }
  /// Queries of names another worker owns: answered here from the owner's partition, and
  /// handed over to the owner (loop thread; tests and benchmarks).
  uint64_t peerHits() const { return peer_hits_; }
  uint64_t handedOff() const { return handed_off_; }
  net::EventLoop& loop() { return loop_; }

  /// The owner worker of a query packet: FNV-1 over up to 32 bytes of the question name (ASCII
  /// case folded), exactly as the kernel-side steering program computes it.
  static size_t queryOwner(dns::ByteView pkt, size_t workers);

  uint64_t malformedDropped() const { return dropped_; }
  /// The errors plugin's output of this worker (loop thread).
  ErrorLog& errorLog() { return error_log_; }
  /// Times this worker returned free heap memory to the kernel after a burst (loop thread).
  uint64_t trims() const { return trims_; }
  /// Queries waiting on an upstream (any thread).
  size_t inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  struct Pending;
  /// Pending records are pooled: a miss allocates none once the pool is warm. The forwarder
  /// calls back exactly once per resolve(), and onUpstream gives the record back.
  Pending* acquirePending();
  /// Drops a reference to a worker plan from inside a forwarder callback (see pipeline.cc).
  void releasePlanRef(std::shared_ptr<WorkerPlan>&& wp);
  void releasePending(Pending* p);
  void onUpstream(Pending* p, const upstream::Result& upstream_result);
  /// rewrite: `r` with its answer reverted for the client (question restored, answer rules
  /// applied) into rewrite_buf_, or a ServFail result if that fails. `r` itself when the rules
  /// did not rewrite this query.
  upstream::Result revertRewrite(dns::ByteView client_pkt, const dns::Query& client_q,
                                 const dns::rewrite::Outcome& o, const upstream::Result& r);
  /// Free Pending records kept for reuse (~1 KiB each): enough for the usual number of queries
  /// in flight on a worker; the ones freed past it during a burst go back to the allocator.
  static constexpr size_t kPendingPoolMax = 256;
  /// After a burst of misses (this many in flight, or this many in a second), the worker checks
  /// once a second whether it is quiet again and then returns the allocator's free memory to
  /// the kernel (malloc_trim): glibc keeps freed heap memory, so without it the RSS of the peak
  /// stays (140 MiB after the blackhole flood of issue 11).
  static constexpr size_t kBurstInflight = 256;
  static constexpr uint64_t kBurstMisses = 4096;
  void noteMiss();
  void housekeeping();
  void refresh(const std::shared_ptr<WorkerPlan>& wp, size_t block, dns::ByteView pkt,
               const dns::Query& q, uint64_t key_hash);
  /// The owner's partition of block `block` for a query owned by worker `owner`, if the peer
  /// caches describe the current plan; null otherwise (the query is then handed over).
  cache::Cache* peerCache(size_t block, size_t owner) const;
  /// Brings this worker's share of the coredns_cache_entries gauge for block `b` to the cache's
  /// count (after inserts, imports, and lookups that erased dead entries). Current plan only.
  void syncCacheGauges(const BlockPlan& b, BlockRuntime& rt);
  /// Stores an answer in the block's cache (if any) and keeps the cache gauges and counters
  /// true. `current_generation`: `rt` belongs to the current plan (an answer of an older
  /// generation lands in a cache whose share of the entries gauge setPlan already took off).
  /// Returns the duration it was stored for (0: not stored).
  uint32_t cacheInsert(const ListenerPlan& lp, const BlockPlan& block, BlockRuntime& rt,
                       bool current_generation, const dns::Query& q, uint64_t key_hash,
                       const upstream::Result& r);
  /// A plugin's own answer `local` (hosts, template): cached like an upstream answer, then
  /// finished, logged and counted as one, under `plugin`. Returns its length in `out`.
  size_t finishLocal(const ListenerPlan& lp, size_t block, const std::string& zone,
                     dns::ByteView pkt, const dns::Query& q, uint64_t key_hash,
                     const net::SockAddr& peer, Proto proto, size_t limit,
                     net::Clock::time_point start, dns::ByteView local, dns::MutableBytes out,
                     AnswerPlugin plugin);
  size_t finishFromUpstream(const upstream::Result& r, const dns::Query& q,
                            dns::ByteView client_pkt, uint32_t cap_ttl, size_t limit,
                            dns::MutableBytes out);
  void logQuery(const BlockPlan& b, const net::SockAddr& peer, const dns::Query& q, Proto proto,
                size_t req_size, dns::ByteView answer, std::chrono::nanoseconds took);

  // Hand-off of TCP queries to the worker that owns their name, and of the answers back.
  // Queued per peer and posted once per loop round (a RoundEndHook): a post per query woke the
  // peer for each one, and with workers sharing a core the scheduler then switched threads per
  // query (multi-worker TCP cost 4x single-worker CPU per query; see docs/benchmarks.md).
  struct HandOff {
    std::vector<uint8_t> pkt;
    net::SockAddr peer;
    size_t listener = 0;
    Proto proto = Proto::kTcp;
    Reply reply;
    /// Not a query to answer: the prefetch or stale refresh of an entry this worker answered
    /// from the owner's partition (the owner's forwarders and coalescing do it). No reply.
    bool refresh_only = false;
  };
  struct Returned {
    Reply reply;
    std::vector<uint8_t> answer;  // empty: unanswerable, the connection closes
  };
  class HandOffFlush final : public net::RoundEndHook {
   public:
    explicit HandOffFlush(Pipeline& p) : p_(p) {}
    void onRoundEnd() override { p_.flushHandOffs(); }

   private:
    Pipeline& p_;
  };
  void handOff(size_t owner, dns::ByteView pkt, const net::SockAddr& peer, size_t listener,
               Proto proto, Reply reply, bool refresh_only = false);
  /// On the owner's loop: a handed-over refresh (HandOff::refresh_only).
  void refreshHandedOff(const HandOff& h);
  /// On the owner's loop: answers a batch handed over by worker `origin`.
  void takeHandOffs(size_t origin, std::vector<HandOff>& batch);
  /// Queues an answer for worker `origin` (owner's loop thread).
  void queueReturn(size_t origin, Reply reply, dns::ByteView answer);
  void flushHandOffs();

  /// Answers an identity query (see the constructor) into `out`; 0 if `q` is not one.
  size_t answerIdentity(dns::ByteView pkt, const dns::Query& q, dns::MutableBytes out) const;

  net::EventLoop& loop_;
  std::vector<Pipeline*> peers_;
  bool hand_off_udp_ = false;
  std::shared_ptr<const PeerCaches> peer_caches_;
  uint64_t peer_hits_ = 0;
  uint64_t handed_off_ = 0;
  std::vector<std::vector<HandOff>> outbox_;    // by owner worker: queries to hand over
  std::vector<std::vector<Returned>> returns_;  // by origin worker: answers to send back
  HandOffFlush handoff_flush_{*this};
  ServerMetrics& metrics_;
  size_t worker_;
  std::string identity_;
  std::shared_ptr<WorkerPlan> current_;
  std::vector<uint8_t> scratch_;
  std::vector<uint8_t> local_;  // a plugin's answer before it is finished into `out` (on demand)
  dns::Response local_parse_;
  // rewrite: the rewritten query being built, and a rewritten answer being reverted (both only
  // when a block has `rewrite` rules).
  std::vector<uint8_t> rewrite_buf_;
  dns::Response rewrite_resp_;
  uint64_t dropped_ = 0;
  uint64_t trims_ = 0;
  std::atomic<size_t> inflight_{0};
  std::vector<std::unique_ptr<Pending>> pending_free_;
  ErrorLog error_log_;
  uint64_t misses_since_check_ = 0;
  net::EventLoop::TimerId housekeeping_timer_ = 0;
};

}  // namespace nld::server
