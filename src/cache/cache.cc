#include "cache/cache.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "cache/ttl_policy.h"

namespace nld::cache {
namespace {

constexpr size_t kShards = 256;     // CoreDNS shard count, for capacity rounding
constexpr size_t kMinPerShard = 4;  // CoreDNS minimum per shard
constexpr size_t kMinPerPartition = 4;
constexpr uint32_t kMaxServfailTtl = 300;  // RFC 2308 §7
constexpr uint16_t kStoredFlags = dns::flag::RA | dns::flag::AD | dns::kRcodeMask;

// Relaxed load + store: writers are serialised (one thread, or the partition's mutex), so no
// read-modify-write is needed.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

KeyView keyOf(const dns::Query& q) {
  return KeyView{&q.question.name, q.question.qtype, q.question.qclass,
                 q.edns.present && q.edns.dnssec_ok, q.header.cd()};
}

Settings validated(Settings s) {
  if (s.partitions == 0) throw std::invalid_argument("cache: partitions must be at least 1");
  if (s.prefetch_percentage > 100) {
    throw std::invalid_argument("cache: prefetch percentage must be at most 100");
  }
  if (s.servfail_ttl > kMaxServfailTtl) {
    throw std::invalid_argument("cache: servfail duration must be at most 5m (RFC 2308 §7)");
  }
  if (s.bytes_per_entry_budget == 0) {
    throw std::invalid_argument("cache: bytes_per_entry_budget must be positive");
  }
  return s;
}

}  // namespace

size_t Cache::partitionCapacity(size_t configured, size_t partitions) {
  size_t rounded = std::max(configured / kShards, kMinPerShard) * kShards;
  if (partitions == 0) partitions = 1;
  return std::max(rounded / partitions, kMinPerPartition);
}

Cache::Cache(Settings s)
    : settings_(validated(std::move(s))),
      stale_s_(settings_.serve_stale_s.value_or(0)),
      stats_(std::make_unique<Stats>()),
      mu_(settings_.partitions > 1 ? std::make_unique<std::mutex>() : nullptr),
      success_(partitionCapacity(settings_.success_capacity, settings_.partitions),
               partitionCapacity(settings_.success_capacity, settings_.partitions) *
                   settings_.bytes_per_entry_budget,
               stale_s_),
      denial_(partitionCapacity(settings_.denial_capacity, settings_.partitions),
              partitionCapacity(settings_.denial_capacity, settings_.partitions) *
                  settings_.bytes_per_entry_budget,
              stale_s_) {}

Cache::~Cache() = default;
Cache::Cache(Cache&&) noexcept = default;
Cache& Cache::operator=(Cache&&) noexcept = default;

Cache::Freshness Cache::freshness(const Entry& e, Clock::time_point now) const {
  uint32_t elapsed = e.elapsed(now);
  if (elapsed < e.duration) return Freshness::kFresh;
  // CoreDNS: stale while -ttl < staleUpTo, ttl = duration - elapsed.
  if (stale_s_ > 0 && uint64_t{elapsed} - e.duration < stale_s_) return Freshness::kStale;
  return Freshness::kDead;
}

Cache::Found Cache::findLive(const KeyView& key, uint64_t hash, Clock::time_point now, bool& fresh,
                             bool erase_dead) {
  Found stale;
  bool erased = false;
  for (Store* store : {&denial_, &success_}) {  // denial first, like CoreDNS
    uint32_t i = store->find(hash, key);
    if (i == Store::kNone) continue;
    switch (freshness(store->entry(i), now)) {
      case Freshness::kFresh:
        if (erased) syncGauges();
        fresh = true;
        return Found{store, i, store == &denial_};
      case Freshness::kStale:
        if (stale.store == nullptr) stale = Found{store, i, store == &denial_};
        break;
      case Freshness::kDead:
        if (erase_dead) {
          store->erase(i);
          erased = true;
        }
        break;
    }
  }
  if (erased) syncGauges();
  fresh = false;
  return stale;
}

size_t Cache::render(const Entry& e, const dns::Query& q, Clock::time_point now, bool stale,
                     size_t limit, dns::MutableBytes out) const {
  if (out.size() < e.pkt_len) return 0;
  uint8_t* p = out.data();
  std::memcpy(p, e.packet(), e.pkt_len);
  dns::setId(p, q.header.id);
  // Same length as the stored name (the key matched): restores the client's case (0x20).
  std::memcpy(p + dns::kHeaderSize, q.question.name.data.data(), e.name_len);

  const bool client_do = q.edns.present && q.edns.dnssec_ok;
  uint16_t flags = dns::flag::QR | dns::flag::AA | (q.header.flags & dns::kOpcodeMask) |
                   (q.header.flags & (dns::flag::RD | dns::flag::CD)) |
                   (e.flags & (dns::flag::RA | dns::kRcodeMask));
  if ((e.flags & dns::flag::AD) && (client_do || q.header.ad())) flags |= dns::flag::AD;
  dns::store16(p + 2, flags);

  if (stale) {
    for (size_t i = 0; i < e.rr_count; ++i) dns::store32(p + e.ttlOffset(i), kStaleTtl);
  } else if (!settings_.keepttl) {
    const uint32_t elapsed = e.elapsed(now);
    for (size_t i = 0; i < e.rr_count; ++i) {
      uint8_t* ttl_field = p + e.ttlOffset(i);
      uint32_t orig = dns::load32(ttl_field);
      if (orig & 0x80000000u) orig = 0;  // RFC 2181 §8
      uint32_t ttl = std::min(orig, e.duration);
      dns::store32(ttl_field, ttl > elapsed ? ttl - elapsed : 0);
    }
  }

  size_t len = e.pkt_len;
  if (q.edns.present) len = dns::appendOpt(out, len, dns::kOurUdpSize, client_do);
  if (len == 0 || len > limit) {
    len = dns::truncateToQuestion(out, dns::kHeaderSize + e.name_len + 4);
    if (q.edns.present) len = dns::appendOpt(out, len, dns::kOurUdpSize, client_do);
  }
  return len;
}

bool Cache::takeRefresh(Entry& e, Clock::time_point now) {
  if (e.refresh_in_flight && now - e.refresh_started < kRefreshRecheck) return false;
  e.refresh_in_flight = true;
  e.refresh_started = now;
  return true;
}

bool Cache::shouldPrefetch(Entry& e, Clock::time_point now) {
  if (settings_.prefetch_amount == 0) return false;
  // CoreDNS freq.Update: hits within DURATION of the previous hit accumulate, else restart at 1.
  const auto window = std::chrono::seconds(settings_.prefetch_window_s);
  if (e.hits == 0 || now - e.last_hit > window) {
    e.hits = 1;
  } else if (e.hits < UINT32_MAX) {
    ++e.hits;
  }
  e.last_hit = now;
  const uint64_t threshold =
      (uint64_t{settings_.prefetch_percentage} * e.duration + 99) / 100;  // ceil
  const uint32_t remaining = e.duration - e.elapsed(now);  // fresh: elapsed < duration
  return e.hits >= settings_.prefetch_amount && remaining <= threshold && takeRefresh(e, now);
}

LookupResult Cache::lookup(dns::ByteView /*query_pkt*/, const dns::Query& q, uint64_t hash,
                           Clock::time_point now, size_t limit, dns::MutableBytes out,
                           Access access) {
  Guard guard(mu_.get());
  const bool owner = access == Access::kOwner;
  Stats& st = *stats_;
  const KeyView key = keyOf(q);
  bool fresh = false;
  Found f = findLive(key, hash, now, fresh, owner);
  auto miss = [&]() -> LookupResult {
    if (owner) {  // a peer's look is not counted (see Access::kPeer)
      bump(st.requests);
      bump(st.misses);
    }
    return {};
  };
  if (f.store == nullptr) return miss();
  Entry& e = f.store->entry(f.index);
  LookupResult res;
  res.denial = f.denial;
  if (!fresh && settings_.serve_stale_verify) {
    if (!owner) return {};  // the owner asks upstream first
    bump(st.requests);
    bump(f.denial ? st.hits_denial : st.hits_success);
    res.kind = Kind::kStaleVerify;
    return res;
  }
  res.length = render(e, q, now, !fresh, limit, out);
  if (res.length == 0) return miss();  // `out` too small: a caller bug, answer from upstream
  f.store->reference(f.index);         // CLOCK bit
  if (fresh) {
    res.kind = Kind::kHit;
    res.prefetch = shouldPrefetch(e, now);
  } else {
    res.kind = Kind::kStale;
    res.prefetch = takeRefresh(e, now);
  }
  if (owner) {
    bump(st.requests);
    bump(f.denial ? st.hits_denial : st.hits_success);
    if (res.prefetch && fresh) bump(st.prefetches);
    if (!fresh) bump(st.served_stale);
  }
  return res;
}

LookupResult Cache::lookupStale(dns::ByteView /*query_pkt*/, const dns::Query& q, uint64_t hash,
                                Clock::time_point now, size_t limit, dns::MutableBytes out) {
  Guard guard(mu_.get());
  const KeyView key = keyOf(q);
  bool fresh = false;
  Found f = findLive(key, hash, now, fresh, true);
  if (f.store == nullptr) return {};
  Entry& e = f.store->entry(f.index);
  LookupResult res;
  res.denial = f.denial;
  res.length = render(e, q, now, !fresh, limit, out);
  if (res.length == 0) return {};
  f.store->reference(f.index);  // CLOCK bit
  res.kind = fresh ? Kind::kHit : Kind::kStale;
  if (!fresh) bump(stats_->served_stale);
  return res;
}

bool Cache::disabled(const dns::Name& name, bool denial) const {
  const auto& zones = denial ? settings_.disable_denial : settings_.disable_success;
  return std::any_of(zones.begin(), zones.end(),
                     [&](const dns::Name& z) { return name.isSubdomainOf(z); });
}

uint32_t Cache::insert(const dns::Query& q, uint64_t key_hash, dns::ByteView resp_pkt,
                       const dns::Response& r, Clock::time_point now) {
  Guard guard(mu_.get());
  if (!r.header.qr() || r.header.qdcount != 1 || !dns::questionMatches(q.question, r.question)) {
    bump(stats_->drops);
    return 0;
  }
  if (r.header.tc()) return 0;
  if (r.end > resp_pkt.size() || r.end > dns::kMaxMessageSize) return 0;
  const Decision d = decide(settings_, r, dns::classify(r));
  if (d.placement == Placement::kNone || d.duration == 0) return 0;
  const bool denial = d.placement == Placement::kDenial;
  if (disabled(q.question.name, denial)) return 0;
  // Hits overwrite the question name in place, so it must be the first, uncompressed name.
  const size_t name_len = r.question.name.len;
  if (r.question.name_offset != dns::kHeaderSize ||
      r.question.end != dns::kHeaderSize + name_len + 4) {
    return 0;
  }

  Entry e;
  e.blob_size = static_cast<uint32_t>(r.end + 2 * r.rrs.size());
  e.blob = std::make_unique_for_overwrite<uint8_t[]>(e.blob_size);
  std::memcpy(e.blob.get(), resp_pkt.data(), r.end);
  const size_t pkt_len = dns::stripOpt(dns::MutableBytes(e.blob.get(), r.end), r.end, r);
  if (pkt_len < r.question.end) return 0;  // `r` does not describe this packet
  uint16_t count = 0;
  for (const dns::RrInfo& rr : r.rrs) {
    if (size_t{rr.ttl_offset} + 4 > pkt_len) continue;  // removed along with the OPT
    dns::store16(e.blob.get() + pkt_len + 2 * count, static_cast<uint16_t>(rr.ttl_offset));
    ++count;
  }
  const KeyView key = keyOf(q);
  e.hash = key_hash;
  e.inserted = now;
  e.duration = d.duration;
  e.pkt_len = static_cast<uint16_t>(pkt_len);
  e.rr_count = count;
  e.qtype = key.qtype;
  e.qclass = key.qclass;
  e.flags = r.header.flags & kStoredFlags;
  e.name_len = static_cast<uint8_t>(name_len);
  e.dnssec_ok = key.dnssec_ok;
  e.checking_disabled = key.checking_disabled;

  const uint64_t hash = e.hash;
  Store& store = denial ? denial_ : success_;
  store.purge(now, Store::kPurgePerInsert);
  const uint32_t existing = store.find(hash, key);
  uint64_t evicted = 0;
  const uint32_t index = store.put(std::move(e), existing, now, evicted);
  if (evicted > 0) bump(denial ? stats_->evictions_denial : stats_->evictions_success, evicted);
  if (!denial) {
    // A positive answer supersedes any negative one for the key (CoreDNS does this on prefetch).
    const uint32_t negative = denial_.find(hash, key);
    if (negative != Store::kNone) denial_.erase(negative);
  }
  syncGauges();
  return index == Store::kNone ? 0 : d.duration;
}

Cache::ExportCursor Cache::exportSome(ExportCursor cursor, size_t max_entries, const ClockPair& now,
                                      uint32_t group, SnapshotBuffer& writer) const {
  Guard guard(mu_.get());
  size_t written = 0;
  size_t looked = 0;
  const size_t max_looked = std::max<size_t>(1, max_entries) * 4;
  while (!cursor.done()) {
    const Store& store = cursor.store == 0 ? success_ : denial_;
    if (cursor.slot >= store.tableSize()) {
      cursor = ExportCursor{static_cast<uint8_t>(cursor.store + 1), 0};
      continue;
    }
    if (written >= max_entries || looked >= max_looked || writer.full()) break;
    const uint32_t i = cursor.slot;
    ++looked;
    if (!store.inUse(i) || freshness(store.entry(i), now.steady) == Freshness::kDead) {
      ++cursor.slot;
      continue;
    }
    const Entry& e = store.entry(i);
    SnapshotEntry se;
    se.group = group;
    se.denial = cursor.store == 1;
    se.dnssec_ok = e.dnssec_ok;
    se.checking_disabled = e.checking_disabled;
    se.flags = e.flags;
    se.duration = e.duration;
    // Age rounded up to the millisecond, subtracted from a boot reading taken no later than the
    // steady one: the recorded insertion is never later than the real one.
    const auto age_ns =
        now.steady > e.inserted
            ? std::chrono::duration_cast<std::chrono::nanoseconds>(now.steady - e.inserted).count()
            : int64_t{0};
    se.inserted_boot_ms = now.boot_lo_ms - (age_ns + 999'999) / 1'000'000;
    se.packet = dns::ByteView(e.packet(), e.pkt_len);
    se.ttl_offsets = dns::ByteView(e.packet() + e.pkt_len, size_t{e.rr_count} * 2);
    if (!writer.add(se)) break;  // full (or an entry the format cannot hold): stop here
    ++written;
    ++cursor.slot;
  }
  return cursor;
}

bool Cache::importEntry(const SnapshotEntry& se, const ClockPair& now) {
  Guard guard(mu_.get());
  dns::Name name;
  uint16_t qtype = 0, qclass = 0;
  if (!validSnapshotEntry(se, name, qtype, qclass) || se.duration == 0) return false;
  if (disabled(name, se.denial)) return false;
  const KeyView key{&name, qtype, qclass, se.dnssec_ok, se.checking_disabled};
  const uint64_t hash = hashKey(dns::processKeySeed(), key);
  Store& store = se.denial ? denial_ : success_;
  if (store.find(hash, key) != Store::kNone) return false;

  // Age from a boot reading taken no earlier than the steady one, so it is never too small.
  const int64_t age_ms = std::max<int64_t>(0, now.boot_hi_ms - se.inserted_boot_ms);
  // Dead beyond its duration and the serve-stale window: skip it before the time arithmetic (an
  // insertion time from a hostile file could overflow the clock's nanoseconds; found by fuzzing).
  if (age_ms / 1000 > int64_t(se.duration) + int64_t(stale_s_)) return false;
  Entry e;
  e.hash = hash;
  e.inserted = now.steady - std::chrono::milliseconds(age_ms);
  e.duration = se.duration;
  if (store.isDead(e, now.steady)) return false;
  e.blob_size = static_cast<uint32_t>(se.packet.size() + se.ttl_offsets.size());
  e.blob = std::make_unique_for_overwrite<uint8_t[]>(e.blob_size);
  std::memcpy(e.blob.get(), se.packet.data(), se.packet.size());
  if (!se.ttl_offsets.empty()) {
    std::memcpy(e.blob.get() + se.packet.size(), se.ttl_offsets.data(), se.ttl_offsets.size());
  }
  e.pkt_len = static_cast<uint16_t>(se.packet.size());
  e.rr_count = static_cast<uint16_t>(se.ttl_offsets.size() / 2);
  e.qtype = qtype;
  e.qclass = qclass;
  e.flags = se.flags & kStoredFlags;
  e.name_len = name.len;
  e.dnssec_ok = se.dnssec_ok;
  e.checking_disabled = se.checking_disabled;

  store.purge(now.steady, Store::kPurgePerInsert);
  uint64_t evicted = 0;
  const uint32_t index = store.put(std::move(e), Store::kNone, now.steady, evicted);
  if (evicted > 0) bump(se.denial ? stats_->evictions_denial : stats_->evictions_success, evicted);
  syncGauges();
  return index != Store::kNone;
}

void Cache::syncGauges() {
  stats_->entries_success.store(success_.size(), std::memory_order_relaxed);
  stats_->entries_denial.store(denial_.size(), std::memory_order_relaxed);
}

size_t Cache::memoryBytes() const {
  Guard guard(mu_.get());
  return sizeof(*this) + sizeof(Stats) + success_.memoryBytes() + denial_.memoryBytes();
}

}  // namespace nld::cache
