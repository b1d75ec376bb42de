#include "server/pipeline.h"

#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "common/log.h"
#include "common/random.h"
#include "dns/key_hash.h"
#include "dns/shuffle.h"
#include "server/metrics.h"

namespace nld::server {

using dns::ByteView;
using dns::MutableBytes;

WorkerPlan::~WorkerPlan() {
  for (auto& b : blocks) {
    for (auto& f : b.forwarders) {
      if (f) f->shutdown();
    }
  }
}

// A query waiting for an upstream answer. Owns a copy of the client's packet.
struct Pipeline::Pending {
  std::shared_ptr<WorkerPlan> plan;  // keeps the config generation alive
  size_t listener = 0;
  size_t block = 0;
  const ZoneTable::Entry* zone = nullptr;
  std::vector<uint8_t> pkt;
  dns::Query query;
  uint64_t key_hash = 0;  // dns::keyHash(query): the cache lookup's, reused by insert
  net::SockAddr peer;
  Proto proto = Proto::kUdp;
  Reply reply;
  net::Clock::time_point start;
  bool stale_verify = false;  // serve_stale verify: fall back to the stale entry on failure
  // rewrite: what the rules did, and the rewritten query that went upstream instead of
  // pkt/query (which stay the client's: the cache and the answer are the client's question's).
  dns::rewrite::Outcome rewrite;
  std::vector<uint8_t> fwd_pkt;
  dns::Query fwd_query;
};

Pipeline::Pipeline(net::EventLoop& loop, ServerMetrics& metrics, size_t worker_index,
                   std::string identity)
    : loop_(loop),
      metrics_(metrics),
      worker_(worker_index),
      identity_(std::move(identity)),
      scratch_(dns::kMaxMessageSize),
      error_log_(loop, &metrics) {}

Pipeline::~Pipeline() {
  if (housekeeping_timer_ != 0) loop_.cancelTimer(housekeeping_timer_);
  loop_.cancelRoundEnd(&handoff_flush_);
}

void Pipeline::setPeers(std::vector<Pipeline*> peers) {
  peers_ = std::move(peers);
  outbox_.clear();  // vectors of move-only entries: resized, not assigned copies
  outbox_.resize(peers_.size());
  returns_.clear();
  returns_.resize(peers_.size());
}

void Pipeline::noteMiss() {
  ++misses_since_check_;
  if (housekeeping_timer_ != 0) return;
  if (inflight() >= kBurstInflight || misses_since_check_ >= kBurstMisses) {
    misses_since_check_ = 0;
    housekeeping_timer_ = loop_.addTimer(std::chrono::seconds(1), [this] { housekeeping(); });
  }
}

void Pipeline::housekeeping() {
  housekeeping_timer_ = 0;
  const bool quiet = inflight() < kBurstInflight / 4 && misses_since_check_ < kBurstMisses / 4;
  misses_since_check_ = 0;
  if (!quiet) {
    housekeeping_timer_ = loop_.addTimer(std::chrono::seconds(1), [this] { housekeeping(); });
    return;
  }
  // The burst is over: the pools have shrunk back to their caps already (pending_free_ here,
  // the flight pools in the forwarders); hand the free heap pages of every arena back to the
  // kernel. A few milliseconds on this loop, once per burst.
  malloc_trim(0);
  ++trims_;
}

void Pipeline::setPlan(const std::shared_ptr<const Plan>& plan) {
  // Handles keyed by label-string addresses of a plan that may be gone (see forgetHandles).
  // The generation being replaced stays alive below while its labels are still used.
  metrics_.forgetHandles(worker_);
  auto wp = std::make_shared<WorkerPlan>();
  wp->plan = plan;
  wp->blocks.resize(plan->blocks.size());
  for (size_t i = 0; i < plan->blocks.size(); ++i) {
    const BlockPlan& b = plan->blocks[i];
    BlockRuntime& rt = wp->blocks[i];
    if (b.cache && current_) {
      // Reload: keep the cache of a block whose zones and cache settings did not change. Each
      // old cache goes to at most one new block (moved out of the old generation, whose
      // in-flight queries then simply do not insert their answers).
      for (size_t j = 0; j < current_->blocks.size(); ++j) {
        auto& old_cache = current_->blocks[j].cache;
        const BlockPlan& ob = current_->plan->blocks[j];
        if (!old_cache || ob.cache_identity != b.cache_identity ||
            old_cache->settings().partitions != b.cache->partitions) {
          continue;
        }
        BlockRuntime& old_rt = current_->blocks[j];
        rt.cache = std::move(old_cache);
        rt.reported_success = std::exchange(old_rt.reported_success, 0);
        rt.reported_denial = std::exchange(old_rt.reported_denial, 0);
        if (ob.server_label != b.server_label || ob.zones_label != b.zones_label) {
          // Same cache, new labels: move its share of the entries gauge along.
          for (bool denial : {false, true}) {
            const double n = double(denial ? rt.reported_denial : rt.reported_success);
            metrics_.onCacheEntries(worker_, ob.server_label, ob.zones_label, denial, -n);
            metrics_.onCacheEntries(worker_, b.server_label, b.zones_label, denial, n);
          }
        }
        break;
      }
    }
    if (b.cache && !rt.cache) rt.cache = std::make_shared<cache::Cache>(*b.cache);
    for (const auto& f : b.forwards) {
      rt.forwarders.push_back(
          std::make_unique<upstream::Forwarder>(loop_, f.shared, f.observer.get()));
    }
  }
  // Entries of the previous generation's caches that were not taken over disappear with it.
  if (current_) {
    for (size_t i = 0; i < current_->blocks.size(); ++i) {
      BlockRuntime& old_rt = current_->blocks[i];
      if (!old_rt.cache) continue;
      const BlockPlan& b = current_->plan->blocks[i];
      metrics_.onCacheEntries(worker_, b.server_label, b.zones_label, false,
                              -double(std::exchange(old_rt.reported_success, 0)));
      metrics_.onCacheEntries(worker_, b.server_label, b.zones_label, true,
                              -double(std::exchange(old_rt.reported_denial, 0)));
    }
  }
  current_ = std::move(wp);
}

bool Pipeline::exportSlice(SnapshotExport& st, size_t max_entries) {
  if (!st.plan) st.plan = current_;
  const auto now = cache::ClockPair::now();
  const size_t blocks = st.plan ? st.plan->blocks.size() : 0;
  while (st.block < blocks && !st.buffer.full()) {
    const auto& c = st.plan->blocks[st.block].cache;  // null: no cache, or taken over by a reload
    if (c && !st.cursor.done()) {
      st.cursor =
          c->exportSome(st.cursor, max_entries, now, static_cast<uint32_t>(st.block), st.buffer);
      if (!st.cursor.done()) return false;  // slice used up: continue in a later round
    }
    ++st.block;
    st.cursor = {};
  }
  st.plan.reset();
  return true;
}

size_t Pipeline::importSnapshot(const std::vector<const cache::SnapshotEntry*>& entries,
                                const std::vector<size_t>& block_of_group) {
  if (!current_) return 0;
  const auto now = cache::ClockPair::now();
  size_t stored = 0;
  for (const cache::SnapshotEntry* e : entries) {
    if (e->group >= block_of_group.size()) continue;
    const size_t b = block_of_group[e->group];
    if (b >= current_->blocks.size() || !current_->blocks[b].cache) continue;
    if (current_->blocks[b].cache->importEntry(*e, now)) ++stored;
  }
  for (size_t i = 0; i < current_->blocks.size(); ++i) {
    if (current_->blocks[i].cache) syncCacheGauges(current_->plan->blocks[i], current_->blocks[i]);
  }
  return stored;
}

void Pipeline::shutdown() {
  if (current_) {
    for (auto& b : current_->blocks) {
      for (auto& f : b.forwarders) f->shutdown();
    }
  }
}

namespace {

// CoreDNS's label for the block that answered (the zone that matched on the listener).
const std::string kDropped = "dropped";

bool inZones(const dns::Name& name, const std::vector<dns::Name>& zones) {
  for (const auto& z : zones) {
    if (name.isSubdomainOf(z)) return true;
  }
  return false;
}

// The largest answer this client may get: its EDNS UDP size (512 without EDNS) over UDP, lowered
// by the block's `bufsize` when the client sent an OPT (CoreDNS 1.10 rewrites only an existing
// OPT); 64 KiB over TCP.
size_t answerLimit(const BlockPlan& block, const dns::Query& q, bool udp) {
  if (!udp) return dns::kMaxMessageSize;
  const size_t limit = q.clientUdpSize();
  if (block.bufsize != 0 && q.edns.present && limit > block.bufsize) return block.bufsize;
  return limit;
}

// The RFC 4892 identity names (hostname.bind. is BIND's older spelling of id.server.).
const dns::Name kIdServer = *dns::Name::fromString("id.server.");
const dns::Name kHostnameBind = *dns::Name::fromString("hostname.bind.");

}  // namespace

size_t Pipeline::answerIdentity(ByteView pkt, const dns::Query& q, MutableBytes out) const {
  if (identity_.empty() || q.question.qtype != dns::type::TXT) return 0;
  if (!q.question.name.equalsIgnoreCase(kIdServer) &&
      !q.question.name.equalsIgnoreCase(kHostnameBind)) {
    return 0;
  }
  return dns::buildTxtAnswer(pkt, q, identity_, out);
}

size_t Pipeline::queryOwner(ByteView pkt, size_t workers) {
  if (workers <= 1) return 0;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < 32 && dns::kHeaderSize + i < pkt.size(); ++i) {
    const uint8_t b = pkt[dns::kHeaderSize + i];
    if (b == 0) break;
    h = (h * 16777619u) ^ uint32_t(b | 0x20);
  }
  return h % workers;
}

void Pipeline::handOff(size_t owner, ByteView pkt, const net::SockAddr& peer, size_t listener,
                       Proto proto, Reply reply, bool refresh_only) {
  if (!refresh_only) ++handed_off_;
  outbox_[owner].push_back(HandOff{std::vector<uint8_t>(pkt.begin(), pkt.end()), peer, listener,
                                   proto, std::move(reply), refresh_only});
  loop_.requestRoundEnd(&handoff_flush_);
}

cache::Cache* Pipeline::peerCache(size_t block, size_t owner) const {
  const PeerCaches* pc = peer_caches_.get();
  if (pc == nullptr || pc->plan != current_->plan || block >= pc->blocks.size() ||
      owner >= pc->blocks[block].size()) {
    return nullptr;
  }
  return pc->blocks[block][owner].get();
}

void Pipeline::refreshHandedOff(const HandOff& h) {
  // The peer answered from this worker's partition under the plan it had then; the refresh
  // goes to the block that now serves the name (normally the same one).
  if (!current_ || h.listener >= current_->plan->listeners.size()) return;
  dns::Query q;
  if (dns::parseQuery(ByteView(h.pkt), q) != dns::QueryStatus::kOk) return;
  const ZoneTable::Entry* zone =
      current_->plan->listeners[h.listener].zones.match(q.question.name, q.question.qtype);
  if (zone == nullptr || !current_->blocks[zone->block].cache) return;
  refresh(current_, zone->block, ByteView(h.pkt), q, dns::keyHash(q));
}

void Pipeline::syncCacheGauges(const BlockPlan& b, BlockRuntime& rt) {
  const cache::Stats& st = rt.cache->stats();
  const uint64_t success = st.entries_success.load(std::memory_order_relaxed);
  const uint64_t denial = st.entries_denial.load(std::memory_order_relaxed);
  if (success != rt.reported_success) [[unlikely]] {
    metrics_.onCacheEntries(worker_, b.server_label, b.zones_label, false,
                            double(success) - double(rt.reported_success));
    rt.reported_success = success;
  }
  if (denial != rt.reported_denial) [[unlikely]] {
    metrics_.onCacheEntries(worker_, b.server_label, b.zones_label, true,
                            double(denial) - double(rt.reported_denial));
    rt.reported_denial = denial;
  }
}

void Pipeline::takeHandOffs(size_t origin, std::vector<HandOff>& batch) {
  // An answer produced later (a miss) is queued back from this loop as well.
  struct Back final : ReplyFactory {
    Pipeline* self = nullptr;
    size_t origin = 0;
    Reply reply;
    Reply make() override {
      // make() is called at most once per handed-off query (a miss): the reply moves along.
      return [s = self, o = origin, r = std::move(reply)](ByteView answer) mutable {
        s->queueReturn(o, std::move(r), answer);
      };
    }
  } back;
  back.self = this;
  back.origin = origin;
  for (HandOff& h : batch) {
    if (h.refresh_only) {
      refreshHandedOff(h);
      continue;
    }
    if (!current_ || h.listener >= current_->plan->listeners.size()) {
      // A reload removed the listener meanwhile: nobody answers. The reply goes back empty
      // (closing a TCP connection, as the removed listener's own connections are), not
      // dropped here: a dropped reply would leave the connection counting a query in flight.
      queueReturn(origin, std::move(h.reply), ByteView{});
      continue;
    }
    back.reply = std::move(h.reply);
    const size_t n = handle(ByteView(h.pkt), h.peer, h.listener, h.proto, MutableBytes(scratch_),
                            back, /*handed_off=*/true);
    if (n == kPending) continue;
    queueReturn(origin, std::move(back.reply), ByteView(scratch_.data(), n));
  }
}

void Pipeline::queueReturn(size_t origin, Reply reply, ByteView answer) {
  returns_[origin].push_back(
      Returned{std::move(reply), std::vector<uint8_t>(answer.begin(), answer.end())});
  loop_.requestRoundEnd(&handoff_flush_);
}

void Pipeline::flushHandOffs() {
  for (size_t w = 0; w < peers_.size(); ++w) {
    if (!outbox_[w].empty()) {
      // EventLoop tasks are std::function (copyable) and a batch holds move-only Replies: the
      // batch travels in a shared_ptr, one allocation per batch (the task needed one anyway).
      Pipeline* target = peers_[w];
      auto batch = std::make_shared<std::vector<HandOff>>(std::move(outbox_[w]));
      target->loop().post(
          [target, origin = worker_, batch] { target->takeHandOffs(origin, *batch); });
      outbox_[w].clear();  // moved from: make it empty for the next round
    }
    if (!returns_[w].empty()) {
      auto batch = std::make_shared<std::vector<Returned>>(std::move(returns_[w]));
      peers_[w]->loop().post([batch] {
        for (const Returned& r : *batch) r.reply(ByteView(r.answer));
      });
      returns_[w].clear();
    }
  }
}

size_t Pipeline::handle(ByteView pkt, const net::SockAddr& peer, size_t listener, Proto proto,
                        MutableBytes out, ReplyFactory& replies, bool handed_off) {
  // A query whose name another worker owns (TCP lands on any worker): answered here if it is a
  // hit in the owner's partition, handed over to the owner otherwise (below, at the cache).
  size_t owner = worker_;
  if (!handed_off && peers_.size() > 1 && (proto == Proto::kTcp || hand_off_udp_)) {
    owner = queryOwner(pkt, peers_.size());
  }
  const bool remote = owner != worker_;
  const auto start = loop_.clockNow();
  WorkerPlan& wp = *current_;
  const ListenerPlan& lp = wp.plan->listeners[listener];
  const bool udp = proto == Proto::kUdp;

  dns::Query q;
  const dns::QueryStatus st = dns::parseQuery(pkt, q);
  auto finish_error = [&](uint16_t rcode, const std::string& zone) -> size_t {
    size_t n = dns::buildErrorResponse(pkt, q, rcode, out);
    metrics_.onQuery(worker_, lp.server_label, zone, udp, peer.family(), q.question.qtype,
                     q.edns.dnssec_ok, pkt.size(), static_cast<uint8_t>(rcode & 0xf),
                     AnswerPlugin::kNone, n,
                     std::chrono::duration<double>(loop_.clockNow() - start).count());
    return n;
  };
  switch (st) {
    case dns::QueryStatus::kOk:
      break;
    case dns::QueryStatus::kDrop:
      ++dropped_;
      metrics_.onMalformed();
      return 0;
    case dns::QueryStatus::kFormErr:
      metrics_.onMalformed();
      return finish_error(dns::rcode::FormErr, kDropped);
    case dns::QueryStatus::kNotImp:
      return finish_error(dns::rcode::NotImp, kDropped);
    case dns::QueryStatus::kBadVers:
      return finish_error(dns::rcode::BadVers, kDropped);
  }

  // The identity queries (CH class: one compare on the usual IN path), before any block: they
  // must name this process whatever the Corefile forwards (the reference forwards them).
  if (q.question.qclass == dns::cls::CH) [[unlikely]] {
    if (const size_t n = answerIdentity(pkt, q, out); n != 0) {
      metrics_.onQuery(worker_, lp.server_label, kDropped, udp, peer.family(), q.question.qtype,
                       q.edns.dnssec_ok, pkt.size(), dns::rcode::NoError, AnswerPlugin::kNone, n,
                       std::chrono::duration<double>(loop_.clockNow() - start).count());
      return n;
    }
  }

  const ZoneTable::Entry* zone = lp.zones.match(q.question.name, q.question.qtype);
  if (zone == nullptr) return finish_error(dns::rcode::Refused, kDropped);
  // A plugin's error return code (hosts' unknown name, template's, "no next plugin"): written
  // like every error reply of ours, as CoreDNS's server does (SetRcode: no RA).
  auto finish_plugin_error = [&](uint8_t rcode) -> size_t {
    return finish_error(rcode, zone->text);
  };
  const size_t bi = zone->block;
  const BlockPlan& block = wp.plan->blocks[bi];
  BlockRuntime& rt = wp.blocks[bi];
  const size_t limit = answerLimit(block, q, udp);
  const bool cached =
      rt.cache && (block.cache_zones.empty() || inZones(q.question.name, block.cache_zones));

  // The owner's partition, for a name another worker owns; without one (no cache, or the peer
  // caches are not yet those of this plan) only the owner can answer.
  cache::Cache* peer_cache = remote && cached ? peerCache(bi, owner) : nullptr;
  if (remote && peer_cache == nullptr) {
    handOff(owner, pkt, peer, listener, proto, replies.make());
    return kPending;
  }

  // loop: count our own probe coming back (CoreDNS plugin/loop). Where the query is answered:
  // for a name another worker owns, once the owner's partition had the answer (else the owner
  // counts it).
  auto count_loop_probe = [&] {
    if (block.loop && q.question.qtype == dns::type::HINFO && block.loop->active.load() &&
        q.question.name.equalsIgnoreCase(block.loop->probe)) {
      block.loop->seen.fetch_add(1);
    }
  };
  if (!remote) count_loop_probe();

  // One key hash per query, shared by the cache lookup, the forwarder's coalescing and the insert.
  const uint64_t key_hash = dns::keyHash(q);

  // cache
  bool stale_verify = false;
  if (cached) {
    cache::LookupResult lr;
    if (remote) {
      lr = peer_cache->lookup(pkt, q, key_hash, loop_.now(), limit, out, cache::Access::kPeer);
      if (lr.kind != cache::Kind::kHit && lr.kind != cache::Kind::kStale) {
        handOff(owner, pkt, peer, listener, proto, replies.make());
        return kPending;
      }
      ++peer_hits_;
      count_loop_probe();
    } else {
      lr = rt.cache->lookup(pkt, q, key_hash, loop_.now(), limit, out);
      syncCacheGauges(block, rt);  // a lookup erases the dead entries it meets
    }
    ServerMetrics::CacheEvent ev;
    ev.hit = lr.kind == cache::Kind::kHit || lr.kind == cache::Kind::kStale;
    ev.denial = lr.denial;
    ev.stale = lr.kind == cache::Kind::kStale;
    ev.prefetch = lr.prefetch;
    metrics_.onCacheLookup(worker_, lp.server_label, block.zones_label, ev);
    if (ev.hit) {
      if (lr.prefetch || lr.kind == cache::Kind::kStale) {
        if (remote) {
          handOff(owner, pkt, peer, listener, proto, Reply{}, /*refresh_only=*/true);
        } else {
          refresh(current_, bi, pkt, q, key_hash);
        }
      }
      if (block.loadbalance) dns::shuffleAddressRecords(out, lr.length, randomBelow);
      const uint8_t rcode = lr.length >= dns::kHeaderSize ? (out[3] & 0xf) : 0;
      const auto took = loop_.clockNow() - start;
      if (block.log) logQuery(block, peer, q, proto, pkt.size(), out.first(lr.length), took);
      if (block.metrics) {
        metrics_.onQuery(worker_, lp.server_label, zone->text, udp, peer.family(), q.question.qtype,
                         q.edns.dnssec_ok, pkt.size(), rcode, AnswerPlugin::kCache, lr.length,
                         std::chrono::duration<double>(took).count());
      }
      return lr.length;
    }
    stale_verify = lr.kind == cache::Kind::kStaleVerify;
  }

  // Their answers are built in local_: 64 KiB allocated by the first block that has one of them
  // (a zeroed buffer is resident memory: most Corefiles use neither plugin).
  if ((block.templates || block.hosts) && local_.empty()) local_.resize(dns::kMaxMessageSize);
  // template (CoreDNS order: after cache, before hosts).
  if (block.templates) {
    const TemplatePlugin::Decision d =
        block.templates->decide(pkt, q, peer.ip(), MutableBytes(local_));
    if (d.verdict == TemplatePlugin::Verdict::kError) return finish_plugin_error(d.rcode);
    if (d.verdict == TemplatePlugin::Verdict::kAnswer) {
      return finishLocal(lp, bi, zone->text, pkt, q, key_hash, peer, proto, limit, start,
                         ByteView(local_.data(), d.len), out, AnswerPlugin::kTemplate);
    }
  }

  // hosts (CoreDNS order: after cache, before forward).
  if (block.hosts) {
    size_t n = 0;
    switch (block.hosts->lookup(pkt, q, MutableBytes(local_), n, loop_.now())) {
      case HostsPlugin::Verdict::kNext:
        break;
      case HostsPlugin::Verdict::kServFail:
        return finish_plugin_error(dns::rcode::ServFail);
      case HostsPlugin::Verdict::kAnswer:
        return finishLocal(lp, bi, zone->text, pkt, q, key_hash, peer, proto, limit, start,
                           ByteView(local_.data(), n), out, AnswerPlugin::kHosts);
    }
  }

  // rewrite: CoreDNS's plugin order puts it after the cache (whose key stays the client's
  // question) and before forward; the answer is reverted in onUpstream.
  // (An optional: a block without rules does not even construct an Outcome.)
  std::optional<dns::rewrite::Outcome> rewrite;
  if (block.rewrite) {
    rewrite = block.rewrite->apply(q.question);
    if (rewrite->invalid) return finish_error(dns::rcode::ServFail, zone->text);
    if (!rewrite->matched) rewrite.reset();
  }
  const dns::Name& fwd_name = rewrite ? rewrite->question.name : q.question.name;

  // forward: the first stanza whose FROM covers the name and whose except list does not.
  upstream::Forwarder* fwd = nullptr;
  for (size_t i = 0; i < block.forwards.size(); ++i) {
    const ForwardPlan& f = block.forwards[i];
    if (!fwd_name.isSubdomainOf(f.from)) continue;
    if (inZones(fwd_name, f.except) && !fwd_name.equalsIgnoreCase(f.from)) continue;
    fwd = rt.forwarders[i].get();
    break;
  }
  if (fwd == nullptr) {
    // Nothing after the cache can answer: CoreDNS answers SERVFAIL ("no next plugin").
    return finish_plugin_error(dns::rcode::ServFail);
  }

  // The query that goes upstream when the rules rewrote it (before the Pending: a failure here
  // answers SERVFAIL synchronously, as CoreDNS does for a name it cannot pack).
  size_t rewrite_len = 0;
  dns::Query rewrite_query;
  if (rewrite) {
    rewrite_buf_.resize(dns::kMaxMessageSize);
    rewrite_len =
        dns::rewrite::Rewriter::buildRewrittenQuery(pkt, q, *rewrite, MutableBytes(rewrite_buf_));
    if (rewrite_len == 0 || dns::parseQuery(ByteView(rewrite_buf_.data(), rewrite_len),
                                            rewrite_query) != dns::QueryStatus::kOk) {
      return finish_error(dns::rcode::ServFail, zone->text);
    }
  }

  Pending* p = acquirePending();
  p->plan = current_;
  p->listener = listener;
  p->block = bi;
  p->zone = zone;
  p->pkt.assign(pkt.begin(), pkt.end());
  p->query = q;
  p->key_hash = key_hash;
  p->peer = peer;
  p->proto = proto;
  p->reply = replies.make();
  p->start = start;
  p->stale_verify = stale_verify;
  ByteView fwd_pkt(p->pkt);
  const dns::Query* fwd_query = &p->query;
  uint64_t fwd_hash = key_hash;
  if (rewrite) {
    p->rewrite = std::move(*rewrite);
    p->fwd_pkt.assign(rewrite_buf_.begin(), rewrite_buf_.begin() + std::ptrdiff_t(rewrite_len));
    p->fwd_query = rewrite_query;
    fwd_pkt = ByteView(p->fwd_pkt);
    fwd_query = &p->fwd_query;
    fwd_hash = dns::keyHash(p->fwd_query);  // coalescing is by what goes upstream
  }
  inflight_.fetch_add(1, std::memory_order_relaxed);
  noteMiss();
  // 16 bytes of capture: std::function stores them inline (no allocation per miss).
  fwd->resolve(fwd_pkt, *fwd_query, fwd_hash, !udp,
               [this, p](const upstream::Result& r) { onUpstream(p, r); });
  return kPending;
}

void Pipeline::refresh(const std::shared_ptr<WorkerPlan>& wp, size_t block, ByteView pkt,
                       const dns::Query& q, uint64_t key_hash) {
  // Background refresh for prefetch / serve_stale: ask upstream, insert, answer nobody.
  const BlockPlan& b = wp->plan->blocks[block];
  const BlockRuntime& rt = wp->blocks[block];
  // rewrite: the refresh asks upstream what a miss would ask (the rewritten question) and
  // caches the answer reverted to the client's, as onUpstream does.
  struct Copy {
    std::vector<uint8_t> pkt, fwd_pkt;
    dns::Query q, fwd_q;
    dns::rewrite::Outcome rewrite;
  };
  auto copy = std::make_shared<Copy>();
  if (b.rewrite) {
    copy->rewrite = b.rewrite->apply(q.question);
    if (copy->rewrite.invalid || (copy->rewrite.matched && !copy->rewrite.revert)) return;
  }
  const dns::Name& fwd_name = copy->rewrite.matched ? copy->rewrite.question.name : q.question.name;
  for (size_t i = 0; i < b.forwards.size(); ++i) {
    if (!fwd_name.isSubdomainOf(b.forwards[i].from)) continue;
    copy->pkt.assign(pkt.begin(), pkt.end());
    copy->q = q;
    ByteView fwd_pkt(copy->pkt);
    const dns::Query* fwd_q = &copy->q;
    uint64_t fwd_hash = key_hash;
    if (copy->rewrite.matched) {
      copy->fwd_pkt.resize(dns::kMaxMessageSize);
      const size_t n = dns::rewrite::Rewriter::buildRewrittenQuery(pkt, q, copy->rewrite,
                                                                   MutableBytes(copy->fwd_pkt));
      copy->fwd_pkt.resize(n);
      if (n == 0 ||
          dns::parseQuery(ByteView(copy->fwd_pkt), copy->fwd_q) != dns::QueryStatus::kOk) {
        return;
      }
      fwd_pkt = ByteView(copy->fwd_pkt);
      fwd_q = &copy->fwd_q;
      fwd_hash = dns::keyHash(copy->fwd_q);
    }
    auto keep = wp;
    rt.forwarders[i]->resolve(
        fwd_pkt, *fwd_q, fwd_hash, true,
        [this, keep, copy, block, key_hash](const upstream::Result& upstream_result) mutable {
          const upstream::Result r =
              revertRewrite(ByteView(copy->pkt), copy->q, copy->rewrite, upstream_result);
          if (r.status == upstream::Result::Status::kOk) {
            BlockRuntime& krt = keep->blocks[block];
            if (krt.cache) {
              krt.cache->insert(copy->q, key_hash, r.packet, *r.parsed, loop_.clockNow());
              if (keep == current_) syncCacheGauges(keep->plan->blocks[block], krt);
            }
          }
          releasePlanRef(std::move(keep));  // not when the forwarder destroys this callback
        });
    return;
  }
}

size_t Pipeline::finishFromUpstream(const upstream::Result& r, const dns::Query& q,
                                    ByteView client_pkt, uint32_t cap_ttl, size_t limit,
                                    MutableBytes out) {
  const dns::Response& resp = *r.parsed;
  if (r.packet.size() > out.size()) return 0;
  std::memcpy(out.data(), r.packet.data(), r.packet.size());
  size_t len = dns::stripOpt(out, r.packet.size(), resp);
  dns::setId(out.data(), q.header.id);
  // Restore the client's spelling of the name (0x20): same length, first name in both.
  if (resp.question.name_offset == dns::kHeaderSize &&
      resp.question.name.len == q.question.name.len && q.question.name_offset == dns::kHeaderSize) {
    std::memcpy(out.data() + dns::kHeaderSize, client_pkt.data() + dns::kHeaderSize,
                q.question.name.len);
  }
  uint16_t flags = dns::load16(out.data() + 2);
  flags = static_cast<uint16_t>((flags & ~(dns::flag::RD | dns::flag::CD)) |
                                (q.header.flags & (dns::flag::RD | dns::flag::CD)));
  if (!q.edns.dnssec_ok && !q.header.ad()) flags &= static_cast<uint16_t>(~dns::flag::AD);
  dns::store16(out.data() + 2, flags);
  if (cap_ttl > 0) {
    for (const auto& rr : resp.rrs) {
      if (rr.ttl_offset + 4 > len) continue;
      uint32_t ttl = dns::load32(out.data() + rr.ttl_offset);
      if (ttl > cap_ttl) dns::store32(out.data() + rr.ttl_offset, cap_ttl);
    }
  }
  if (q.edns.present) {
    size_t n = dns::appendOpt(out, len, dns::kOurUdpSize, q.edns.dnssec_ok);
    if (n != 0) len = n;
  }
  if (len > limit) {
    len = dns::truncateToQuestion(out, q.question.end);
    if (q.edns.present) {
      size_t n = dns::appendOpt(out, len, dns::kOurUdpSize, q.edns.dnssec_ok);
      if (n != 0) len = n;
    }
  }
  return len;
}

Pipeline::Pending* Pipeline::acquirePending() {
  if (pending_free_.empty()) return new Pending();
  Pending* p = pending_free_.back().release();
  pending_free_.pop_back();
  return p;
}

void Pipeline::releasePlanRef(std::shared_ptr<WorkerPlan>&& wp) {
  // Called from inside a forwarder's callback: the last reference to an old generation (after a
  // reload) must not destroy its forwarders synchronously, under the caller's feet. The posted
  // task drops it in a later round. Otherwise (the usual case) just drop it.
  if (wp && wp.use_count() == 1) {
    loop_.post([keep = std::move(wp)] {});
  } else {
    wp.reset();
  }
}

void Pipeline::releasePending(Pending* p) {
  releasePlanRef(std::move(p->plan));  // the pool must not keep a config generation alive
  p->reply = nullptr;
  p->pkt.clear();  // keeps its capacity
  p->rewrite.matched = p->rewrite.revert = false;
  p->rewrite.responses.clear();
  if (pending_free_.size() < kPendingPoolMax) {
    pending_free_.emplace_back(p);
  } else {
    delete p;
  }
}

uint32_t Pipeline::cacheInsert(const ListenerPlan& lp, const BlockPlan& block, BlockRuntime& rt,
                               bool current_generation, const dns::Query& q, uint64_t key_hash,
                               const upstream::Result& r) {
  if (!rt.cache) return 0;
  const auto ev_s = rt.cache->stats().evictions_success.load(std::memory_order_relaxed);
  const auto ev_d = rt.cache->stats().evictions_denial.load(std::memory_order_relaxed);
  const auto drops = rt.cache->stats().drops.load(std::memory_order_relaxed);
  const uint32_t duration = rt.cache->insert(q, key_hash, r.packet, *r.parsed, loop_.now());
  const auto& s = rt.cache->stats();
  if (current_generation) syncCacheGauges(block, rt);
  if (auto n = s.evictions_success.load(std::memory_order_relaxed) - ev_s) {
    metrics_.onCacheEvictions(worker_, lp.server_label, block.zones_label, false, n);
  }
  if (auto n = s.evictions_denial.load(std::memory_order_relaxed) - ev_d) {
    metrics_.onCacheEvictions(worker_, lp.server_label, block.zones_label, true, n);
  }
  if (s.drops.load(std::memory_order_relaxed) != drops) {
    metrics_.onCacheDrop(worker_, lp.server_label, block.zones_label);
  }
  return duration;
}

size_t Pipeline::finishLocal(const ListenerPlan& lp, size_t bi, const std::string& zone,
                             ByteView pkt, const dns::Query& q, uint64_t key_hash,
                             const net::SockAddr& peer, Proto proto, size_t limit,
                             net::Clock::time_point start, ByteView local, MutableBytes out,
                             AnswerPlugin plugin) {
  const BlockPlan& block = current_->plan->blocks[bi];
  BlockRuntime& rt = current_->blocks[bi];
  // Through the same steps as an upstream answer (CoreDNS's cache wraps the plugins after it):
  // cached, TTLs capped to the cached duration, EDNS and truncation for this client.
  size_t len = 0;
  if (dns::parseResponse(local, local_parse_) == dns::Error::kNone) {
    upstream::Result r;
    r.status = upstream::Result::Status::kOk;
    r.packet = local;
    r.parsed = &local_parse_;
    const uint32_t duration = cacheInsert(lp, block, rt, true, q, key_hash, r);
    len = finishFromUpstream(r, q, pkt, duration, limit, out);
  }
  if (len == 0) len = dns::buildErrorResponse(pkt, q, dns::rcode::ServFail, out);
  if (block.loadbalance) dns::shuffleAddressRecords(out, len, randomBelow);
  const auto took = loop_.clockNow() - start;
  if (block.log) logQuery(block, peer, q, proto, pkt.size(), out.first(len), took);
  if (block.metrics) {
    metrics_.onQuery(worker_, lp.server_label, zone, proto == Proto::kUdp, peer.family(),
                     q.question.qtype, q.edns.dnssec_ok, pkt.size(),
                     len >= dns::kHeaderSize ? (out[3] & 0xf) : 0, plugin, len,
                     std::chrono::duration<double>(took).count());
  }
  return len;
}

upstream::Result Pipeline::revertRewrite(ByteView client_pkt, const dns::Query& client_q,
                                         const dns::rewrite::Outcome& o,
                                         const upstream::Result& r) {
  if (!o.matched || !o.revert || r.status != upstream::Result::Status::kOk) return r;
  rewrite_buf_.resize(dns::kMaxMessageSize);
  const size_t n = dns::rewrite::Rewriter::revertAnswer(r.packet, client_pkt, client_q, o,
                                                        MutableBytes(rewrite_buf_));
  upstream::Result out = r;
  if (n == 0 ||
      dns::parseResponse(ByteView(rewrite_buf_.data(), n), rewrite_resp_) != dns::Error::kNone) {
    out.status = upstream::Result::Status::kServFail;
    out.packet = {};
    out.parsed = nullptr;
    out.error = "plugin/rewrite: the answer could not be rebuilt for the client's question";
    return out;
  }
  out.packet = ByteView(rewrite_buf_.data(), n);
  out.parsed = &rewrite_resp_;
  return out;
}

void Pipeline::onUpstream(Pending* p, const upstream::Result& upstream_result) {
  // rewrite: the client gets, and the cache keeps under the client's question, the answer
  // reverted to that question. Rules that matched but revert nothing (`continue` rules without
  // answer rules) pass the rewritten answer through uncached, as CoreDNS writes it.
  const upstream::Result r = revertRewrite(ByteView(p->pkt), p->query, p->rewrite, upstream_result);
  const bool as_rewritten = p->rewrite.matched && !p->rewrite.revert;
  WorkerPlan& wp = *p->plan;
  const Plan& plan = *wp.plan;
  const ListenerPlan& lp = plan.listeners[p->listener];
  const BlockPlan& block = plan.blocks[p->block];
  BlockRuntime& rt = wp.blocks[p->block];
  const bool udp = p->proto == Proto::kUdp;
  const size_t limit = answerLimit(block, p->query, udp);
  MutableBytes out(scratch_);
  ByteView client(p->pkt);
  size_t len = 0;
  AnswerPlugin plugin = AnswerPlugin::kNone;

  // serve_stale verify: only NOERROR/NXDOMAIN replace (and answer instead of) the stale entry;
  // anything else (SERVFAIL, REFUSED...) falls back to the stale answer below.
  const bool usable = r.status == upstream::Result::Status::kOk &&
                      (!p->stale_verify || r.parsed->header.rcode() == dns::rcode::NoError ||
                       r.parsed->header.rcode() == dns::rcode::NxDomain);
  if (usable) {
    uint32_t duration = 0;
    if (!as_rewritten)
      duration = cacheInsert(lp, block, rt, p->plan == current_, p->query, p->key_hash, r);
    len = as_rewritten
              ? finishFromUpstream(r, p->fwd_query, ByteView(p->fwd_pkt), duration, limit, out)
              : finishFromUpstream(r, p->query, client, duration, limit, out);
    plugin = AnswerPlugin::kForward;
  }
  if (len == 0 && p->stale_verify && rt.cache) {
    cache::LookupResult lr =
        rt.cache->lookupStale(client, p->query, p->key_hash, loop_.now(), limit, out);
    if (lr.length > 0) {
      len = lr.length;
      plugin = AnswerPlugin::kCache;
      ServerMetrics::CacheEvent ev;
      ev.hit = true;
      ev.stale = true;
      ev.denial = lr.denial;
      metrics_.onCacheLookup(worker_, lp.server_label, block.zones_label, ev);
    }
  }
  if (len == 0) {
    uint16_t rc = dns::rcode::ServFail;
    if (r.status == upstream::Result::Status::kFormErr) rc = dns::rcode::FormErr;
    if (r.status == upstream::Result::Status::kRefused) rc = dns::rcode::Refused;
    len = dns::buildErrorResponse(client, p->query, rc, out);
    if (block.errors) {
      // r.error is empty when an upstream did answer but the answer was unusable here (a
      // serve_stale verify that got SERVFAIL and found no stale entry).
      const std::string_view err = !r.error.empty() ? r.error : upstream::kErrUpstreamsFailed;
      error_log_.report(block.errors_plugin, static_cast<uint8_t>(rc), p->query.question.name,
                        p->query.question.qtype, err);
    }
  }
  if (block.loadbalance) dns::shuffleAddressRecords(out, len, randomBelow);
  const auto took = loop_.clockNow() - p->start;
  if (block.log) logQuery(block, p->peer, p->query, p->proto, p->pkt.size(), out.first(len), took);
  if (block.metrics) {
    metrics_.onQuery(worker_, lp.server_label, p->zone->text, udp, p->peer.family(),
                     p->query.question.qtype, p->query.edns.dnssec_ok, p->pkt.size(),
                     len >= dns::kHeaderSize ? (out[3] & 0xf) : 0, plugin, len,
                     std::chrono::duration<double>(took).count());
  }
  if (p->reply) p->reply(ByteView(out.data(), len));
  inflight_.fetch_sub(1, std::memory_order_relaxed);
  releasePending(p);
}

void Pipeline::logQuery(const BlockPlan&, const net::SockAddr& peer, const dns::Query& q,
                        Proto proto, size_t req_size, ByteView answer,
                        std::chrono::nanoseconds took) {
  // CoreDNS's default log format (plugin/log README):
  // {remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode}
  // {>rflags} {rsize} {duration}
  if (answer.size() < dns::kHeaderSize) return;
  dns::Header h = dns::Header::read(answer);
  std::string flags;
  auto add = [&](bool on, const char* n) {
    if (!on) return;
    if (!flags.empty()) flags += ',';
    flags += n;
  };
  add(h.qr(), "qr");
  add(h.aa(), "aa");
  add(h.tc(), "tc");
  add(h.rd(), "rd");
  add(h.ra(), "ra");
  add(h.ad(), "ad");
  add(h.cd(), "cd");
  const char* cls = q.question.qclass == dns::cls::IN   ? "IN"
                    : q.question.qclass == dns::cls::CH ? "CH"
                                                        : "CLASS";
  log::info("{}:{} - {} \"{} {} {} {} {} {} {}\" {} {} {} {:.9f}s", peer.ip(), peer.port(),
            q.header.id, typeLabel(q.question.qtype), cls, q.question.name.toString(),
            proto == Proto::kUdp ? "udp" : "tcp", req_size, q.edns.dnssec_ok,
            proto == Proto::kUdp ? q.clientUdpSize() : 65535, rcodeLabel(h.rcode()), flags,
            answer.size(), std::chrono::duration<double>(took).count());
}

}  // namespace nld::server
