// Google Benchmark micro-benchmarks of the per-query hot functions (issue 6, item 2):
// query parsing, upstream response parsing, cache lookup (hit) and insert, TTL patching,
// error-response building and the query-name steering hash.
//
// Run: build-*/bench/micro/micro_bench [--benchmark_filter=REGEX]
// Not registered with ctest: timings belong in docs/benchmarks.md, not in pass/fail tests.
//
// Thread affinity: each benchmark runs on Google Benchmark's single benchmark thread; the
// fixtures (caches, packets) are local to the benchmark function.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "cache/cache_key.h"
#include "cache/ttl_policy.h"
#include "dns/key_hash.h"
#include "dns/message.h"
#include "plan/plan.h"
#include "server/pipeline.h"

namespace nld::bench {
namespace {

using Bytes = std::vector<uint8_t>;

// A fixed point far from the clock's epoch so elapsed-time arithmetic never underflows.
const cache::Clock::time_point kT0 = cache::Clock::time_point{} + std::chrono::hours(1000);
constexpr size_t kHotNames = 1000;  // as in bench/run.sh's HIT scenario
constexpr size_t kRing = 64;        // queries cycled through per benchmark (fits L1)

dns::Name nameOf(const std::string& s) {
  auto n = dns::Name::fromString(s);
  if (!n) throw std::invalid_argument("bench: bad name " + s);
  return *n;
}

void put16(Bytes& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void put32(Bytes& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}

std::string host(size_t i) { return "host-" + std::to_string(i) + ".bench.example"; }

/// A query as a stub resolver sends it (RD, optionally with a 1232-byte EDNS OPT).
struct ParsedQuery {
  Bytes bytes;
  dns::Query q;
};

ParsedQuery makeQuery(const std::string& qname, bool edns, uint16_t id = 0x1234) {
  ParsedQuery out;
  out.bytes.resize(512);
  size_t len = dns::buildQuery(id, nameOf(qname), dns::type::A, dns::cls::IN, dns::flag::RD, edns,
                               dns::kOurUdpSize, false, dns::MutableBytes(out.bytes));
  if (len == 0) throw std::runtime_error("bench: buildQuery failed");
  out.bytes.resize(len);
  if (dns::parseQuery(dns::ByteView(out.bytes), out.q) != dns::QueryStatus::kOk) {
    throw std::runtime_error("bench: query did not parse");
  }
  return out;
}

/// An answer as an authoritative server (knotd) writes it: question, `answers` A records whose
/// owners are compression pointers to the question (0xC00C), optionally an OPT.
Bytes makeResponse(const std::string& qname, unsigned answers, bool edns) {
  dns::Name n = nameOf(qname);
  Bytes v;
  put16(v, 0x1234);
  put16(v, dns::flag::QR | dns::flag::AA | dns::flag::RD);
  put16(v, 1);
  put16(v, static_cast<uint16_t>(answers));
  put16(v, 0);
  put16(v, edns ? 1 : 0);
  v.insert(v.end(), n.data.begin(), n.data.begin() + n.len);
  put16(v, dns::type::A);
  put16(v, dns::cls::IN);
  for (unsigned i = 0; i < answers; ++i) {
    put16(v, 0xC00C);
    put16(v, dns::type::A);
    put16(v, dns::cls::IN);
    put32(v, 300 + i);
    put16(v, 4);
    v.insert(v.end(), {192, 0, 2, static_cast<uint8_t>(i + 1)});
  }
  if (edns) {
    v.push_back(0);  // root owner
    put16(v, dns::type::OPT);
    put16(v, 1232);
    put32(v, 0);
    put16(v, 0);
  }
  return v;
}

dns::Response parsed(const Bytes& pkt) {
  dns::Response r;
  dns::Error e = dns::parseResponse(dns::ByteView(pkt), r);
  if (e != dns::Error::kNone) {
    throw std::runtime_error("bench: response did not parse: " + std::string(dns::errorString(e)));
  }
  return r;
}

// ---- dns::parseQuery ----

void BM_ParseQuery(benchmark::State& state) {
  const bool edns = state.range(0) != 0;
  std::vector<Bytes> pkts;
  for (size_t i = 0; i < kRing; ++i) pkts.push_back(makeQuery(host(i), edns).bytes);
  dns::Query q;
  size_t i = 0;
  for (auto _ : state) {
    dns::QueryStatus s = dns::parseQuery(dns::ByteView(pkts[i++ % kRing]), q);
    if (s != dns::QueryStatus::kOk) state.SkipWithError("query did not parse");
    benchmark::DoNotOptimize(q);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseQuery)->ArgName("edns")->Arg(0)->Arg(1);

// ---- dns::parseResponse ----

void BM_ParseResponse(benchmark::State& state) {
  const auto answers = static_cast<unsigned>(state.range(0));
  std::vector<Bytes> pkts;
  for (size_t i = 0; i < kRing; ++i) pkts.push_back(makeResponse(host(i), answers, true));
  dns::Response r;  // reused like the forwarder does: rrs keeps its capacity
  size_t i = 0;
  for (auto _ : state) {
    dns::Error e = dns::parseResponse(dns::ByteView(pkts[i++ % kRing]), r);
    if (e != dns::Error::kNone) state.SkipWithError("response did not parse");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseResponse)->ArgName("answers")->Arg(1)->Arg(4)->Arg(16);

// ---- cache::Cache::lookup (hit) ----

cache::Settings benchSettings(size_t capacity) {
  cache::Settings s;
  s.success_capacity = capacity;
  s.denial_capacity = capacity;
  return s;
}

void fillCache(cache::Cache& c, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    ParsedQuery q = makeQuery(host(i), false);
    Bytes pkt = makeResponse(host(i), 2, false);
    dns::Response r = parsed(pkt);
    if (c.insert(q.q, dns::keyHash(q.q), dns::ByteView(pkt), r, kT0) == 0) {
      throw std::runtime_error("bench: cache refused an insert");
    }
  }
}

void BM_CacheLookupHit(benchmark::State& state) {
  const bool edns = state.range(0) != 0;
  cache::Cache c(benchSettings(10000));
  fillCache(c, kHotNames);
  std::vector<ParsedQuery> qs;
  for (size_t i = 0; i < kRing; ++i) qs.push_back(makeQuery(host(i * 15 % kHotNames), edns));
  Bytes out(dns::kMaxMessageSize);
  const auto now = kT0 + std::chrono::seconds(10);  // aged: TTLs are rewritten on every hit
  size_t i = 0;
  for (auto _ : state) {
    const ParsedQuery& q = qs[i++ % kRing];
    cache::LookupResult r = c.lookup(dns::ByteView(q.bytes), q.q, dns::keyHash(q.q), now,
                                     q.q.clientUdpSize(), dns::MutableBytes(out));
    if (r.kind != cache::Kind::kHit) state.SkipWithError("expected a hit");
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheLookupHit)->ArgName("edns")->Arg(0)->Arg(1);

// ---- cache::Cache::insert ----

/// Inserts cycling over `names` distinct names into a cache of capacity 10000: with 5000 names
/// every insert replaces an existing entry; with 50000 the cache is full and evicts (CLOCK).
void BM_CacheInsert(benchmark::State& state) {
  const auto names = static_cast<size_t>(state.range(0));
  cache::Cache c(benchSettings(10000));
  std::vector<ParsedQuery> qs;
  std::vector<Bytes> pkts;
  std::vector<dns::Response> rs;
  qs.reserve(names);
  pkts.reserve(names);
  rs.reserve(names);
  for (size_t i = 0; i < names; ++i) {
    qs.push_back(makeQuery(host(i), false));
    pkts.push_back(makeResponse(host(i), 2, false));
    rs.push_back(parsed(pkts.back()));
  }
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ % names;
    uint32_t d = c.insert(qs[k].q, dns::keyHash(qs[k].q), dns::ByteView(pkts[k]), rs[k], kT0);
    if (d == 0) state.SkipWithError("insert refused");
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheInsert)->ArgName("names")->Arg(5000)->Arg(50000);

// ---- TTL patching: cache::capTtls on a relayed miss ----

void BM_CapTtls(benchmark::State& state) {
  const auto answers = static_cast<unsigned>(state.range(0));
  const Bytes original = makeResponse(host(1), answers, false);
  const dns::Response r = parsed(original);
  Bytes pkt = original;
  for (auto _ : state) {
    // Alternate the cap so every iteration rewrites every TTL (300+i → 30 and back is not
    // possible without a copy; capping at 30 then at 29 keeps both passes writing).
    cache::capTtls(dns::MutableBytes(pkt), r, 30);
    cache::capTtls(dns::MutableBytes(pkt), r, 29);
    benchmark::DoNotOptimize(pkt.data());
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_CapTtls)->ArgName("answers")->Arg(2)->Arg(16);

// ---- dns::buildErrorResponse ----

void BM_BuildErrorResponse(benchmark::State& state) {
  const bool edns = state.range(0) != 0;
  std::vector<ParsedQuery> qs;
  for (size_t i = 0; i < kRing; ++i) qs.push_back(makeQuery(host(i), edns));
  Bytes out(dns::kMaxMessageSize);
  size_t i = 0;
  for (auto _ : state) {
    const ParsedQuery& q = qs[i++ % kRing];
    size_t n = dns::buildErrorResponse(dns::ByteView(q.bytes), q.q, dns::rcode::ServFail,
                                       dns::MutableBytes(out));
    if (n == 0) state.SkipWithError("buildErrorResponse wrote nothing");
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildErrorResponse)->ArgName("edns")->Arg(0)->Arg(1);

// ---- server::Pipeline::queryOwner (query-name steering hash) ----

void BM_QueryOwner(benchmark::State& state) {
  const auto workers = static_cast<size_t>(state.range(0));
  std::vector<Bytes> pkts;
  for (size_t i = 0; i < kRing; ++i) pkts.push_back(makeQuery(host(i), true).bytes);
  size_t i = 0;
  for (auto _ : state) {
    size_t owner = server::Pipeline::queryOwner(dns::ByteView(pkts[i++ % kRing]), workers);
    if (owner >= workers) state.SkipWithError("owner out of range");
    benchmark::DoNotOptimize(owner);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueryOwner)->ArgName("workers")->Arg(2)->Arg(8);

// ---- cache::hashKey (the key hash every lookup computes) ----

void BM_HashKey(benchmark::State& state) {
  std::vector<ParsedQuery> qs;
  for (size_t i = 0; i < kRing; ++i) qs.push_back(makeQuery(host(i), false));
  size_t i = 0;
  for (auto _ : state) {
    const ParsedQuery& q = qs[i++ % kRing];
    cache::KeyView key{&q.q.question.name, q.q.question.qtype, q.q.question.qclass, false, false};
    uint64_t h = cache::hashKey(0x9e3779b97f4a7c15ULL, key);
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashKey);

// ---- plan::ZoneTable::match with node-local-dns's server blocks ----

plan::ZoneTable nodeLocalZones() {
  plan::ZoneTable t;
  size_t block = 0;
  for (const char* z : {"cluster.local.", "in-addr.arpa.", "ip6.arpa.", "."}) {
    dns::Name n = nameOf(z);
    n.toLower();
    t.add(n, z, block++);
  }
  return t;
}

void BM_ZoneMatch(benchmark::State& state) {
  const plan::ZoneTable zones = nodeLocalZones();
  std::vector<ParsedQuery> qs;
  for (size_t i = 0; i < kRing; ++i) {
    qs.push_back(
        makeQuery(i % 2 ? host(i) : "svc-" + std::to_string(i) + ".ns.svc.cluster.local", false));
  }
  size_t i = 0;
  for (auto _ : state) {
    const ParsedQuery& q = qs[i++ % kRing];
    const plan::ZoneTable::Entry* e = zones.match(q.q.question.name, q.q.question.qtype);
    if (e == nullptr) state.SkipWithError("no zone matched");
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ZoneMatch);

// ---- the synchronous part of a UDP cache hit: parse, pick the block, cache lookup ----
// (Pipeline::handle adds metrics and plugin checks around this; the kernel's recvmmsg/sendmmsg
// cost, about 2 µs per query on the test machine, is not included.)

void BM_HitPath(benchmark::State& state) {
  const plan::ZoneTable zones = nodeLocalZones();
  cache::Cache c(benchSettings(10000));
  fillCache(c, kHotNames);
  std::vector<Bytes> pkts;
  for (size_t i = 0; i < kRing; ++i)
    pkts.push_back(makeQuery(host(i * 15 % kHotNames), true).bytes);
  Bytes out(dns::kMaxMessageSize);
  const auto now = kT0 + std::chrono::seconds(10);
  dns::Query q;
  size_t i = 0;
  for (auto _ : state) {
    const Bytes& pkt = pkts[i++ % kRing];
    if (dns::parseQuery(dns::ByteView(pkt), q) != dns::QueryStatus::kOk) {
      state.SkipWithError("query did not parse");
      break;
    }
    const plan::ZoneTable::Entry* e = zones.match(q.question.name, q.question.qtype);
    benchmark::DoNotOptimize(e);
    cache::LookupResult r = c.lookup(dns::ByteView(pkt), q, dns::keyHash(q), now, q.clientUdpSize(),
                                     dns::MutableBytes(out));
    if (r.kind != cache::Kind::kHit) state.SkipWithError("expected a hit");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HitPath);

}  // namespace
}  // namespace nld::bench

BENCHMARK_MAIN();
